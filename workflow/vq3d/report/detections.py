"""Per query: the detection score over the clip's frames with its peaks, the visual crop, and the
frame of the last peak (the one the `last` rule lifts to 3D) with its box.

Boxes (detections and the query file's crop and response track) are in pixels of the ORIGINAL
frame size; the extracted frames may be downscaled (frames.max_side), so boxes are scaled to the
JPEG actually on disk. The ground-truth response track, where the query file has one (val), is
shaded on the score curve and drawn on the peak frame when it covers that frame."""

from __future__ import annotations

import logging
import re
from pathlib import Path

import cv2
import numpy as np
from matplotlib.patches import Rectangle

from ..atomic import atomic_dir
from ..errors import InputError
from ..formats.clip_frames import frame_name
from ..formats.clip_detections import QueryDetections, read_clip_detections
from ..formats.queries import Box, Query, read_queries
from ._plot import new_figure, save_png

log = logging.getLogger(__name__)

_SAFE = re.compile(r"[^A-Za-z0-9_.-]")


def figure_name(annotation_index: int, query_set: str) -> str:
    """File name of one query's figure (the report's `query` label is the part before .png)."""
    return f"a{annotation_index}_q{_SAFE.sub('_', str(query_set))}.png"


def score_curve(q: QueryDetections) -> tuple[np.ndarray, np.ndarray]:
    """(frames, best score per frame); a frame with no box scores 0."""
    frames = np.array([f for f, _ in q.frames], dtype=int)
    scores = np.array([max((b.score for b in boxes), default=0.0) for _, boxes in q.frames])
    return frames, scores


def load_frame(frames_dir, frame: int) -> np.ndarray | None:
    """RGB image of clip frame `frame`, or None if it was not extracted."""
    path = Path(frames_dir) / frame_name(frame)
    img = cv2.imread(str(path), cv2.IMREAD_COLOR)
    if img is None:
        return None
    return cv2.cvtColor(img, cv2.COLOR_BGR2RGB)


def _scale(img: np.ndarray, original_size: tuple[int, int]) -> tuple[float, float]:
    """Factors from original-frame pixels to the pixels of `img`."""
    h, w = img.shape[:2]
    return w / original_size[0], h / original_size[1]


def crop_thumbnail(img: np.ndarray, box: Box, original_size: tuple[int, int],
                   margin: float = 0.15) -> np.ndarray:
    """The visual crop cut from its frame, with a small margin of context."""
    sx, sy = _scale(img, (box.original_width or original_size[0],
                          box.original_height or original_size[1]))
    mx, my = margin * box.width, margin * box.height
    x1 = int(np.clip(np.floor((box.x - mx) * sx), 0, img.shape[1] - 1))
    y1 = int(np.clip(np.floor((box.y - my) * sy), 0, img.shape[0] - 1))
    x2 = int(np.clip(np.ceil((box.x + box.width + mx) * sx), x1 + 1, img.shape[1]))
    y2 = int(np.clip(np.ceil((box.y + box.height + my) * sy), y1 + 1, img.shape[0]))
    return img[y1:y2, x1:x2]


def _rect(ax, x1, y1, x2, y2, scale, colour, label, style="-"):
    sx, sy = scale
    ax.add_patch(Rectangle((x1 * sx, y1 * sy), (x2 - x1) * sx, (y2 - y1) * sy, fill=False,
                           edgecolor=colour, linewidth=2, linestyle=style, label=label))


def _placeholder(ax, text: str) -> None:
    ax.text(0.5, 0.5, text, ha="center", va="center", transform=ax.transAxes, fontsize=9,
            color="0.4", wrap=True)
    ax.set_xticks([])
    ax.set_yticks([])


def plot_query(clip_uid: str, det: QueryDetections, query: Query | None, frames_dir, out) -> None:
    """One figure: score curve on top; crop thumbnail and last-peak frame below."""
    fig = new_figure(10, 6.2)
    grid = fig.add_gridspec(2, 2, height_ratios=(1, 1.5), width_ratios=(1, 2.4))
    ax_curve = fig.add_subplot(grid[0, :])
    ax_crop = fig.add_subplot(grid[1, 0])
    ax_peak = fig.add_subplot(grid[1, 1])
    track = {b.frame: b for b in (query.response_track or [])} if query else {}

    frames, scores = score_curve(det)
    if track:
        lo, hi = min(track), max(track)
        ax_curve.axvspan(lo - 0.5, hi + 0.5, color="#2ca02c", alpha=0.15,
                         label="ground-truth response track")
    if len(frames):
        ax_curve.plot(frames, scores, "-", color="#1f77b4", lw=1, label="best box score")
    if det.peaks:
        ax_curve.plot([p.frame for p in det.peaks], [p.box.score for p in det.peaks], "o",
                      color="#ff7f0e", ms=5, label="peaks")
        last = det.peaks[-1]
        ax_curve.plot([last.frame], [last.box.score], "o", ms=11, mfc="none", mec="#d62728",
                      mew=2, label=f"last peak (frame {last.frame})")
    ax_curve.axvline(det.query_frame, color="k", ls="--", lw=1,
                     label=f"query frame {det.query_frame}")
    ax_curve.set_xlim(-0.5, max(det.query_frame, frames.max() if len(frames) else 0) + 0.5)
    ax_curve.set_ylim(0, 1.02)
    ax_curve.set_xlabel("clip frame (5 fps)")
    ax_curve.set_ylabel("score")
    ax_curve.legend(loc="best", fontsize=8, framealpha=0.8)
    title = query.object_title if query and query.object_title else ""
    ax_curve.set_title(f"{clip_uid} · query a{det.annotation_index}/q{det.query_set}"
                       + (f" · {title}" if title else "")
                       + ("" if len(frames) else " · no scored frames (precomputed peaks)"),
                       fontsize=10)

    crop_frame = query.visual_crop.frame if query else det.visual_crop_frame
    img = load_frame(frames_dir, crop_frame)
    if query is None:
        _placeholder(ax_crop, "query not in the query file")
    elif img is None:
        _placeholder(ax_crop, f"frame {crop_frame} not extracted")
    else:
        ax_crop.imshow(crop_thumbnail(img, query.visual_crop, det.image_size))
        ax_crop.set_xticks([])
        ax_crop.set_yticks([])
    ax_crop.set_title(f"visual crop (frame {crop_frame})", fontsize=9)

    if not det.peaks:
        _placeholder(ax_peak, "no detection peak")
        ax_peak.set_title("last peak", fontsize=9)
    else:
        last = det.peaks[-1]
        img = load_frame(frames_dir, last.frame)
        if img is None:
            _placeholder(ax_peak, f"frame {last.frame} not extracted")
        else:
            scale = _scale(img, det.image_size)
            ax_peak.imshow(img)
            if last.frame in track:  # drawn first, dashed: the detection stays visible on top
                g = track[last.frame]
                _rect(ax_peak, g.x, g.y, g.x + g.width, g.y + g.height, scale, "#2ca02c",
                      "ground truth", "--")
            b = last.box
            _rect(ax_peak, b.x1, b.y1, b.x2, b.y2, scale, "#d62728", f"detection {b.score:.2f}")
            ax_peak.legend(loc="upper right", fontsize=7, framealpha=0.7)
            ax_peak.set_xticks([])
            ax_peak.set_yticks([])
        ax_peak.set_title(f"last peak: frame {last.frame}, score {last.box.score:.2f}",
                          fontsize=9)
    save_png(fig, out)


def main(detections, queries, frames_dir, out_dir, clip_uid) -> None:
    """Stage: one PNG per query of the clip in `out_dir` (named by figure_name)."""
    det = read_clip_detections(detections)
    if det.clip_uid != clip_uid:
        raise InputError(detections, f"clip_uid is {det.clip_uid}, expected {clip_uid}")
    if not Path(frames_dir).is_dir():
        raise InputError(frames_dir, "frames folder does not exist")
    by_key = {(q.annotation_index, q.query_set): q for q in read_queries(queries).for_clip(clip_uid)}
    with atomic_dir(out_dir) as tmp:
        for qd in det.queries:
            query = by_key.get(qd.key)
            if query is None:
                log.warning("%s: query %s is not in %s; plotting without its crop",
                            clip_uid, qd.key, queries)
            plot_query(clip_uid, qd, query, frames_dir, tmp / figure_name(*qd.key))
    log.info("%s: %d query figures -> %s", clip_uid, len(det.queries), out_dir)
