"""Replay pose_merge and predict on a finished run's inputs, and compare two replays.

Reruns, for every clip of RESULTS (a finished run's results folder: clips_frames/, pose/, detect/),
the pose_merge and predict stage functions with the schema defaults (predict with every depth
source in --depth; with --refit predict fits each sub-model's Sim(3) as it does for imported
poses), writing poses, summaries and predictions under OUT. With --against, every
number of OUT's poses and predictions is compared with those of another replay: the largest
absolute difference per kind is printed (what a geometry refactor must leave at rounding level).

    python benchmarks/pose_predict_replay.py RESULTS QUERIES INTRINSICS OUT [--against OTHER]
        [--gt data/synth/gt/queries.json]

QUERIES and INTRINSICS are the run's VQ2D query file and scan_to_intrinsics.json (the demo's:
data/synth/vq_val_vq3d.json and data/synth/scan_to_intrinsics.json). With --gt (a synthetic
run's ground truth), each query's L2 error against the true object centre is printed too.
"""

from __future__ import annotations

import argparse
import inspect
import json
import logging
from pathlib import Path

import numpy as np

from vq3d.config import defaults
from vq3d.formats.clip_predictions import read_clip_predictions
from vq3d.pose import merge
from vq3d.predict import main as predict
from vq3d.stages import stage_conf

DEPTHS = ("sfm", "triangulate")


def replay(results: Path, queries: Path, intrinsics: Path, out: Path, depths, refit=False) -> None:
    for pose_dir in sorted((results / "pose").iterdir()):
        clip = pose_dir.name
        clip_out = out / clip
        clip_out.mkdir(parents=True, exist_ok=True)
        outputs = {"poses": clip_out / "poses.json", "summary": clip_out / "summary.json"}
        if "scan_from_model" in inspect.signature(merge.main).parameters:
            outputs["scan_from_model"] = clip_out / "scan_from_model.json"
        merge.main(frames_dir=results / "clips_frames" / clip, sfm_dir=pose_dir / "sfm",
                   registration=pose_dir / "registration.json", pnp=pose_dir / "pnp.json",
                   clip_uid=clip, conf=stage_conf("pose_merge"), **outputs)
        scan_uid = read_clip_predictions(results / "predict" / f"{clip}.json").scan_uid
        extra = ({"scan_from_model": outputs["scan_from_model"]}
                 if "scan_from_model" in inspect.signature(predict).parameters and not refit else {})
        for depth in depths:
            # As with imported poses, predict's own Sim(3) fit reads sfm_sim3_threshold_m.
            conf = {**stage_conf("predict", depth=depth),
                    "sfm_sim3_threshold_m": defaults("predict")["sfm_sim3_threshold_m"]}
            predict(detections=results / "peaks" / f"{clip}.json", poses=outputs["poses"],
                    sfm_dir=pose_dir / "sfm", queries=queries, intrinsics=intrinsics,
                    out=clip_out / f"predict_{depth}.json", clip_uid=clip, scan_uid=scan_uid,
                    conf=conf, **extra)


def numbers(value, prefix=""):
    """{path: float} of every number in a JSON value (None and strings skipped)."""
    if isinstance(value, bool) or value is None or isinstance(value, str):
        return {}
    if isinstance(value, (int, float)):
        return {prefix: float(value)}
    items = value.items() if isinstance(value, dict) else enumerate(value)
    out = {}
    for k, v in items:
        out.update(numbers(v, f"{prefix}/{k}"))
    return out


def compare(a: Path, b: Path) -> int:
    worst: dict[str, tuple[float, str]] = {}
    problems = 0
    for fa in sorted(a.glob("*/*.json")):
        if fa.name in ("summary.json", "scan_from_model.json"):
            continue
        fb = b / fa.parent.name / fa.name
        na, nb = numbers(json.loads(fa.read_text())), numbers(json.loads(fb.read_text()))
        if set(na) != set(nb):
            print(f"{fa.parent.name}/{fa.name}: different fields: {sorted(set(na) ^ set(nb))[:5]}")
            problems += 1
            continue
        kind = fa.stem
        for k in na:
            d = abs(na[k] - nb[k])
            if kind not in worst or d > worst[kind][0]:
                worst[kind] = (d, f"{fa.parent.name}{k}")
    for kind, (d, where) in sorted(worst.items()):
        print(f"{kind:>22}: max |difference| {d:.3e} at {where}")
    return problems


def l2_errors(out: Path, gt: Path) -> None:
    """Per depth source, each query's distance (m) from its true centre (synthetic ground truth)."""
    truth = {(q["clip_uid"], q["annotation_index"], q["query_set"]): np.array(q["centre_scan"])
             for q in json.loads(gt.read_text())}
    for depth_file in sorted({f.name for f in out.glob("*/predict_*.json")}):
        errors = {}
        for f in sorted(out.glob(f"*/{depth_file}")):
            pred = read_clip_predictions(f)
            for q in pred.queries:
                key = (pred.clip_uid, q.annotation_index, q.query_set)
                if q.pred_3d_vec_world is not None and key in truth:
                    errors[f"{key[0]}/{key[1]}/{key[2]}"] = float(np.linalg.norm(q.pred_3d_vec_world - truth[key]))
        print(f"{depth_file}: mean L2 {np.mean(list(errors.values())):.6f} m over {len(errors)} queries; "
              + ", ".join(f"{k} {v:.6f}" for k, v in errors.items()))


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("results", type=Path)
    ap.add_argument("queries", type=Path)
    ap.add_argument("intrinsics", type=Path)
    ap.add_argument("out", type=Path)
    ap.add_argument("--against", type=Path, help="another replay's OUT to compare with")
    ap.add_argument("--depth", nargs="+", default=list(DEPTHS))
    ap.add_argument("--refit", action="store_true",
                    help="predict fits each sub-model's Sim(3) to the poses (as with imported "
                         "poses) instead of reading pose_merge's")
    ap.add_argument("--gt", type=Path, help="synthetic ground truth (data/synth/gt/queries.json)")
    args = ap.parse_args(argv)
    logging.basicConfig(level=logging.WARNING)
    replay(args.results, args.queries, args.intrinsics, args.out, args.depth, args.refit)
    if args.gt:
        l2_errors(args.out, args.gt)
    return 1 if args.against and compare(args.out, args.against) else 0


if __name__ == "__main__":
    raise SystemExit(main())
