"""Per-clip detections: the file between the detect and predict stages (`R/detect/<clip>.json`).

Shape (JSON, one file per clip)::

    {
      "format": "vq3d.clip_detections", "version": 1,
      "clip_uid": "<clip uid>",
      "backend": "features" | "siamrcnn" | "precomputed",
      "queries": [
        {
          "annotation_index": 0,          # index of the annotation in the clip's query file entry
          "query_set": "1",               # the query set id (a string, as in Ego4D)
          "query_frame": 861,             # clip frame of the query (5 fps)
          "visual_crop_frame": 1659,      # clip frame the visual crop was cut from (may be > query_frame)
          "image_size": [1920, 1080],     # original_width, original_height: the frame of every box below
          "frames": [                     # scored frames, ascending; normally 0 .. query_frame-1
            [0, [[x1, y1, x2, y2, score], ...]],   # top-k boxes of that frame, best first (may be [])
            ...
          ],
          "peaks": [                      # detection peaks, ascending frame
            {"frame": 547, "box": [x1, y1, x2, y2], "score": 0.83}
          ],
          "reason": "..."                 # optional: why `peaks` is empty
        }
      ]
    }

Conventions: boxes are corner coordinates (x1 < x2, y1 < y2) in pixels of the ORIGINAL frame size
(`image_size`, the query's original_width × original_height), whatever resolution the frames were
decoded at. Scores lie in [0, 1] and are comparable within a query (the peak finder needs that),
not necessarily across backends. A query keyed (annotation_index, query_set) appears once. A
query whose peaks came precomputed may have an empty `frames` list.
"""

from __future__ import annotations

import math
import os
from dataclasses import dataclass, field
from pathlib import Path

from ..atomic import write_json
from ..errors import InputError
from ._common import load_json

FORMAT = "vq3d.clip_detections"
VERSION = 1


@dataclass(frozen=True)
class ScoredBox:
    """An axis-aligned box (corners, original-frame pixels) with a score in [0, 1]."""

    x1: float
    y1: float
    x2: float
    y2: float
    score: float

    @property
    def xyxy(self) -> tuple[float, float, float, float]:
        return (self.x1, self.y1, self.x2, self.y2)

    def to_list(self) -> list[float]:
        return [*self.xyxy, self.score]


@dataclass(frozen=True)
class Peak:
    frame: int
    box: ScoredBox


@dataclass
class QueryDetections:
    annotation_index: int
    query_set: str
    query_frame: int
    visual_crop_frame: int
    image_size: tuple[int, int]
    frames: list[tuple[int, list[ScoredBox]]] = field(default_factory=list)
    peaks: list[Peak] = field(default_factory=list)
    reason: str | None = None  # why there is no peak (None when there are peaks)

    @property
    def key(self) -> tuple[int, str]:
        return (self.annotation_index, self.query_set)


@dataclass
class ClipDetections:
    clip_uid: str
    backend: str
    queries: list[QueryDetections] = field(default_factory=list)

    def get(self, annotation_index: int, query_set: str) -> QueryDetections | None:
        for q in self.queries:
            if q.key == (annotation_index, str(query_set)):
                return q
        return None


def _round(v: float) -> float:
    return round(float(v), 2)


def to_json(det: ClipDetections) -> dict:
    seen = set()
    queries = []
    for q in det.queries:
        if q.key in seen:
            raise ValueError(f"query {q.key} appears twice in the detections of {det.clip_uid}")
        seen.add(q.key)
        queries.append({
            "annotation_index": int(q.annotation_index),
            "query_set": str(q.query_set),
            "query_frame": int(q.query_frame),
            "visual_crop_frame": int(q.visual_crop_frame),
            "image_size": [int(q.image_size[0]), int(q.image_size[1])],
            "frames": [[int(f), [[_round(b.x1), _round(b.y1), _round(b.x2), _round(b.y2),
                                   round(float(b.score), 5)] for b in boxes]]
                       for f, boxes in q.frames],
            "peaks": [{"frame": int(p.frame),
                       "box": [_round(p.box.x1), _round(p.box.y1), _round(p.box.x2), _round(p.box.y2)],
                       "score": round(float(p.box.score), 5)} for p in q.peaks],
            **({"reason": str(q.reason)} if q.reason else {}),
        })
    return {"format": FORMAT, "version": VERSION, "clip_uid": det.clip_uid,
            "backend": det.backend, "queries": queries}


def write_clip_detections(path: str | os.PathLike, det: ClipDetections) -> None:
    """Write atomically (compact JSON: a real clip has thousands of frames per query)."""
    write_json(path, to_json(det))


def _box(path, where: str, value, with_score: bool) -> ScoredBox:
    n = 5 if with_score else 4
    if (not isinstance(value, list) or len(value) != n
            or not all(isinstance(v, (int, float)) and not isinstance(v, bool) and math.isfinite(v)
                       for v in value)):
        raise InputError(path, f"{where}: expected a list of {n} finite numbers, got {value!r}")
    x1, y1, x2, y2 = value[:4]
    if not (x2 >= x1 and y2 >= y1):
        raise InputError(path, f"{where}: box corners out of order (x1, y1, x2, y2) = {value[:4]}")
    return ScoredBox(x1, y1, x2, y2, value[4] if with_score else 0.0)


def _field(path, obj: dict, key: str, kind, where: str):
    if key not in obj:
        raise InputError(path, f"{where}: missing field '{key}'")
    value = obj[key]
    if not isinstance(value, kind) or isinstance(value, bool):
        raise InputError(path, f"{where}.{key}: expected {getattr(kind, '__name__', kind)}, got {value!r}")
    return value


def from_json(data, path: str | os.PathLike = "<memory>") -> ClipDetections:
    if not isinstance(data, dict) or data.get("format") != FORMAT:
        raise InputError(path, f"not a clip detections file (field 'format' must be {FORMAT!r})")
    if data.get("version") != VERSION:
        raise InputError(path, f"field 'version': expected {VERSION}, got {data.get('version')!r}")
    clip_uid = _field(path, data, "clip_uid", str, "top level")
    backend = _field(path, data, "backend", str, "top level")
    out = ClipDetections(clip_uid, backend)
    for qi, q in enumerate(_field(path, data, "queries", list, "top level")):
        where = f"queries[{qi}]"
        if not isinstance(q, dict):
            raise InputError(path, f"{where}: expected an object")
        size = _field(path, q, "image_size", list, where)
        if len(size) != 2 or not all(isinstance(s, int) and s > 0 for s in size):
            raise InputError(path, f"{where}.image_size: expected [width, height], got {size!r}")
        frames = []
        for fi, entry in enumerate(_field(path, q, "frames", list, where)):
            fw = f"{where}.frames[{fi}]"
            if not (isinstance(entry, list) and len(entry) == 2 and isinstance(entry[0], int)
                    and isinstance(entry[1], list)):
                raise InputError(path, f"{fw}: expected [frame, [[x1, y1, x2, y2, score], ...]]")
            frames.append((entry[0], [_box(path, f"{fw}[1][{bi}]", b, True)
                                      for bi, b in enumerate(entry[1])]))
        peaks = []
        for pi, p in enumerate(_field(path, q, "peaks", list, where)):
            pw = f"{where}.peaks[{pi}]"
            if not isinstance(p, dict):
                raise InputError(path, f"{pw}: expected an object")
            box = _box(path, f"{pw}.box", _field(path, p, "box", list, pw), False)
            score = _field(path, p, "score", (int, float), pw)
            peaks.append(Peak(_field(path, p, "frame", int, pw),
                              ScoredBox(box.x1, box.y1, box.x2, box.y2, float(score))))
        qd = QueryDetections(
            annotation_index=_field(path, q, "annotation_index", int, where),
            query_set=_field(path, q, "query_set", str, where),
            query_frame=_field(path, q, "query_frame", int, where),
            visual_crop_frame=_field(path, q, "visual_crop_frame", int, where),
            image_size=(size[0], size[1]), frames=frames, peaks=peaks)
        if q.get("reason") is not None:
            qd.reason = _field(path, q, "reason", str, where)
        if out.get(*qd.key) is not None:
            raise InputError(path, f"{where}: query {qd.key} appears twice")
        out.queries.append(qd)
    return out


def read_clip_detections(path: str | os.PathLike) -> ClipDetections:
    path = Path(path)
    return from_json(load_json(path, "clip detections file"), path)
