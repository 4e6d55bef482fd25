"""VQ3D metrics (Ego4D / EgoLoc definitions), reproducing the published val numbers.

Per query of the ground truth that has both annotators' boxes (centres c1, c2, sizes s1, s2):
- L2    = ‖pred_world − c1‖, mean over queries with a 3D prediction;
- angle = angle between the predicted and the ground-truth vector in the query frame's camera
  coordinates, mean over queries with a query-frame pose. The ground-truth vector is annotator
  **2**'s centre: the Ego4D/EgoLoc scripts name the annotators' camera vectors gt_3d_vec_0/1 and
  score against gt_3d_vec_1, and only that reproduces the published 0.6070 / 0.82 (annotator 1
  gives 0.6010 / 0.8254). `angle_annotator=1` gives the other reading;
- success = ‖pred − (c1+c2)/2‖ < 6·(‖c1 − c2‖ + exp(−mean(‖s1‖, ‖s2‖)));
- Succ* = successes / queries with a 3D prediction; Succ = successes among queries that also have
  a query-frame pose / all queries; QwP = queries with a query-frame pose / all queries.
Everything is compared in the Matterport frame: the annotation centres are turned with
annotation_to_matterport, predictions are normalised by formats.results (submissions are in the
Matterport frame, EgoLoc results carry mp_* fields, bare Ego4D results are annotation frame), and
query-frame poses are world→camera in the Matterport frame."""

from __future__ import annotations

import argparse
import csv
import json
import logging
import math
import os

import numpy as np

from .atomic import atomic_path, write_json
from .errors import InputError
from .formats.results import Prediction, read_results
from .formats.vq3d_annotations import annotation_to_matterport, read_vq3d

log = logging.getLogger(__name__)

METRIC_KEYS = ("l2", "angle", "succ", "succ_star", "qwp", "n_queries")
CSV_FIELDS = ("clip_uid", "annotation_index", "query_set", "object_title", "has_3d", "has_pose",
              "l2", "angle", "dist_to_centre", "threshold", "success")


def success_threshold(c1, c2, s1, s2) -> float:
    """6·(‖c1 − c2‖ + exp(−m)), m the mean of the two box diagonals: looser where annotators
    disagree or the object is small."""
    m = 0.5 * (np.linalg.norm(s1) + np.linalg.norm(s2))
    return 6.0 * (float(np.linalg.norm(np.asarray(c1) - np.asarray(c2))) + math.exp(-m))


def angle_between(u, v) -> float:
    """Angle in radians; π when either vector is zero (direction unknown counts as worst)."""
    nu, nv = np.linalg.norm(u), np.linalg.norm(v)
    if nu == 0 or nv == 0:
        return math.pi
    return float(np.arccos(np.clip(np.dot(u, v) / (nu * nv), -1.0, 1.0)))


def _camera_vectors(pred: Prediction, gt_centre_mp: np.ndarray):
    """(pred, gt) vectors in the query camera's coordinates, or None without a query-frame pose."""
    pred_cam = pred.camera_vector()
    if pred.query_frame_pose is None or pred_cam is None:
        return None
    return pred_cam, (pred.query_frame_pose @ np.append(gt_centre_mp, 1.0))[:3]


def evaluate(gt_path, pred_path, *, angle_annotator: int = 2, pred_frame: str | None = None) -> dict:
    """Metrics of `pred_path` (submission or results file) against the VQ3D annotations;
    `pred_frame` ("annotation"/"matterport") overrides the guess of pred_3d_vec_world's frame."""
    if angle_annotator not in (1, 2):
        raise ValueError("angle_annotator must be 1 or 2")
    gt = read_vq3d(gt_path)
    preds = read_results(pred_path, world_frame=pred_frame)
    scored = [q for q in gt.queries if q.gt1 is not None and q.gt2 is not None]
    if len(scored) < len(gt.queries):
        log.warning("%s: %d queries lack one of the two 3D annotations and are not scored",
                    gt_path, len(gt.queries) - len(scored))
    gt_keys = {q.key for q in scored}
    stray = [k for k in preds if k not in gt_keys]
    if preds and len(stray) == len(preds) and scored:
        raise InputError(pred_path, f"none of its {len(preds)} queries is in {gt_path}: "
                                    "wrong split or wrong file?")
    if stray:
        log.warning("%s: %d queries are not in the ground truth and are ignored", pred_path, len(stray))

    rows = []
    for q in scored:
        p = preds.get(q.key)
        c1, c2 = annotation_to_matterport(q.gt1.position), annotation_to_matterport(q.gt2.position)
        row = dict(clip_uid=q.clip_uid, annotation_index=q.annotation_index,
                   query_set=q.query_set, object_title=q.object_title, has_3d=False,
                   has_pose=False, l2=None, angle=None, dist_to_centre=None,
                   threshold=success_threshold(c1, c2, q.gt1.dimension, q.gt2.dimension),
                   success=False)
        if p is not None and p.world_mp is not None:
            row["has_3d"] = True
            row["l2"] = float(np.linalg.norm(p.world_mp - c1))
            row["dist_to_centre"] = float(np.linalg.norm(p.world_mp - 0.5 * (c1 + c2)))
            row["success"] = row["dist_to_centre"] < row["threshold"]
        vecs = _camera_vectors(p, c2 if angle_annotator == 2 else c1) if p is not None else None
        if vecs is not None:
            row["has_pose"] = True
            row["angle"] = angle_between(*vecs)
        rows.append(row)
    return summarize(rows)


def summarize(rows: list[dict]) -> dict:
    """Aggregate per-query rows (see evaluate) into the published metrics; None where undefined."""
    n = len(rows)
    with_3d = [r for r in rows if r["has_3d"]]
    with_pose = [r for r in rows if r["has_pose"]]

    def mean(values):
        return float(np.mean(values)) if values else None

    return {
        "l2": mean([r["l2"] for r in with_3d]),
        "angle": mean([r["angle"] for r in with_pose]),
        "succ": 100.0 * sum(r["success"] for r in with_pose) / n if n else None,
        "succ_star": 100.0 * sum(r["success"] for r in with_3d) / len(with_3d) if with_3d else None,
        "qwp": 100.0 * len(with_pose) / n if n else None,
        "n_queries": n,
        "n_with_3d": len(with_3d),
        "n_with_pose": len(with_pose),
        "per_query": rows,
    }


def _fmt(v, spec):
    return "—" if v is None else format(v, spec)


def format_table(m: dict, name: str = "") -> str:
    head = f"{'predictions':<40} {'L2':>7} {'angle':>7} {'Succ*%':>7} {'Succ%':>7} {'QwP%':>7} {'n':>5}"
    line = (f"{name[-40:]:<40} {_fmt(m['l2'], '.4f'):>7} {_fmt(m['angle'], '.4f'):>7} "
            f"{_fmt(m['succ_star'], '.2f'):>7} {_fmt(m['succ'], '.2f'):>7} "
            f"{_fmt(m['qwp'], '.2f'):>7} {m['n_queries']:>5}")
    return f"{head}\n{line}"


def write_per_query_csv(path, rows: list[dict]) -> None:
    with atomic_path(path, suffix=".csv") as tmp:
        with open(tmp, "w", newline="") as fh:
            w = csv.DictWriter(fh, fieldnames=CSV_FIELDS)
            w.writeheader()
            for r in rows:
                w.writerow({k: "" if r[k] is None else r[k] for k in CSV_FIELDS})


def main(gt, pred, metrics, table) -> dict:
    """Stage: metrics JSON (l2, angle, succ, succ_star, qwp, n_queries) and a per-query CSV."""
    m = evaluate(gt, pred)
    write_json(metrics, {k: m[k] for k in METRIC_KEYS}, indent=2)
    write_per_query_csv(table, m["per_query"])
    log.info("%s: L2 %s angle %s Succ* %s Succ %s QwP %s over %d queries", pred,
             _fmt(m["l2"], ".4f"), _fmt(m["angle"], ".4f"), _fmt(m["succ_star"], ".2f"),
             _fmt(m["succ"], ".2f"), _fmt(m["qwp"], ".2f"), m["n_queries"])
    return m


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--gt", required=True, metavar="ANNOTATIONS",
                        help="VQ3D annotations with both annotators' boxes (vq3d_val.json)")
    parser.add_argument("--pred", required=True, metavar="PREDICTIONS",
                        help="submission (filled test template) or EgoLoc/Ego4D results file")
    parser.add_argument("--json", action="store_true",
                        help="print one JSON line with l2, angle, succ, succ_star, qwp, n_queries")
    parser.add_argument("--pred-frame", choices=("annotation", "matterport"), default=None,
                        help="frame of pred_3d_vec_world (default: guessed per file, see "
                             "docs/formats.md: submissions Matterport, bare Ego4D results annotation)")
    parser.add_argument("--angle-annotator", type=int, choices=(1, 2), default=2,
                        help="annotator whose centre the angle is measured to (published: 2)")


def run(args: argparse.Namespace) -> int:
    m = evaluate(args.gt, args.pred, angle_annotator=args.angle_annotator,
                 pred_frame=args.pred_frame)
    if args.json:
        print(json.dumps({k: m[k] for k in METRIC_KEYS}))
    else:
        print(format_table(m, os.path.basename(str(args.pred))))
    return 0


if __name__ == "__main__":
    p = argparse.ArgumentParser(prog="vq3d evaluate", description=__doc__.splitlines()[0])
    add_arguments(p)
    raise SystemExit(run(p.parse_args()))
