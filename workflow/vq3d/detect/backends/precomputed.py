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

import json
import logging
from functools import lru_cache
from pathlib import Path

from ...errors import InputError
from ...formats.clip_detections import Peak, ScoredBox
from ..framestore import FrameStore
from .base import FrameBoxes, QueryJob

log = logging.getLogger(__name__)


def crop_key(vc: dict | object, query_frame: int | None = None) -> tuple:
    """A visual crop's identity (frame, box to 0.01 px), optionally with the query frame."""
    g = (lambda k: vc[k]) if isinstance(vc, dict) else (lambda k: getattr(vc, k))
    frame = g("frame_number") if isinstance(vc, dict) else g("frame")
    return (int(frame), *(round(float(g(k)), 2) for k in ("x", "y", "width", "height")), query_frame)


def _ego_box(path, where: str, b: dict) -> tuple[int, ScoredBox]:
    try:
        x1, x2, y1, y2 = (float(b[k]) for k in ("x1", "x2", "y1", "y2"))
        score = float(b.get("detection_score", b.get("score", 1.0)))
        return int(b["fno"]), ScoredBox(x1, y1, x2, y2, score)
    except (KeyError, TypeError, ValueError):
        raise InputError(path, f"{where}: expected a box {{fno, x1, x2, y1, y2}}, got {b!r}") from None


@lru_cache(maxsize=2)
def _load(path: str) -> dict:
    try:
        return json.loads(Path(path).read_text())
    except FileNotFoundError:
        raise InputError(path, "precomputed detections file does not exist") from None
    except json.JSONDecodeError as exc:
        raise InputError(path, f"not valid JSON ({exc})") from None


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
        if isinstance(data, dict) and "dataset_predictions" in data:
            out = self._from_dump(data, jobs, top_k)
        elif isinstance(data, dict) and isinstance(data.get("predictions"), dict):
            out = self._from_val_peaks(data["predictions"], jobs)
        elif isinstance(data, dict) and isinstance(data.get("results"), dict):
            out = self._from_test_peaks(data["results"], jobs)
        else:
            raise InputError(self.path, "not an EgoLoc detection file: expected 'dataset_predictions' "
                                        "(per-frame dump), 'predictions' (val peaks) or 'results' (test peaks)")
        missing = [j.key for j in jobs if j.key not in out and j.key not in self.peaks]
        if jobs and len(missing) == len(jobs):
            raise InputError(self.path, f"none of the {len(jobs)} queries of clip "
                                        f"{jobs[0].query.clip_uid if jobs[0].query else '?'} is in this file")
        for key in missing:
            log.warning("%s: no precomputed detections for query %s", self.path, key)
            self.peaks[key] = []
        return out

    def _from_dump(self, data: dict, jobs: list[QueryJob], top_k: int):
        preds = data["dataset_predictions"]
        if not isinstance(preds, list):
            raise InputError(self.path, "field 'dataset_predictions' must be a list")
        index = {}
        for i, p in enumerate(preds):
            if isinstance(p, dict) and "visual_crop" in p:
                key = self._crop_key(p["visual_crop"], f"dataset_predictions[{i}]", p.get("query_frame"))
                index[(p.get("clip_uid"), key)] = i
        out = {}
        for j in jobs:
            i = index.get((j.query.clip_uid, crop_key(j.query.visual_crop, j.query_frame)))
            if i is None:
                continue
            p, where = preds[i], f"dataset_predictions[{i}]"
            boxes, scores = p.get("top_boxes_per_clip"), p.get("top_scores_per_clip")
            if not isinstance(boxes, list) or not isinstance(scores, list) or len(boxes) != len(scores):
                raise InputError(self.path, f"{where}: top_boxes_per_clip and top_scores_per_clip must "
                                            "be lists of the same length")
            frames: FrameBoxes = []
            for fi, (fb, fs) in enumerate(zip(boxes, scores)):
                if not isinstance(fb, list) or not isinstance(fs, list) or len(fb) != len(fs):
                    raise InputError(self.path, f"{where}: top_boxes_per_clip[{fi}] and "
                                                f"top_scores_per_clip[{fi}] must be lists of the same length")
                parsed = [_ego_box(self.path, f"{where}.top_boxes_per_clip[{fi}][{bi}]", b)
                          for bi, b in enumerate(fb)]
                fno = parsed[0][0] if parsed else fi
                scored = sorted((ScoredBox(b.x1, b.y1, b.x2, b.y2, float(s)) for (_, b), s in zip(parsed, fs)),
                                key=lambda b: -b.score)
                if fno < j.query_frame:
                    frames.append((fno, scored[:top_k]))
            out[j.key] = frames
        return out

    def _from_val_peaks(self, preds: dict, jobs: list[QueryJob]):
        tracks, crops = preds.get("predicted_response_track"), preds.get("visual_crop")
        if not isinstance(tracks, list) or not isinstance(crops, list) or len(tracks) != len(crops):
            raise InputError(self.path, "predictions.predicted_response_track and predictions.visual_crop "
                                        "must be parallel lists")
        index = {self._crop_key(vc, f"predictions.visual_crop[{i}]"): i for i, vc in enumerate(crops)}
        for j in jobs:
            i = index.get(crop_key(j.query.visual_crop))
            if i is not None:
                self.peaks[j.key] = self._peaks(tracks[i], f"predictions.predicted_response_track[{i}]")
        return {}

    def _from_test_peaks(self, results: dict, jobs: list[QueryJob]):
        videos = results.get("videos", [])
        if not isinstance(videos, list) or not all(
                isinstance(v, dict) and isinstance(v.get("clips", []), list)
                and all(isinstance(c, dict) for c in v.get("clips", [])) for v in videos):
            raise InputError(self.path, "results.videos must be a list of {video_uid, clips: [...]} objects")
        clips = {c.get("clip_uid"): c for v in videos for c in v.get("clips", [])}
        for j in jobs:
            clip = clips.get(j.query.clip_uid)
            preds = clip.get("predictions", []) if clip else []
            ai, qset = j.key
            if ai < len(preds) and qset in preds[ai].get("query_sets", {}):
                self.peaks[j.key] = self._peaks(preds[ai]["query_sets"][qset],
                                                f"clip {j.query.clip_uid} predictions[{ai}].query_sets.{qset}")
        return {}

    def _peaks(self, entry, where: str) -> list[Peak]:
        if not isinstance(entry, dict) or not isinstance(entry.get("bboxes"), list):
            raise InputError(self.path, f"{where}: expected {{'bboxes': [...]}}")
        peaks = [Peak(*_ego_box(self.path, f"{where}.bboxes[{k}]", b)) for k, b in enumerate(entry["bboxes"])]
        return sorted(peaks, key=lambda p: p.frame)
