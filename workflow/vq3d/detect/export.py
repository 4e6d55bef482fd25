"""Export a split's detections in EgoLoc's published formats (rule `export_peaks`).

- Peak file `vq2d_{split}_vq3d_peak_clip.json` (as egoloc/2d_retrieval/data/):
  val: {"predictions": {"predicted_response_track": [{"bboxes": [box...]}],
  "ground_truth_response_track": [{"bboxes": [box...], "score": null}], "visual_crop": [...],
  "dataset_uids": ["val_0000000000", ...], "accessed_frames": [query_frame], "total_frames":
  [query_frame]}}: parallel lists over the valid query sets in query-file order (the order of
  EgoLoc's val_annot_vq3d.json, checked against the anchors);
  test: the VQ2D challenge format {"version", "challenge": "ego4d_vq2d_challenge", "results":
  {"videos": [{"video_uid", "clips": [{"clip_uid", "predictions": [{"query_sets": {qid:
  {"bboxes": [...], "score"}}, "annotation_uid"}]}]}]}}, one prediction per annotation.
  A peak box is {fno, x1, x2, y1, y2 (integer pixels), clip_score, detection_score}; we have one
  score per box, written as both (EgoLoc's clip_score came from a CLIP re-ranker we do not run).
- Per-frame dump `baseline_vq3d_detection_v105_{split}.json` (EgoLoc's 2d_retrieval/
  get_detection_peaks_{val,test}.py): {"dataset_uids": [...], "dataset_predictions": [{
  "top_boxes_per_clip": [[{fno, x1, x2, y1, y2}, ...] per frame 0..query_frame-1],
  "top_scores_per_clip": [[score, ...] per frame], "clip_uid", "query_frame", "visual_crop",
  "visual_crop_fno", and "response_track" (val) or "metadata" (test)}]}. val dataset_uids are the
  "val_%010d" strings; test ones are the query records (with metadata.annotation_uid), as EgoLoc
  writes them.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Iterable

from ..atomic import write_json
from ..errors import InputError
from ..formats.clip_detections import ClipDetections, QueryDetections, ScoredBox, read_clip_detections

log = logging.getLogger(__name__)


def _ego_box(fno: int, b: ScoredBox, scores: bool = True) -> dict:
    out = {"fno": int(fno), "x1": int(b.x1), "x2": int(round(b.x2)), "y1": int(b.y1), "y2": int(round(b.y2))}
    if scores:
        out.update(clip_score=float(b.score), detection_score=float(b.score))
    return out


def _valid_query_sets(raw: dict):
    """(video, clip, annotation index, annotation, qset id, qset) of the raw query file, in order."""
    for video in raw.get("videos", []):
        for clip in video.get("clips", []):
            for ai, ann in enumerate(clip.get("annotations", [])):
                for qid, qs in ann.get("query_sets", {}).items():
                    yield video, clip, ai, ann, qid, qs


def _index(detections: Iterable[ClipDetections]) -> dict[tuple[str, int, str], QueryDetections]:
    return {(d.clip_uid, q.annotation_index, q.query_set): q for d in detections for q in d.queries}


def peak_file(raw: dict, dets: dict, split: str) -> dict:
    if split == "val":
        cols = {k: [] for k in ("predicted_response_track", "ground_truth_response_track", "visual_crop",
                                "dataset_uids", "accessed_frames", "total_frames")}
        n = 0
        for _, clip, ai, _, qid, qs in _valid_query_sets(raw):
            if qs.get("is_valid", True) is False:
                continue
            q = dets.get((clip["clip_uid"], ai, str(qid)))
            cols["predicted_response_track"].append(
                {"bboxes": [_ego_box(p.frame, p.box) for p in q.peaks] if q else []})
            cols["ground_truth_response_track"].append({"bboxes": [
                {"fno": b["frame_number"], "x1": int(b["x"]), "x2": int(b["x"] + b["width"]),
                 "y1": int(b["y"]), "y2": int(b["y"] + b["height"])}
                for b in sorted(qs.get("response_track") or [], key=lambda b: b["frame_number"])],
                "score": None})
            cols["visual_crop"].append(qs["visual_crop"])
            cols["dataset_uids"].append(f"val_{n:010d}")
            cols["accessed_frames"].append(qs["query_frame"])
            cols["total_frames"].append(qs["query_frame"])
            n += 1
        return {"predictions": cols}
    videos = []
    for video in raw.get("videos", []):
        vout = {"video_uid": video["video_uid"], "clips": []}
        for clip in video.get("clips", []):
            cout = {"clip_uid": clip["clip_uid"], "predictions": []}
            for ai, ann in enumerate(clip.get("annotations", [])):
                qsets = {}
                # EgoLoc/VQ2D list the valid query sets only (an annotation with none: all, empty)
                valid = [qid for qid, qs in ann.get("query_sets", {}).items() if qs.get("is_valid", True)]
                for qid in valid or list(ann.get("query_sets", {})):
                    q = dets.get((clip["clip_uid"], ai, str(qid)))
                    peaks = q.peaks if q else []
                    qsets[qid] = {"bboxes": [_ego_box(p.frame, p.box) for p in peaks],
                                  "score": max((p.box.score for p in peaks), default=0.0)}
                pred = {"query_sets": qsets}
                if "annotation_uid" in ann:
                    pred["annotation_uid"] = ann["annotation_uid"]
                cout["predictions"].append(pred)
            vout["clips"].append(cout)
        videos.append(vout)
    return {"version": raw.get("version", "1.0"), "challenge": "ego4d_vq2d_challenge",
            "results": {"videos": videos}}


def detection_dump(raw: dict, dets: dict, split: str) -> dict:
    uids, preds = [], []
    for video, clip, ai, ann, qid, qs in _valid_query_sets(raw):
        if qs.get("is_valid", True) is False:
            continue
        q = dets.get((clip["clip_uid"], ai, str(qid)))
        frames = q.frames if q else []
        pred = {"top_boxes_per_clip": [[_ego_box(f, b, scores=False) for b in boxes] for f, boxes in frames],
                "top_scores_per_clip": [[float(b.score) for b in boxes] for _, boxes in frames],
                "clip_uid": clip["clip_uid"], "query_frame": qs["query_frame"],
                "visual_crop": qs["visual_crop"], "visual_crop_fno": qs["visual_crop"]["frame_number"]}
        if split == "val":
            pred["response_track"] = sorted(qs.get("response_track") or [], key=lambda b: b["frame_number"])
            uids.append(f"val_{len(uids):010d}")
        else:
            meta = {"video_uid": video["video_uid"], "video_start_sec": clip.get("video_start_sec"),
                    "video_end_sec": clip.get("video_end_sec"), "clip_fps": clip.get("clip_fps"),
                    "query_set": str(qid), "annotation_uid": ann.get("annotation_uid")}
            pred["metadata"] = meta
            uids.append({"metadata": meta, "clip_uid": clip["clip_uid"], "query_frame": qs["query_frame"],
                         "visual_crop": qs["visual_crop"]})
        preds.append(pred)
    return {"dataset_uids": uids, "dataset_predictions": preds}


def main(detections, queries, peaks, dump, split):
    """Stage entry point (rule `export_peaks`): `detections` is the list of per-clip files."""
    from ..formats.queries import read_queries
    if split not in ("val", "test"):
        raise InputError("split", f"expected 'val' or 'test', got {split!r}")
    paths = [detections] if isinstance(detections, (str, os.PathLike)) else list(detections)
    dets = _index(read_clip_detections(p) for p in paths)
    raw = read_queries(queries).raw  # validated once by the reader, then walked raw for the order
    n_missing = sum(1 for _, c, ai, _, qid, qs in _valid_query_sets(raw)
                    if qs.get("is_valid", True) and (c["clip_uid"], ai, str(qid)) not in dets)
    if n_missing:
        log.warning("%d query sets of %s have no detections (clips not run?): exported empty", n_missing, queries)
    write_json(peaks, peak_file(raw, dets, split))
    write_json(dump, detection_dump(raw, dets, split))
    log.info("exported %d queries from %d clips to %s and %s", len(dets), len(paths), peaks, dump)
