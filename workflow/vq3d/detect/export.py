"""Export a split's detections in EgoLoc's published formats (rule `export_peaks`): the peak
file `vq2d_{split}_vq3d_peak_clip.json` and the per-frame dump
`baseline_vq3d_detection_v105_{split}.json`, both read and written by vq3d.formats.peaks.

Val peak entries are the valid query sets in query-file order (the order of EgoLoc's
val_annot_vq3d.json, checked against the anchors), named "val_%010d"; test peaks hold one
prediction per annotation. A peak box has integer pixels and one score per box, written as both
clip_score and detection_score (EgoLoc's clip_score came from a CLIP re-ranker we do not run).
The dump lists frames 0..query_frame-1; its test dataset_uids are the query records (with
metadata.annotation_uid), as EgoLoc writes them.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Iterable

from ..errors import InputError
from ..formats.clip_detections import ClipDetections, QueryDetections, ScoredBox, read_clip_detections
from ..formats.peaks import (DetectionDump, DumpFrame, DumpQuery, PeakBox, PeakClip, PeakEntry,
                             PeakFile, PeakPrediction, PeakTrack, PeakVideo, write_dump, write_peaks)

log = logging.getLogger(__name__)


def _ego_box(fno: int, b: ScoredBox, scores: bool = True) -> PeakBox:
    return PeakBox(int(fno), x1=int(b.x1), y1=int(b.y1), x2=int(round(b.x2)), y2=int(round(b.y2)),
                   scores={"clip_score": float(b.score), "detection_score": float(b.score)}
                   if scores else {})


def _valid_query_sets(raw: dict):
    """(video, clip, annotation index, annotation, qset id, qset) of the raw query file, in order."""
    for video in raw.get("videos", []):
        for clip in video.get("clips", []):
            for ai, ann in enumerate(clip.get("annotations", [])):
                for qid, qs in ann.get("query_sets", {}).items():
                    yield video, clip, ai, ann, qid, qs


def _index(detections: Iterable[ClipDetections]) -> dict[tuple[str, int, str], QueryDetections]:
    return {(d.clip_uid, q.annotation_index, q.query_set): q for d in detections for q in d.queries}


def _gt_box(b: dict) -> PeakBox:
    return PeakBox(b["frame_number"], x1=int(b["x"]), x2=int(b["x"] + b["width"]),
                   y1=int(b["y"]), y2=int(b["y"] + b["height"]))


def peak_file(raw: dict, dets: dict, split: str) -> PeakFile:
    if split == "val":
        entries = []
        for _, clip, ai, _, qid, qs in _valid_query_sets(raw):
            if qs.get("is_valid", True) is False:
                continue
            q = dets.get((clip["clip_uid"], ai, str(qid)))
            gt = sorted(qs.get("response_track") or [], key=lambda b: b["frame_number"])
            entries.append(PeakEntry(
                boxes=[_ego_box(p.frame, p.box) for p in q.peaks] if q else [],
                dataset_uid=f"val_{len(entries):010d}",
                extra={"ground_truth_response_track": {"bboxes": [_gt_box(b).to_json() for b in gt],
                                                       "score": None},
                       "visual_crop": qs["visual_crop"], "accessed_frames": qs["query_frame"],
                       "total_frames": qs["query_frame"]}))
        return PeakFile("val", entries=entries)
    videos = []
    for video in raw.get("videos", []):
        vout = PeakVideo(video["video_uid"], [])
        for clip in video.get("clips", []):
            cout = PeakClip(clip["clip_uid"], [])
            for ai, ann in enumerate(clip.get("annotations", [])):
                qsets = {}
                # EgoLoc/VQ2D list the valid query sets only (an annotation with none: all, empty)
                valid = [qid for qid, qs in ann.get("query_sets", {}).items() if qs.get("is_valid", True)]
                for qid in valid or list(ann.get("query_sets", {})):
                    q = dets.get((clip["clip_uid"], ai, str(qid)))
                    peaks = q.peaks if q else []
                    qsets[str(qid)] = PeakTrack([_ego_box(p.frame, p.box) for p in peaks],
                                                {"score": max((p.box.score for p in peaks), default=0.0)})
                extra = {"annotation_uid": ann["annotation_uid"]} if "annotation_uid" in ann else {}
                cout.predictions.append(PeakPrediction(qsets, extra))
            vout.clips.append(cout)
        videos.append(vout)
    return PeakFile("test", videos=videos,
                    header={"version": raw.get("version", "1.0"), "challenge": "ego4d_vq2d_challenge"})


def detection_dump(raw: dict, dets: dict, split: str) -> DetectionDump:
    uids, preds = [], []
    for video, clip, ai, ann, qid, qs in _valid_query_sets(raw):
        if qs.get("is_valid", True) is False:
            continue
        q = dets.get((clip["clip_uid"], ai, str(qid)))
        frames = [DumpFrame(f, [_ego_box(f, b, scores=False) for b in boxes], [float(b.score) for b in boxes])
                  for f, boxes in (q.frames if q else [])]
        extra = {"visual_crop_fno": qs["visual_crop"]["frame_number"]}
        if split == "val":
            extra["response_track"] = sorted(qs.get("response_track") or [], key=lambda b: b["frame_number"])
            uids.append(f"val_{len(uids):010d}")
        else:
            meta = {"video_uid": video["video_uid"], "video_start_sec": clip.get("video_start_sec"),
                    "video_end_sec": clip.get("video_end_sec"), "clip_fps": clip.get("clip_fps"),
                    "query_set": str(qid), "annotation_uid": ann.get("annotation_uid")}
            extra["metadata"] = meta
            uids.append({"metadata": meta, "clip_uid": clip["clip_uid"], "query_frame": qs["query_frame"],
                         "visual_crop": qs["visual_crop"]})
        preds.append(DumpQuery(clip["clip_uid"], qs["query_frame"], qs["visual_crop"], frames, extra))
    return DetectionDump(uids, preds)


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
    write_peaks(peaks, peak_file(raw, dets, split))
    write_dump(dump, detection_dump(raw, dets, split))
    log.info("exported %d queries from %d clips to %s and %s", len(dets), len(paths), peaks, dump)
