"""Start from EgoLoc's shared detection files instead of running a detector.

Accepted (shape detected from the content):
- the per-frame dump `baseline_vq3d_detection_v105_{val,test}.json` written by EgoLoc's
  2d_retrieval/get_detection_peaks_{val,test}.py: {"dataset_uids": [...], "dataset_predictions":
  [{"top_boxes_per_clip": [[{fno, x1, x2, y1, y2}, ...] per frame], "top_scores_per_clip":
  [[score, ...] per frame], "clip_uid", "query_frame", "visual_crop", ...}]}; peaks are then found
  here from the per-frame scores;
- the val peak file `vq2d_val_vq3d_peak_clip.json` ({"predictions": {parallel lists}}), whose
  entries carry no clip uid and are matched by their visual crop (frame and box) and query frame;
- the test peak file (VQ2D challenge format), matched by clip uid, annotation position, query set.
Peak files give peaks only (no per-frame scores): `frames` stays empty for them."""

from __future__ import annotations

import logging
from functools import lru_cache

from ...errors import InputError
from ...formats.clip_detections import Peak, ScoredBox
from ...formats.peaks import DetectionDump, PeakBox, PeakFile, read_detection_file
from ..framestore import FrameStore
from .base import FrameBoxes, QueryJob

log = logging.getLogger(__name__)


def crop_key(vc: dict | object, query_frame: int | None = None) -> tuple:
    """A visual crop's identity (frame, box to 0.01 px), optionally with the query frame."""
    g = (lambda k: vc[k]) if isinstance(vc, dict) else (lambda k: getattr(vc, k))
    frame = g("frame_number") if isinstance(vc, dict) else g("frame")
    return (int(frame), *(round(float(g(k)), 2) for k in ("x", "y", "width", "height")), query_frame)


def _scored(b: PeakBox, score: float | None = None) -> ScoredBox:
    return ScoredBox(float(b.x1), float(b.y1), float(b.x2), float(b.y2),
                     b.score if score is None else float(score))


# one file serves every clip of a detect job: parse it once
_load = lru_cache(maxsize=2)(read_detection_file)


class PrecomputedBackend:
    name = "precomputed"
    needs_frames = False

    def __init__(self, path: str | None):
        if not path:
            raise InputError("detect.precomputed", "backend 'precomputed' needs the path of EgoLoc's "
                                                   "per-frame dump or peak file in detect.precomputed")
        self.path = str(path)
        self.peaks: dict[tuple[int, str], list[Peak]] = {}

    def _crop_key(self, vc, where: str, query_frame: int | None = None) -> tuple:
        try:
            return crop_key(vc, query_frame)
        except (KeyError, TypeError, ValueError, AttributeError):
            raise InputError(self.path, f"{where}.visual_crop: expected "
                                        "{frame_number, x, y, width, height}") from None

    def detect(self, store: FrameStore, jobs: list[QueryJob], top_k: int) -> dict[tuple[int, str], FrameBoxes]:
        data = _load(self.path)
        if isinstance(data, DetectionDump):
            out = self._from_dump(data, jobs, top_k)
        elif data.variant == "val":
            out = self._from_val_peaks(data, jobs)
        else:
            out = self._from_test_peaks(data, jobs)
        missing = [j.key for j in jobs if j.key not in out and j.key not in self.peaks]
        if jobs and len(missing) == len(jobs):
            raise InputError(self.path, f"none of the {len(jobs)} queries of clip "
                                        f"{jobs[0].query.clip_uid if jobs[0].query else '?'} is in this file")
        for key in missing:
            log.warning("%s: no precomputed detections for query %s", self.path, key)
            self.peaks[key] = []
        return out

    def _from_dump(self, data: DetectionDump, jobs: list[QueryJob], top_k: int):
        index = {(p.clip_uid, self._crop_key(p.visual_crop, f"dataset_predictions[{i}]", p.query_frame)): p
                 for i, p in enumerate(data.queries)}
        out = {}
        for j in jobs:
            p = index.get((j.query.clip_uid, crop_key(j.query.visual_crop, j.query_frame)))
            if p is None:
                continue
            out[j.key] = [(f.frame, sorted((_scored(b, s) for b, s in zip(f.boxes, f.scores)),
                                           key=lambda b: -b.score)[:top_k])
                          for f in p.frames if f.frame < j.query_frame]
        return out

    def _from_val_peaks(self, data: PeakFile, jobs: list[QueryJob]):
        index = {}
        for i, e in enumerate(data.entries):
            if e.extra.get("visual_crop") is None:
                raise InputError(self.path, f"predictions.visual_crop[{i}] is missing: val peaks are "
                                            "matched to queries by their visual crop")
            index[self._crop_key(e.extra["visual_crop"], f"predictions.visual_crop[{i}]")] = e
        for j in jobs:
            e = index.get(crop_key(j.query.visual_crop))
            if e is not None:
                self.peaks[j.key] = self._peaks(e.boxes)
        return {}

    def _from_test_peaks(self, data: PeakFile, jobs: list[QueryJob]):
        by_key = data.by_key()
        for j in jobs:
            boxes = by_key.get((j.query.clip_uid, *j.key))
            if boxes is not None:
                self.peaks[j.key] = self._peaks(boxes)
        return {}

    @staticmethod
    def _peaks(boxes: list[PeakBox]) -> list[Peak]:
        return sorted((Peak(b.frame, _scored(b)) for b in boxes), key=lambda p: p.frame)
