"""Hand-made detection scenes (used by tests/test_detect.py and benchmarks/detect_*.py): a textured
object pasted with perspective warps, scale and lighting changes into textured backgrounds, plus a
distractor of the same outline with a different texture. Ground-truth boxes are known exactly."""

from __future__ import annotations

import json
from pathlib import Path

import cv2
import numpy as np


def texture(rng: np.random.Generator, h: int, w: int, blobs: int = 40) -> np.ndarray:
    """A random, feature-rich colour texture (noise, rectangles, circles, lines)."""
    img = cv2.GaussianBlur(rng.integers(0, 256, (h, w, 3), dtype=np.uint8), (0, 0), 2)
    for _ in range(blobs):
        c = tuple(int(v) for v in rng.integers(0, 256, 3))
        kind = rng.integers(3)
        p = (int(rng.integers(0, w)), int(rng.integers(0, h)))
        if kind == 0:
            q = (int(rng.integers(0, w)), int(rng.integers(0, h)))
            cv2.rectangle(img, p, q, c, -1 if rng.random() < 0.5 else 2)
        elif kind == 1:
            cv2.circle(img, p, int(rng.integers(3, max(4, min(h, w) // 4))), c, -1)
        else:
            q = (int(rng.integers(0, w)), int(rng.integers(0, h)))
            cv2.line(img, p, q, c, int(rng.integers(1, 4)))
    return img


def paste(frame: np.ndarray, obj: np.ndarray, quad: np.ndarray, gain: float = 1.0) -> tuple[float, float, float, float]:
    """Warp `obj` onto `quad` (4×2, clockwise from top-left) of `frame` in place; returns its box."""
    h, w = obj.shape[:2]
    H = cv2.getPerspectiveTransform(np.float32([[0, 0], [w, 0], [w, h], [0, h]]), quad.astype(np.float32))
    size = (frame.shape[1], frame.shape[0])
    warped = cv2.warpPerspective(np.clip(obj.astype(np.float32) * gain, 0, 255).astype(np.uint8), H, size)
    mask = cv2.warpPerspective(np.full((h, w), 255, np.uint8), H, size) > 127
    frame[mask] = warped[mask]
    x1, y1 = quad.min(axis=0)
    x2, y2 = quad.max(axis=0)
    return (max(float(x1), 0), max(float(y1), 0), min(float(x2), size[0]), min(float(y2), size[1]))


def quad_at(cx: float, cy: float, w: float, h: float, tilt: float = 0.0, angle: float = 0.0) -> np.ndarray:
    """A rectangle of size w×h centred at (cx, cy), rotated by `angle` rad, with perspective `tilt`."""
    q = np.array([[-w / 2 * (1 - tilt), -h / 2], [w / 2 * (1 - tilt), -h / 2], [w / 2, h / 2], [-w / 2, h / 2]])
    c, s = np.cos(angle), np.sin(angle)
    return q @ np.array([[c, s], [-s, c]]) + (cx, cy)


def iou(a, b) -> float:
    ix = max(0.0, min(a[2], b[2]) - max(a[0], b[0]))
    iy = max(0.0, min(a[3], b[3]) - max(a[1], b[1]))
    inter = ix * iy
    union = (a[2] - a[0]) * (a[3] - a[1]) + (b[2] - b[0]) * (b[3] - b[1]) - inter
    return inter / union if union > 0 else 0.0


def write_query_file(path: Path, clip_uid: str, queries: list[dict], size=(640, 480)) -> None:
    """A VQ2D-style query file (shaped like vq_val_vq3d.json) with one clip and the given queries:
    each {query_frame, crop: (frame, x, y, w, h), track: [(frame, x, y, w, h)]}."""
    W, H = size

    def box(f, x, y, w, h):
        return {"frame_number": f, "x": x, "y": y, "width": w, "height": h, "rotation": 0,
                "original_width": W, "original_height": H, "video_frame_number": f * 6}

    anns = [{"query_sets": {"1": {"is_valid": True, "errors": [], "warnings": [],
                                  "query_frame": q["query_frame"], "query_video_frame": q["query_frame"] * 6,
                                  "visual_crop": box(*q["crop"]),
                                  "response_track": [box(*t) for t in q.get("track", [])],
                                  "object_title": q.get("title", "thing")}}} for q in queries]
    data = {"version": "1", "date": "", "description": "detect fixture", "manifest": "",
            "videos": [{"video_uid": "vid-0", "split": "val", "clips": [{
                "clip_uid": clip_uid, "video_start_sec": 0.0, "video_end_sec": 100.0,
                "video_start_frame": 0, "video_end_frame": 3000, "clip_start_sec": 0.0,
                "clip_end_sec": 100.0, "clip_start_frame": 0, "clip_end_frame": 500,
                "clip_fps": 5.0, "annotation_complete": True, "source_clip_uid": clip_uid,
                "annotations": anns}]}]}
    path.write_text(json.dumps(data))


def make_clip(out: Path, seed: int = 0, n_frames: int = 60, size=(640, 480),
              visible=range(20, 32), crop_frame: int = 55, query_frame: int = 50):
    """A clip of `n_frames` frames: the object is visible in `visible` (moving, shrinking, tilting,
    under changing light) and again, frontal, at `crop_frame` (where the visual crop is cut, AFTER
    the query frame as in real data); a distractor of the same shape is in every frame.
    Returns (gt boxes {frame: box}, crop (frame, x, y, w, h))."""
    rng = np.random.default_rng(seed)
    W, H = size
    obj = texture(rng, 120, 160, blobs=30)
    distractor = texture(np.random.default_rng(seed + 1000), 120, 160, blobs=30)
    backgrounds = [texture(np.random.default_rng(seed * 7 + k), H, W, blobs=60) for k in range(3)]
    out.mkdir(parents=True, exist_ok=True)
    gt = {}
    crop = None
    for f in range(n_frames):
        frame = backgrounds[(f // 20) % 3].copy()
        paste(frame, distractor, quad_at(W * 0.2 + f, H * 0.7, 150, 112, tilt=0.1))
        if f in visible:
            t = (f - visible.start) / max(len(visible) - 1, 1)
            q = quad_at(W * 0.55 + 80 * t, H * 0.35 + 30 * t, 200 - 90 * t, 150 - 68 * t,
                        tilt=0.25 * t, angle=0.3 * t)
            gt[f] = paste(frame, obj, q, gain=0.7 + 0.6 * t)
        if f == crop_frame:
            x1, y1, x2, y2 = paste(frame, obj, quad_at(W * 0.6, H * 0.4, 160, 120))
            crop = (f, x1, y1, x2 - x1, y2 - y1)
        cv2.imwrite(str(out / f"color_{f:07d}.jpg"), frame, [cv2.IMWRITE_JPEG_QUALITY, 92])
    return gt, crop


# ---- the synthetic dataset as the detect benchmarks read it ----

def synth_queries(data: Path):
    """(query file, QueryFile, gt clips, gt queries by VQ2D key) of a generated synthetic dataset."""
    from vq3d.formats.queries import read_queries
    from vq3d.formats.synth_gt import read_gt_clips, read_gt_queries
    from vq3d.synth import layout

    qpath = data / layout.FILES["queries_val"]
    gt_queries = {(g["clip_uid"], g["annotation_index"], str(g["query_set"])): g
                  for g in read_gt_queries(data / "gt")}
    return qpath, read_queries(qpath), read_gt_clips(data / "gt"), gt_queries


def synth_clip_frames(data: Path, qpath: Path, frames_dir: Path, clip_uid: str, gt_clips: dict,
                      frames_conf: dict) -> list[dict]:
    """Extract the clip's frames into `frames_dir` (once); its ground-truth boxes per frame."""
    from vq3d.formats.synth_gt import read_gt_boxes
    from vq3d.frames import main as frames_main
    from vq3d.synth import layout

    if not frames_dir.exists():
        video = data / layout.FILES["videos"] / f"{gt_clips[clip_uid]['video_uid']}.mp4"
        frames_main(video, qpath, frames_dir, clip_uid, False, frames_conf)
    return read_gt_boxes(data / "gt", clip_uid)
