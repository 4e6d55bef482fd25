"""Detect stage: score each query's frames 0 .. query_frame-1 against its visual crop, keep the
top-k boxes per frame, write `R/detect/<clip>.json` (format: `vq3d.formats.clip_detections`, no
peaks: stage `peaks`, vq3d.detect.peaks, picks them from these boxes, so that a peak setting does
not rerun the detector). Only EgoLoc's precomputed peak file brings peaks of its own.

Backends (`conf["backend"]`): `features` (weight-free SIFT + geometric verification, the default),
`siamrcnn` (Ego4D's VQ2D SiamRCNN through detectron2, GPU), `precomputed` (EgoLoc's shared per-frame
dump or peak file, path in `conf["precomputed"]`)."""

from __future__ import annotations

import argparse
import logging
import time
from pathlib import Path

from ..errors import InputError
from ..formats.clip_detections import ClipDetections, QueryDetections, write_clip_detections
from ..formats.queries import read_queries
from ..ids import check_id
from .backends import make_backend
from .backends.base import QueryJob
from .framestore import CropSpec, FrameStore

log = logging.getLogger(__name__)

def _jobs(queries_path: str, queries: list, store: FrameStore) -> list[QueryJob]:
    jobs = []
    for q in queries:
        where = (f"{queries_path} (clip {q.clip_uid}, annotation {q.annotation_index}, "
                 f"query set {q.query_set})")
        vc = q.visual_crop
        if vc is None:
            raise InputError(where, "query has no visual_crop")
        if q.query_frame < 1:
            raise InputError(where, f"query_frame {q.query_frame}: no frame precedes it to search")
        ow, oh = vc.original_width, vc.original_height
        if not ow or not oh:
            # No original size given: the boxes are in the decoded frames' pixels.
            h, w = store.read(vc.frame, gray=True).shape[:2]
            ow, oh = w, h
        crop = CropSpec(int(vc.frame), float(vc.x), float(vc.y), float(vc.width), float(vc.height),
                        int(ow), int(oh))
        jobs.append(QueryJob((q.annotation_index, q.query_set), crop, q.query_frame, where, q))
    return jobs


def detect_clip(frames_dir, queries, clip_uid: str, conf: dict, backend=None) -> ClipDetections:
    """Detections of every query of `clip_uid`; `conf`: the detect stage's config slice
    (vq3d.stages); `backend` overrides conf["backend"] (tests)."""
    check_id(clip_uid, what="clip_uid")
    qf = read_queries(queries)
    if clip_uid not in qf.clips:
        raise InputError(queries, f"clip_uid {clip_uid} is not in the query file")
    clip_queries = qf.for_clip(clip_uid)
    backend = backend or make_backend(conf)
    store = FrameStore(frames_dir)
    jobs = _jobs(str(queries), clip_queries, store)
    if getattr(backend, "needs_frames", True) and jobs:
        store.check_range(max(j.query_frame for j in jobs))
        for j in jobs:
            if not store.path(j.crop.frame).is_file():
                raise InputError(store.path(j.crop.frame),
                                 f"frame {j.crop.frame} of the visual crop of {j.source} is missing")
    t0 = time.perf_counter()
    per_query = backend.detect(store, jobs, conf["top_k"])
    n_frames = max((j.query_frame for j in jobs), default=0)
    log.info("clip %s: %d queries, %d frames scored by %s in %.1f s", clip_uid, len(jobs), n_frames,
             backend.name, time.perf_counter() - t0)
    out = ClipDetections(clip_uid, backend.name)
    precomputed_peaks = getattr(backend, "peaks", {})  # EgoLoc's peak file: its peaks are final
    for j in jobs:
        frames = per_query.get(j.key, [])
        peaks = precomputed_peaks.get(j.key, [])
        reason = ("the precomputed peak file has no box for this query"
                  if j.key in precomputed_peaks and not peaks else None)
        out.queries.append(QueryDetections(
            annotation_index=j.key[0], query_set=j.key[1], query_frame=j.query_frame,
            visual_crop_frame=j.crop.frame,
            image_size=(j.crop.original_width, j.crop.original_height), frames=frames, peaks=peaks,
            reason=reason))
        log.info("query %s: %d frames scored, %d with a box", j.key, len(frames),
                 sum(bool(b) for _, b in frames))
    return out


def main(frames_dir, queries, out, clip_uid, conf, threads: int = -1):
    """Stage entry point (rule `detect`); `threads`: the job's, used by the features backend
    unless detect.features.threads is set (-1: every CPU this process may use)."""
    if threads > 0 and "features" in conf and not conf["features"]["threads"]:
        conf = {**conf, "features": {**conf["features"], "threads": threads}}
    write_clip_detections(out, detect_clip(frames_dir, queries, clip_uid, conf))


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--frames", required=True, help="folder of color_%%07d.jpg clip frames")
    parser.add_argument("--queries", required=True, help="VQ2D-style query file")
    parser.add_argument("--clip-uid", required=True)
    parser.add_argument("--out", required=True, help="clip detections JSON to write")
    parser.add_argument("--backend", choices=["features", "siamrcnn", "precomputed"])
    parser.add_argument("--top-k", type=int)
    parser.add_argument("--precomputed", help="EgoLoc per-frame dump or peak file (backend precomputed)")
    parser.add_argument("--config", help="config.yaml whose 'detect' section is used")


def run(args: argparse.Namespace) -> int:
    from ..config import load_config
    from ..stages import config_slice

    config = load_config(args.config)  # no file: the schema's defaults
    conf = config["detect"]
    for key in ("backend", "top_k", "precomputed"):
        if getattr(args, key):
            conf[key] = getattr(args, key)
    main(args.frames, args.queries, args.out, args.clip_uid, config_slice(config, "detect"))
    return 0
