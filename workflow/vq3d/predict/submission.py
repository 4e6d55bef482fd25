"""The challenge submission: the split's VQ3D annotation file (val annotations or test template)
with `pred_3d_vec_world`, `pred_3d_vec_query_frame` and `query_frame_pose` on every query set,
null where there is no prediction (the reason is logged).

Convention (that of EgoLoc's real test submission, which the challenge server scored at 87 % Succ,
and of its code, vq3d/json_parser.py `reformat_vq3d_test_v2`): `pred_3d_vec_world` is in the
Matterport scan frame, `query_frame_pose` is the query frame's cam_from_world (4×4) in that frame,
and `pred_3d_vec_query_frame` = query_frame_pose · pred_3d_vec_world. The per-clip files already
hold exactly these values.

Per-clip predictions are keyed by the VQ2D query file's (annotation index, query set); the VQ3D
file numbers its queries differently on val, so `mapping` (mapping_vq2d_to_vq3d_*.json, keyed by
the VQ3D query, see vq3d.formats.mapping) gives each VQ3D query its VQ2D query. Without it the keys
are taken to be the same (true of the test split)."""

from __future__ import annotations

import argparse
import logging

from ..errors import InputError
from ..formats.clip_predictions import read_clip_predictions
from ..formats.mapping import read_mapping
from ..formats.results import fill_submission
from ..formats.submission import write_submission
from ..formats.vq3d_annotations import iter_query_sets, read_vq3d

log = logging.getLogger(__name__)


def collect(prediction_files) -> tuple[dict, dict]:
    """{(clip_uid, VQ2D ai, VQ2D query set): {three submission fields}} and {same key: reason}
    for the queries without a 3D prediction or without a query-frame pose."""
    values, reasons = {}, {}
    for path in prediction_files:
        cp = read_clip_predictions(path)
        for q in cp.queries:
            key = (cp.clip_uid, q.annotation_index, q.query_set)
            if key in values:
                raise InputError(path, f"query {key} is predicted twice (clip files overlap)")
            values[key] = {"pred_3d_vec_world": q.pred_3d_vec_world,
                           "pred_3d_vec_query_frame": q.pred_3d_vec_query_frame,
                           "query_frame_pose": q.query_frame_pose}
            if q.pred_3d_vec_world is None:
                reasons[key] = q.reason or "no prediction"
            elif q.query_frame_pose is None:
                reasons[key] = q.query_pose_reason or "query frame has no pose"
    return values, reasons


def main(predictions, annotations, submission, mapping=None):
    files = [predictions] if isinstance(predictions, (str, bytes)) or hasattr(predictions, "__fspath__") \
        else list(predictions)
    raw = read_vq3d(annotations).raw
    by_vq2d, reasons = collect(files)
    table = read_mapping(mapping) if mapping else None
    wanted = [(c, ai, q) for _, _, c, ai, q, _, _ in iter_query_sets(annotations, raw)]
    if table is None:
        extra = sorted(set(by_vq2d) - set(wanted))
        if extra:
            raise InputError(annotations, f"{len(extra)} predicted queries are not in this "
                                          f"annotation file, e.g. {extra[:3]} (wrong split, or "
                                          "a VQ2D→VQ3D mapping is needed?)")
    # Walk the VQ3D queries and fetch the VQ2D query each one was asked as (EgoLoc's run.py does).
    values, used = {}, set()
    n_world = n_pose = 0
    for key in wanted:
        src = key if table is None else table.to_vq2d(*key)
        v = by_vq2d.get(src) if src is not None else None
        if v is None:
            why = "the mapping names no VQ2D query" if src is None else "no per-clip prediction"
            log.info("query %s: null (%s)", key, why)
            continue
        values[key] = v
        used.add(src)
        n_world += v["pred_3d_vec_world"] is not None
        n_pose += v["query_frame_pose"] is not None
        if src in reasons:
            log.info("query %s: %s", key, reasons[src])
    unused = sorted(set(by_vq2d) - used)
    if unused:
        log.info("%d predicted VQ2D queries are not VQ3D queries (ignored), e.g. %s", len(unused),
                 unused[:3])
    filled = fill_submission(raw, values)
    log.info("submission: %d queries, %d with a 3D prediction, %d with a query-frame pose",
             len(wanted), n_world, n_pose)
    write_submission(submission, filled, raw, template_path=annotations)
    return filled


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--predictions", nargs="+", required=True, help="per-clip prediction files")
    parser.add_argument("--annotations", required=True,
                        help="the split's VQ3D annotation file or the test template")
    parser.add_argument("--mapping", help="mapping_vq2d_to_vq3d_queries_annotations_<split>.json")
    parser.add_argument("--submission", required=True, help="submission JSON to write")


def run(args: argparse.Namespace) -> int:
    main(args.predictions, args.annotations, args.submission, mapping=args.mapping)
    return 0
