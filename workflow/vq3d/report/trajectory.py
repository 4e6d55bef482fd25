"""Top-down view (x–y of the scan frame) of one clip: the camera trajectory, coloured by pose
source, with each query's predicted object position and, where annotated, its ground truth.

Frames: poses are world→camera (cam_from_world = [R | t]) in the Matterport scan frame, so a
camera centre is −Rᵀt; predictions are in the same frame; VQ3D annotation centres are turned
into it with annotation_to_matterport. Predictions are keyed by the VQ2D query, annotations by
the VQ3D query: the VQ2D→VQ3D mapping joins them (identity keys without one, as on test)."""

from __future__ import annotations

import logging
import os
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from ..errors import InputError
from ..geometry import camera_centre
from ..formats.clip_predictions import read_clip_predictions
from ..formats.mapping import read_mapping
from ..formats.poses import ClipPoses, read_poses
from ..formats.vq3d_annotations import annotation_to_matterport, read_vq3d
from ._plot import SOURCE_COLOURS, SOURCE_LABELS, new_figure, query_colour, save_png
from .coverage import read_coverage

log = logging.getLogger(__name__)


@dataclass
class ObjectMarks:
    """What is known of one query's object, all in the scan frame."""

    label: str
    pred_world: np.ndarray | None = None
    gt_world: list[np.ndarray] = field(default_factory=list)     # one per annotator
    peak_points: list[np.ndarray] = field(default_factory=list)  # lifted peak detections


def camera_centres(poses: ClipPoses) -> np.ndarray:
    """(N, 3) world positions of the cameras, NaN for frames without a pose: c = −Rᵀt."""
    centres = camera_centre(poses.cam_from_world)
    centres[~poses.good] = np.nan
    return centres


def plot_trajectory(clip_uid: str, centres: np.ndarray, objects: list[ObjectMarks], out,
                    sources: list[str] | None = None) -> None:
    """Draw the top-down figure; `sources` (per frame) colours the camera positions."""
    fig = new_figure(7.5, 6.5)
    ax = fig.subplots()
    good = np.all(np.isfinite(centres), axis=1)
    ax.plot(centres[:, 0], centres[:, 1], "-", color="0.6", lw=1, zorder=1)  # breaks at NaN
    if sources is not None and len(sources) == len(centres):
        for s in dict.fromkeys(sources):
            sel = good & (np.asarray(sources) == s)
            if sel.any():
                ax.scatter(centres[sel, 0], centres[sel, 1], s=9, zorder=2,
                           color=SOURCE_COLOURS.get(s, "#8c564b"),
                           label=f"camera ({SOURCE_LABELS.get(s, s)})")
    else:
        ax.scatter(centres[good, 0], centres[good, 1], s=9, color="0.35", zorder=2,
                   label="camera")
    if good.any():
        first = np.flatnonzero(good)[0]
        ax.scatter(*centres[first, :2], marker=">", s=70, color="k", zorder=3,
                   label=f"first posed frame ({first})")
    for i, obj in enumerate(objects):
        colour = query_colour(i)
        for p in obj.peak_points:
            ax.scatter(p[0], p[1], marker="x", s=18, color=colour, alpha=0.6, zorder=3)
        for g in obj.gt_world:
            ax.scatter(g[0], g[1], marker="o", s=110, facecolors="none", edgecolors=colour,
                       linewidths=2, zorder=4)
        if obj.pred_world is not None:
            ax.scatter(obj.pred_world[0], obj.pred_world[1], marker="*", s=180, color=colour,
                       edgecolors="k", linewidths=0.5, zorder=5, label=obj.label)
            if obj.gt_world:
                g = np.mean(obj.gt_world, axis=0)
                ax.plot([obj.pred_world[0], g[0]], [obj.pred_world[1], g[1]], "--",
                        color=colour, lw=1, zorder=4)
        elif obj.gt_world:
            ax.scatter([], [], marker="o", facecolors="none", edgecolors=colour,
                       label=f"{obj.label} (no prediction)")
    # Marker-kind legend entries, drawn once.
    if any(o.pred_world is not None for o in objects):
        ax.scatter([], [], marker="*", s=120, color="w", edgecolors="k", label="predicted")
    if any(o.gt_world for o in objects):
        ax.scatter([], [], marker="o", s=80, facecolors="none", edgecolors="k",
                   label="ground truth (2 annotators)")
    if any(o.peak_points for o in objects):
        ax.scatter([], [], marker="x", color="k", label="lifted detection peaks")
    ax.set_aspect("equal", adjustable="datalim")
    ax.grid(True, lw=0.4, alpha=0.5)
    ax.set_xlabel("x (m, scan frame)")
    ax.set_ylabel("y (m, scan frame)")
    posed = int(good.sum())
    ax.set_title(f"{clip_uid}: camera trajectory, top-down ({posed}/{len(centres)} frames posed)",
                 fontsize=10)
    ax.legend(loc="upper left", bbox_to_anchor=(1.01, 1), fontsize=8, frameon=False)
    save_png(fig, out)


def _label(ai: int, qset: str, title: str | None) -> str:
    return f"{title} (a{ai}/q{qset})" if title else f"query a{ai}/q{qset}"


def collect_objects(clip_uid: str, predictions=None, annotations=None,
                    mapping=None) -> list[ObjectMarks]:
    """Per query of the clip (VQ2D key order), its prediction and ground truth where known."""
    marks: dict[tuple[int, str], ObjectMarks] = {}
    if predictions is not None:
        cp = read_clip_predictions(predictions)
        if cp.clip_uid != clip_uid:
            raise InputError(predictions, f"clip_uid is {cp.clip_uid}, expected {clip_uid}")
        for q in cp.queries:
            marks[q.key] = ObjectMarks(
                label=_label(*q.key, None), pred_world=q.pred_3d_vec_world,
                peak_points=[p.point for p in q.peaks if p.point is not None])
    if annotations is not None:
        table = read_mapping(mapping) if mapping is not None else None
        for q in read_vq3d(annotations).queries:
            if q.clip_uid != clip_uid:
                continue
            key = (q.annotation_index, q.query_set)
            if table is not None:
                vq2d = table.to_vq2d(clip_uid, *key)
                if vq2d is None:
                    log.info("VQ3D query %s of %s has no VQ2D query in the mapping", key, clip_uid)
                    continue
                key = (vq2d[1], vq2d[2])
            obj = marks.setdefault(key, ObjectMarks(label=_label(*key, None)))
            obj.label = _label(*key, q.object_title)
            obj.gt_world += [annotation_to_matterport(g.position) for g in (q.gt1, q.gt2)
                             if g is not None]
    return [marks[k] for k in sorted(marks)]


def _existing(path, what: str):
    """`path` if it names an existing file; None (with a warning) for a missing optional input."""
    if path is None or path == "":
        return None
    if not Path(path).is_file():
        log.warning("%s %s does not exist; plotting without it", what, path)
        return None
    return os.fspath(path)


def main(poses, out, clip_uid, summary=None, predictions=None, annotations=None,
         mapping=None) -> None:
    """Stage: the clip's top-down trajectory plot. Only `poses` is required: the summary
    (pose sources), predictions, annotations (ground truth) and mapping are drawn when present."""
    all_poses = read_poses(poses)
    if clip_uid not in all_poses:
        raise InputError(poses, f"no entry for clip {clip_uid} (has {sorted(all_poses)[:3]})")
    centres = camera_centres(all_poses[clip_uid])
    sources = None
    if (summary := _existing(summary, "pose summary")) is not None:
        sources = read_coverage(summary).per_frame
        if sources is not None and len(sources) != len(centres):
            log.warning("%s lists %d frames but %s has %d poses; not colouring by source",
                        summary, len(sources), poses, len(centres))
            sources = None
    objects = collect_objects(clip_uid, _existing(predictions, "predictions file"),
                              _existing(annotations, "annotation file"),
                              _existing(mapping, "VQ2D→VQ3D mapping"))
    plot_trajectory(clip_uid, centres, objects, out, sources)
    log.info("%s: trajectory of %d frames, %d objects -> %s", clip_uid, len(centres),
             len(objects), out)
