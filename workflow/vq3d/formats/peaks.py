"""Detection peaks: per VQ2D query, the candidate boxes the 3D stage lifts.

Two published variants (egoloc/2d_retrieval/data/):
- val (`vq2d_val_vq3d_peak_clip.json`): {"predictions": {"predicted_response_track": [{"bboxes"}],
  "ground_truth_response_track": [{"bboxes", "score"}], "visual_crop": [...], "dataset_uids": [...],
  "accessed_frames": [...], "total_frames": [...]}, "metrics": {}} — parallel lists, one per query,
  queries named only by `dataset_uid`; val_annot_vq3d.json names each dataset_uid's clip and query
  set, and the VQ2D query file gives its annotation index (see dataset_uid_keys).
- test (`vq2d_test_vq3d_peak_clip.json`): the VQ2D challenge format {"version", "challenge",
  "results": {"videos": [{"video_uid", "clips": [{"clip_uid", "predictions": [{"query_sets":
  {qset: {"bboxes"}}, "annotation_uid"}]}]}]}} — predictions[i] is VQ2D annotation index i.
A box is {"fno" (clip frame), "x1", "x2", "y1", "y2"} plus optional scores (clip_score,
detection_score). Keys (clip_uid, annotation_index, query_set) are VQ2D keys: map them to VQ3D
with formats.mapping."""

from __future__ import annotations

import copy
import os
from dataclasses import dataclass, field as dc_field

from ..errors import InputError
from ._common import as_dict, as_list, dump_json, field, load_json, uid
from .queries import QueryFile

WHAT = "detection peaks file"
Key = tuple[str, int, str]


@dataclass
class PeakBox:
    frame: int
    x1: float
    y1: float
    x2: float
    y2: float
    scores: dict[str, float] = dc_field(default_factory=dict)  # clip_score, detection_score, ...

    def to_json(self) -> dict:
        return {"fno": self.frame, "x1": self.x1, "x2": self.x2, "y1": self.y1, "y2": self.y2,
                **self.scores}


@dataclass
class PeakEntry:
    """One query's peaks. Val entries carry dataset_uid (and its other parallel fields in
    `extra`); test entries carry the key and video_uid (and annotation_uid in `extra`)."""

    boxes: list[PeakBox]
    key: Key | None = None
    video_uid: str | None = None
    dataset_uid: str | None = None
    extra: dict = dc_field(default_factory=dict)


@dataclass
class PeakFile:
    variant: str  # "val" | "test"
    entries: list[PeakEntry]
    raw: dict = dc_field(default_factory=dict)

    def by_key(self, dataset_keys: dict[str, Key] | None = None) -> dict[Key, list[PeakBox]]:
        """Peaks keyed by VQ2D (clip_uid, ai, query_set); val entries need `dataset_keys`
        (from dataset_uid_keys) unless their key is already set."""
        out = {}
        for e in self.entries:
            key = e.key or (dataset_keys or {}).get(e.dataset_uid)
            if key is None:
                raise KeyError(f"peak entry {e.dataset_uid} has no (clip, ai, query_set) key: "
                               "pass dataset_keys from dataset_uid_keys()")
            out[key] = e.boxes
        return out


def read_box(path, obj, where: str) -> PeakBox:
    if not isinstance(obj, dict):
        raise InputError(path, f"{where} must be an object with fno, x1, x2, y1, y2")
    scores = {k: float(field(path, obj, k, float, where)) for k in obj
              if k not in ("fno", "x1", "x2", "y1", "y2")}
    return PeakBox(frame=field(path, obj, "fno", int, where),
                   **{k: field(path, obj, k, float, where) for k in ("x1", "y1", "x2", "y2")},
                   scores=scores)


def _boxes(path, track, where) -> list[PeakBox]:
    return [read_box(path, b, f"{where}.bboxes[{i}]")
            for i, b in enumerate(as_list(path, track, "bboxes", where))]


_VAL_LISTS = ("predicted_response_track", "ground_truth_response_track", "visual_crop",
              "dataset_uids", "accessed_frames", "total_frames")


def read_peaks(path: str | os.PathLike) -> PeakFile:
    raw = load_json(path, WHAT)
    if not isinstance(raw, dict):
        raise InputError(path, f"{WHAT} must be a JSON object")
    if "predictions" in raw:
        return _read_val(path, raw)
    if "results" in raw:
        return _read_test(path, raw)
    raise InputError(path, f"{WHAT} has neither 'predictions' (val variant) nor 'results' (test)")


def _read_val(path, raw) -> PeakFile:
    preds = as_dict(path, raw, "predictions", "")
    tracks = as_list(path, preds, "predicted_response_track", "predictions")
    n = len(tracks)
    lists = {}
    for k in _VAL_LISTS:
        lists[k] = as_list(path, preds, k, "predictions", optional=k != "dataset_uids") or [None] * n
        if len(lists[k]) != n:
            raise InputError(path, f"predictions.{k} has {len(lists[k])} entries, "
                                   f"predicted_response_track has {n}")
    entries = []
    for i in range(n):
        duid = lists["dataset_uids"][i]
        if not isinstance(duid, str):
            raise InputError(path, f"predictions.dataset_uids[{i}] must be a string")
        entries.append(PeakEntry(
            boxes=_boxes(path, tracks[i], f"predictions.predicted_response_track[{i}]"),
            dataset_uid=duid,
            extra={k: lists[k][i] for k in _VAL_LISTS[1:] if k != "dataset_uids" and k in preds}))
    return PeakFile(variant="val", entries=entries, raw=raw)


def _read_test(path, raw) -> PeakFile:
    entries = []
    res = as_dict(path, raw, "results", "")
    for vi, video in enumerate(as_list(path, res, "videos", "results")):
        vw = f"results.videos[{vi}]"
        video_uid = uid(path, field(path, video, "video_uid", str, vw), "video_uid", vw)
        for ci, clip in enumerate(as_list(path, video, "clips", vw)):
            cw = f"{vw}.clips[{ci}]"
            clip_uid = uid(path, field(path, clip, "clip_uid", str, cw), "clip_uid", cw)
            for ai, pred in enumerate(as_list(path, clip, "predictions", cw)):
                pw = f"{cw}.predictions[{ai}]"
                extra = {k: v for k, v in pred.items() if k != "query_sets"} \
                    if isinstance(pred, dict) else {}
                for qset, track in as_dict(path, pred, "query_sets", pw).items():
                    entries.append(PeakEntry(
                        boxes=_boxes(path, track, f"{pw}.query_sets.{qset}"),
                        key=(clip_uid, ai, str(qset)), video_uid=video_uid, extra=extra))
    return PeakFile(variant="test", entries=entries, raw=raw)


def peaks_to_json(pf: PeakFile) -> dict:
    if pf.variant == "val":
        out = {k: copy.deepcopy(v) for k, v in (pf.raw or {}).items() if k != "predictions"}
        out.setdefault("metrics", {})
        preds = {"predicted_response_track": [{"bboxes": [b.to_json() for b in e.boxes]}
                                              for e in pf.entries]}
        for k in _VAL_LISTS[1:]:
            if k == "dataset_uids":
                preds[k] = [e.dataset_uid for e in pf.entries]
            elif all(k in e.extra for e in pf.entries):
                preds[k] = [copy.deepcopy(e.extra[k]) for e in pf.entries]
        out["predictions"] = preds
        return out
    if pf.variant != "test":
        raise ValueError(f"unknown peaks variant {pf.variant!r}")
    out = {k: copy.deepcopy(v) for k, v in (pf.raw or {}).items() if k != "results"}
    out.setdefault("version", "1.0")
    out.setdefault("challenge", "ego4d_vq2d_challenge")
    videos: dict[str, dict] = {}
    clips: dict[str, dict] = {}
    for e in pf.entries:
        if e.key is None or e.video_uid is None:
            raise ValueError("test-variant peak entries need key and video_uid")
        clip_uid, ai, qset = e.key
        video = videos.setdefault(e.video_uid, {"video_uid": e.video_uid, "clips": []})
        if clip_uid not in clips:
            clips[clip_uid] = {"clip_uid": clip_uid, "predictions": []}
            video["clips"].append(clips[clip_uid])
        preds = clips[clip_uid]["predictions"]
        while len(preds) <= ai:
            preds.append({"query_sets": {}})
        preds[ai].update({k: v for k, v in e.extra.items() if k not in preds[ai]})
        preds[ai]["query_sets"][qset] = {"bboxes": [b.to_json() for b in e.boxes]}
    out["results"] = {"videos": list(videos.values())}
    return out


def write_peaks(path: str | os.PathLike, pf: PeakFile) -> None:
    dump_json(path, peaks_to_json(pf))


# ---- val_annot_vq3d.json: the flat list that names each val dataset_uid ----

@dataclass
class ValAnnotEntry:
    dataset_uid: str
    clip_uid: str
    video_uid: str | None
    query_set: str
    query_frame: int
    visual_crop_frame: int


def read_val_annot(path: str | os.PathLike) -> tuple[list[ValAnnotEntry], list]:
    """Entries of val_annot_vq3d.json (flat list of VQ2D val queries) and the raw list."""
    raw = load_json(path, "VQ2D val annotation list")
    if not isinstance(raw, list):
        raise InputError(path, "VQ2D val annotation list must be a JSON list")
    out = []
    for i, e in enumerate(raw):
        w = f"[{i}]"
        meta = field(path, e, "metadata", dict, w, optional=True) or {}
        crop = field(path, e, "visual_crop", dict, w)
        vid = meta.get("video_uid")
        out.append(ValAnnotEntry(
            dataset_uid=field(path, e, "dataset_uid", str, w),
            clip_uid=uid(path, field(path, e, "clip_uid", str, w), "clip_uid", w),
            video_uid=uid(path, vid, "video_uid", f"{w}.metadata") if vid is not None else None,
            query_set=str(field(path, e, "query_set", (str, int), w)),
            query_frame=field(path, e, "query_frame", int, w),
            visual_crop_frame=field(path, crop, "frame_number", int, f"{w}.visual_crop")))
    return out, raw


def dataset_uid_keys(val_annot: list[ValAnnotEntry], queries: QueryFile,
                     *, source: str | os.PathLike = "val_annot") -> dict[str, Key]:
    """dataset_uid → VQ2D (clip_uid, annotation_index, query_set). val_annot has no annotation
    index, so it is found in the query file by (clip, query set, query frame, crop frame). The val
    query file holds a few queries annotated twice identically (e.g. clip f0f5f45c set 3 frame
    765); val_annot lists queries in query-file order, so such twins are taken in order."""
    index: dict[tuple, list[Key]] = {}
    for q in queries.queries:
        index.setdefault((q.clip_uid, q.query_set, q.query_frame, q.visual_crop.frame), []).append(q.key)
    out = {}
    for e in val_annot:
        hits = index.get((e.clip_uid, e.query_set, e.query_frame, e.visual_crop_frame))
        if not hits:
            raise InputError(source, f"dataset_uid {e.dataset_uid}: no query of the query file "
                                     f"has clip {e.clip_uid} query_set {e.query_set} "
                                     f"query_frame {e.query_frame} crop frame {e.visual_crop_frame}")
        out[e.dataset_uid] = hits.pop(0)
    return out
