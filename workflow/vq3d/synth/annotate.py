"""From rendered ground truth to VQ2D/VQ3D-style annotations.

Per clip frame, every object's box and visible fraction come from the rendered id buffer. A
query's `response_track` is its last contiguous run of clearly visible frames before
`query_frame`; its `visual_crop` is the best view of it outside that run (as in Ego4D, often
after the query frame)."""

from __future__ import annotations

import cv2
import numpy as np

from ..geometry import to_camera
from .camera import Fisheye
from .scene import SceneObject, box_corners

MIN_VISIBLE = 0.3      # visible fraction for a frame to count as a sighting
MIN_SIDE_FRAC = 0.02   # box side ≥ 2% of the image width (13 px at 640)


def object_boxes(ids: np.ndarray, objects: list[SceneObject], cam: Fisheye, cam_from_world: np.ndarray) -> dict:
    """{object index: {"bbox": [x1, y1, x2, y2] (pixels, x2/y2 exclusive), "visible_fraction"}} for
    the objects with visible pixels. The fraction is visible pixels over the in-image area of the
    object's unoccluded silhouette (the hull of its projected corners)."""
    out = {}
    present = np.unique(ids)
    for obj in objects:
        if obj.index + 1 not in present:
            continue
        ys, xs = np.nonzero(ids == obj.index + 1)
        pts_cam = to_camera(cam_from_world, box_corners(obj.centre, obj.size, obj.yaw))
        if (pts_cam[:, 2] <= 0.05).any():
            frac = 1.0  # straddles the camera plane: cannot measure the silhouette; it is close
        else:
            hull = cv2.convexHull(cam.project(pts_cam).astype(np.float32))
            x0, y0, w, h = cv2.boundingRect(hull)
            x0c, y0c = max(x0, 0), max(y0, 0)
            x1c, y1c = min(x0 + w, cam.width), min(y0 + h, cam.height)
            area = 0
            if x1c > x0c and y1c > y0c:
                m = np.zeros((y1c - y0c, x1c - x0c), np.uint8)
                cv2.fillConvexPoly(m, np.round((hull[:, 0] - [x0c, y0c]) * 16).astype(np.int32), 1, cv2.LINE_8, 4)
                area = int(m.sum())
            frac = min(1.0, len(xs) / max(area, 1))
        out[obj.index] = {"bbox": [int(xs.min()), int(ys.min()), int(xs.max()) + 1, int(ys.max()) + 1],
                          "visible_fraction": round(float(frac), 4)}
    return out


def sightings(boxes: list[dict], obj: int, width: int) -> list[int]:
    min_side = MIN_SIDE_FRAC * width
    good = []
    for i, frame in enumerate(boxes):
        b = frame.get(obj)
        if b and b["visible_fraction"] >= MIN_VISIBLE and min(b["bbox"][2] - b["bbox"][0], b["bbox"][3] - b["bbox"][1]) >= min_side:
            good.append(i)
    return good


def runs(frames: list[int]) -> list[tuple[int, int]]:
    """Contiguous runs [start, end] (inclusive)."""
    out = []
    for f in frames:
        if out and f == out[-1][1] + 1:
            out[-1] = (out[-1][0], f)
        else:
            out.append((f, f))
    return out


def choose_query(boxes: list[dict], obj: int, width: int, rng: np.random.Generator):
    """(query_frame, (rt_start, rt_end), crop_frame) or None when the clip offers no valid query."""
    seen = sightings(boxes, obj, width)
    rs = [r for r in runs(seen) if r[1] - r[0] >= 1]  # at least two frames
    n = len(boxes)
    options = []
    for k, (s, e) in enumerate(rs):
        nxt = rs[k + 1][0] if k + 1 < len(rs) else n
        # the query frame falls between this run and the next sighting, so this run is the last
        # occurrence before it; not a sighting itself
        cands = [q for q in range(e + 2, nxt) if q not in set(seen)]
        if cands:
            options.append((k, cands))
    if not options:
        return None
    k, cands = options[-1] if rng.random() < 0.6 else options[int(rng.integers(0, len(options)))]
    q = int(cands[int(rng.integers(0, len(cands)))])
    s, e = rs[k]
    outside = [f for f in seen if not (s <= f <= e)]
    pool = outside or list(range(s, e + 1))

    def quality(f):
        b = boxes[f][obj]
        return (b["bbox"][2] - b["bbox"][0]) * (b["bbox"][3] - b["bbox"][1]) * b["visible_fraction"]

    crop = max(pool, key=quality)
    return q, (s, e), int(crop)


def box_entry(frame: int, bbox, width: int, height: int, video_start_frame: int, step: int) -> dict:
    """A VQ2D box (x, y, width, height in pixels of the original frame)."""
    x1, y1, x2, y2 = bbox
    return {"frame_number": frame, "x": float(x1), "y": float(y1), "width": float(x2 - x1), "height": float(y2 - y1),
            "rotation": 0, "original_width": width, "original_height": height,
            "video_frame_number": video_start_frame + frame * step}


def annotation_3d(obj: SceneObject, rng: np.random.Generator, jitter: bool) -> dict:
    """A VQ3D box in the annotation frame: (x, y, z)_ann = (−y_mp, x_mp, z_mp), yaw + 90°.
    The second annotator differs by a few centimetres, as in the real data."""
    c = np.asarray(obj.centre, float)
    size = np.asarray(obj.size, float)
    yaw = obj.yaw
    if jitter:
        c = c + rng.normal(0, 0.02, 3)
        size = size * (1 + rng.normal(0, 0.08, 3))
        yaw = yaw + rng.normal(0, 0.05)
    ann = mp_to_annotation(c)
    yaw_ann = (yaw + np.pi / 2 + np.pi) % (2 * np.pi) - np.pi
    return {"position": {"x": float(ann[0]), "y": float(ann[1]), "z": float(ann[2])},
            "rotation": {"x": 0.0, "y": 0.0, "z": float(yaw_ann)},
            "dimension": {"x": float(size[0]), "y": float(size[1]), "z": float(size[2])}}


def mp_to_annotation(p) -> np.ndarray:
    p = np.asarray(p, float)
    return np.array([-p[1], p[0], p[2]])


def hard_choose_query(boxes: list[dict], obj: int, width: int, plan: dict):
    """The hard tier's query from its plan (vq3d.synth.hard.plan_queries) and what was rendered:
    the planned query frame (moved on past a sighting), the last run of sightings before it as
    the response track (one frame or more, as in Ego4D), and as the visual crop the best view
    (area × visible fraction) within 3 frames of the sighting outside that run nearest the
    planned crop frame. None when nothing was seen before it."""
    seen = sightings(boxes, obj, width)
    seen_set = set(seen)
    q = plan["query_frame"]
    while q in seen_set:
        q += 1
    if q >= len(boxes):
        return None
    before = [r for r in runs(seen) if r[1] < q]
    if not before:
        return None
    s, e = before[-1]
    outside = [f for f in seen if not (s <= f <= e)]
    if not outside:
        return None  # Ego4D's crops are never on the response track
    near = min(outside, key=lambda f: (abs(f - plan["crop_frame"]), f))

    def quality(f):
        b = boxes[f][obj]
        return (b["bbox"][2] - b["bbox"][0]) * (b["bbox"][3] - b["bbox"][1]) * b["visible_fraction"]

    crop = max((f for f in outside if abs(f - near) <= 3), key=quality)
    return q, (s, e), int(crop)
