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
- the per-frame dump (`baseline_vq3d_detection_v105_{split}.json`, EgoLoc's
  get_detection_peaks_{val,test}.py): DetectionDump, below.
A box is {"fno" (clip frame), "x1", "x2", "y1", "y2"} plus optional scores (clip_score,
detection_score). Keys (clip_uid, annotation_index, query_set) are VQ2D keys: map them to VQ3D
with formats.mapping."""

from __future__ import annotations

import copy
import os
from dataclasses import dataclass, field as dc_field

from ..errors import InputError
from ._common import as_dict, as_list, dump_json, field, load_json, number, uid
from .queries import QueryFile

WHAT = "detection peaks file"
DUMP_WHAT = "EgoLoc per-frame detection dump"
Key = tuple[str, int, str]
_COORDS = ("fno", "x1", "x2", "y1", "y2")


@dataclass
class PeakBox:
    """An EgoLoc box: clip frame `fno` and corners in pixels of the original video."""

    frame: int
    x1: float
    y1: float
    x2: float
    y2: float
    scores: dict[str, float] = dc_field(default_factory=dict)  # clip_score, detection_score, ...

    @property
    def score(self) -> float:
        """The detector's score: detection_score, else score, else 1.0 (a box with none)."""
        return float(self.scores.get("detection_score", self.scores.get("score", 1.0)))

    def to_json(self) -> dict:
        return {"fno": self.frame, "x1": self.x1, "x2": self.x2, "y1": self.y1, "y2": self.y2,
                **self.scores}


@dataclass
class PeakEntry:
    """One val query's peaks; its other parallel fields (ground_truth_response_track,
    visual_crop, accessed_frames, total_frames) in `extra`."""

    boxes: list[PeakBox]
    dataset_uid: str
    extra: dict = dc_field(default_factory=dict)


@dataclass
class PeakTrack:
    """A test query set's peaks; other keys of its object (our exports' `score`) in `extra`."""

    boxes: list[PeakBox]
    extra: dict = dc_field(default_factory=dict)


@dataclass
class PeakPrediction:
    """predictions[i] of a test clip: VQ2D annotation index i (annotation_uid in `extra`)."""

    query_sets: dict[str, PeakTrack]
    extra: dict = dc_field(default_factory=dict)


@dataclass
class PeakClip:
    clip_uid: str
    predictions: list[PeakPrediction]


@dataclass
class PeakVideo:
    video_uid: str
    clips: list[PeakClip]


@dataclass
class PeakFile:
    """variant "val": `entries` (parallel lists, file order); "test": the `videos` tree.
    `header`: the other top-level keys (val: metrics; test: version, challenge)."""

    variant: str  # "val" | "test"
    entries: list[PeakEntry] = dc_field(default_factory=list)
    videos: list[PeakVideo] = dc_field(default_factory=list)
    header: dict = dc_field(default_factory=dict)

    def by_key(self, dataset_keys: dict[str, Key] | None = None) -> dict[Key, list[PeakBox]]:
        """Peaks keyed by VQ2D (clip_uid, ai, query_set); val entries need `dataset_keys`
        (from dataset_uid_keys)."""
        if self.variant == "test":
            return {(c.clip_uid, ai, q): t.boxes for v in self.videos for c in v.clips
                    for ai, p in enumerate(c.predictions) for q, t in p.query_sets.items()}
        out = {}
        for e in self.entries:
            key = (dataset_keys or {}).get(e.dataset_uid)
            if key is None:
                raise KeyError(f"peak entry {e.dataset_uid} has no (clip, ai, query_set) key: "
                               "pass dataset_keys from dataset_uid_keys()")
            out[key] = e.boxes
        return out


def read_box(path, obj, where: str) -> PeakBox:
    if not isinstance(obj, dict):
        raise InputError(path, f"{where} must be an object with fno, x1, x2, y1, y2")
    scores = {k: float(field(path, obj, k, float, where)) for k in obj if k not in _COORDS}
    frame = field(path, obj, "fno", int, where)
    return PeakBox(frame, **{k: field(path, obj, k, float, where) for k in _COORDS[1:]},
                   scores=scores)


def _track(path, track, where) -> PeakTrack:
    boxes = [read_box(path, b, f"{where}.bboxes[{i}]")
             for i, b in enumerate(as_list(path, track, "bboxes", where))]
    return PeakTrack(boxes, {k: copy.deepcopy(v) for k, v in track.items() if k != "bboxes"})


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


def _header(raw: dict, data_key: str) -> dict:
    return {k: copy.deepcopy(v) for k, v in raw.items() if k != data_key}


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
            boxes=_track(path, tracks[i], f"predictions.predicted_response_track[{i}]").boxes,
            dataset_uid=duid,
            extra={k: lists[k][i] for k in _VAL_LISTS[1:] if k != "dataset_uids" and k in preds}))
    return PeakFile(variant="val", entries=entries, header=_header(raw, "predictions"))


def _read_test(path, raw) -> PeakFile:
    videos = []
    res = as_dict(path, raw, "results", "")
    for vi, video in enumerate(as_list(path, res, "videos", "results")):
        vw = f"results.videos[{vi}]"
        vout = PeakVideo(uid(path, field(path, video, "video_uid", str, vw), "video_uid", vw), [])
        for ci, clip in enumerate(as_list(path, video, "clips", vw)):
            cw = f"{vw}.clips[{ci}]"
            cout = PeakClip(uid(path, field(path, clip, "clip_uid", str, cw), "clip_uid", cw), [])
            for ai, pred in enumerate(as_list(path, clip, "predictions", cw)):
                pw = f"{cw}.predictions[{ai}]"
                qsets = {str(q): _track(path, t, f"{pw}.query_sets.{q}")
                         for q, t in as_dict(path, pred, "query_sets", pw).items()}
                cout.predictions.append(PeakPrediction(
                    qsets, {k: copy.deepcopy(v) for k, v in pred.items() if k != "query_sets"}))
            vout.clips.append(cout)
        videos.append(vout)
    return PeakFile(variant="test", videos=videos, header=_header(raw, "results"))


def peaks_to_json(pf: PeakFile) -> dict:
    def track(boxes, extra=None):
        return {"bboxes": [b.to_json() for b in boxes], **copy.deepcopy(extra or {})}

    out = copy.deepcopy(pf.header)
    if pf.variant == "val":
        out.setdefault("metrics", {})
        preds = {"predicted_response_track": [track(e.boxes) for e in pf.entries]}
        for k in _VAL_LISTS[1:]:
            if k == "dataset_uids":
                preds[k] = [e.dataset_uid for e in pf.entries]
            elif all(k in e.extra for e in pf.entries):
                preds[k] = [copy.deepcopy(e.extra[k]) for e in pf.entries]
        out["predictions"] = preds
        return out
    if pf.variant != "test":
        raise ValueError(f"unknown peaks variant {pf.variant!r}")
    out.setdefault("version", "1.0")
    out.setdefault("challenge", "ego4d_vq2d_challenge")
    out["results"] = {"videos": [
        {"video_uid": v.video_uid, "clips": [
            {"clip_uid": c.clip_uid, "predictions": [
                {"query_sets": {q: track(t.boxes, t.extra) for q, t in p.query_sets.items()},
                 **copy.deepcopy(p.extra)} for p in c.predictions]} for c in v.clips]}
        for v in pf.videos]}
    return out


def write_peaks(path: str | os.PathLike, pf: PeakFile) -> None:
    dump_json(path, peaks_to_json(pf))


# ---- the per-frame dump baseline_vq3d_detection_v105_{val,test}.json ----
# EgoLoc's 2d_retrieval/get_detection_peaks_{val,test}.py: {"dataset_uids": [...],
# "dataset_predictions": [{"top_boxes_per_clip": [[{fno, x1, x2, y1, y2}, ...] per frame],
# "top_scores_per_clip": [[score, ...] per frame], "clip_uid", "query_frame", "visual_crop",
# "visual_crop_fno", "response_track" (val) | "metadata" (test)}]}. val dataset_uids are
# "val_%010d" strings, test ones the query records.

@dataclass
class DumpFrame:
    """One scored frame: its boxes (no scores inside) and their scores, in file order. A frame
    without boxes has no fno of its own: it is its position in the list."""

    frame: int
    boxes: list[PeakBox]
    scores: list[float]


@dataclass
class DumpQuery:
    clip_uid: str
    query_frame: int
    visual_crop: dict          # the query file's visual_crop object, as written there
    frames: list[DumpFrame]
    extra: dict = dc_field(default_factory=dict)  # visual_crop_fno, response_track | metadata


@dataclass
class DetectionDump:
    dataset_uids: list         # str (val) or query records (test), parallel to `queries`
    queries: list[DumpQuery]
    header: dict = dc_field(default_factory=dict)


def is_dump(raw) -> bool:
    return isinstance(raw, dict) and "dataset_predictions" in raw


def read_dump(path: str | os.PathLike) -> DetectionDump:
    return _dump_from_json(path, load_json(path, DUMP_WHAT))


def _dump_from_json(path, raw) -> DetectionDump:
    if not is_dump(raw):
        raise InputError(path, f"{DUMP_WHAT} must be an object with 'dataset_predictions'")
    preds = as_list(path, raw, "dataset_predictions", "")
    uids = as_list(path, raw, "dataset_uids", "")
    if len(uids) != len(preds):
        raise InputError(path, f"dataset_uids has {len(uids)} entries, "
                               f"dataset_predictions has {len(preds)}")
    queries = []
    for i, p in enumerate(preds):
        w = f"dataset_predictions[{i}]"
        boxes = as_list(path, p, "top_boxes_per_clip", w)
        scores = as_list(path, p, "top_scores_per_clip", w)
        if len(boxes) != len(scores):
            raise InputError(path, f"{w}: top_boxes_per_clip and top_scores_per_clip must be "
                                   "lists of the same length")
        frames = []
        for fi, (fb, fs) in enumerate(zip(boxes, scores)):
            if not isinstance(fb, list) or not isinstance(fs, list) or len(fb) != len(fs):
                raise InputError(path, f"{w}: top_boxes_per_clip[{fi}] and top_scores_per_clip"
                                       f"[{fi}] must be lists of the same length")
            fboxes = [read_box(path, b, f"{w}.top_boxes_per_clip[{fi}][{bi}]")
                      for bi, b in enumerate(fb)]
            fscores = [number(path, s, f"{w}.top_scores_per_clip[{fi}][{si}]")
                       for si, s in enumerate(fs)]
            frames.append(DumpFrame(fboxes[0].frame if fboxes else fi, fboxes, fscores))
        queries.append(DumpQuery(
            clip_uid=uid(path, field(path, p, "clip_uid", str, w), "clip_uid", w),
            query_frame=field(path, p, "query_frame", int, w),
            visual_crop=copy.deepcopy(field(path, p, "visual_crop", dict, w)),
            frames=frames,
            extra={k: copy.deepcopy(v) for k, v in p.items()
                   if k not in ("top_boxes_per_clip", "top_scores_per_clip", "clip_uid",
                                "query_frame", "visual_crop")}))
    header = {k: copy.deepcopy(v) for k, v in raw.items() if k not in ("dataset_uids", "dataset_predictions")}
    return DetectionDump(copy.deepcopy(uids), queries, header)


def dump_to_json(dd: DetectionDump) -> dict:
    out = copy.deepcopy(dd.header)
    out["dataset_uids"] = copy.deepcopy(dd.dataset_uids)
    out["dataset_predictions"] = [
        {"top_boxes_per_clip": [[b.to_json() for b in f.boxes] for f in q.frames],
         "top_scores_per_clip": [list(f.scores) for f in q.frames],
         "clip_uid": q.clip_uid, "query_frame": q.query_frame,
         "visual_crop": copy.deepcopy(q.visual_crop), **copy.deepcopy(q.extra)}
        for q in dd.queries]
    return out


def write_dump(path: str | os.PathLike, dd: DetectionDump) -> None:
    dump_json(path, dump_to_json(dd))


def read_detection_file(path: str | os.PathLike) -> PeakFile | DetectionDump:
    """An EgoLoc detection file of any of the three shapes, told apart by its content."""
    raw = load_json(path, "precomputed detections file")
    if is_dump(raw):
        return _dump_from_json(path, raw)
    if isinstance(raw, dict) and isinstance(raw.get("predictions"), dict):
        return _read_val(path, raw)
    if isinstance(raw, dict) and isinstance(raw.get("results"), dict):
        return _read_test(path, raw)
    raise InputError(path, "not an EgoLoc detection file: expected 'dataset_predictions' "
                           "(per-frame dump), 'predictions' (val peaks) or 'results' (test peaks)")


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
