"""VQ3D metrics (Ego4D / EgoLoc definitions), reproducing the published val numbers.

Per query of the ground truth that has both annotators' boxes (centres c1, c2, sizes s1, s2):
- L2    = ‖pred_world − c1‖, mean over queries with a 3D prediction;
- angle = angle between the predicted and the ground-truth vector in the query frame's camera
  coordinates, mean over queries with a query-frame pose; computed to both annotators' centres
  (`angle_1`, `angle_2`). `angle` is the one the file family's own script reports: EgoLoc's
  eval.py scores against `mp_gt_3d_vec_1`, 0-based naming, i.e. **annotator 2** (0.6070 / 0.82;
  annotator 1 gives 0.6010 / 0.8254); Ego4D's eval.py against `gt_3d_vec_1`, 1-based, i.e.
  **annotator 1** (1.5952 on siam_rcnn_residual_kys_val.json); submissions are scored by Ego4D's
  script, so annotator 1. `angle_annotator` overrides;
- success = ‖pred − (c1+c2)/2‖ < 6·(‖c1 − c2‖ + exp(−mean(‖s1‖, ‖s2‖)));
- Succ* = successes / queries with a 3D prediction; Succ = successes among queries that also have
  a query-frame pose / all queries; QwP = queries with a query-frame pose / all queries.
Everything is compared in the Matterport frame: the annotation centres are turned with
annotation_to_matterport, predictions are normalised by formats.results (the family of a file, so
the frame of its pred_3d_vec_world, comes from its keys), and query-frame poses are world→camera
in the Matterport frame.

Ego4D results files are scored as Ego4D's VQ3D/VQ3D/scripts/eval.py does, so that its published
numbers come out: L2 against the file's own `gt_3d_vec_world_1` (in siam_rcnn_residual_kys_val.json
that is the *unturned* annotation centre: the file predates episodic-memory commit 819da1f, which
added the Rz(−90°) to prepare_ground_truth_for_queries.py, so eval.py's L2 there mixes frames while
its success turns the centre; the frame-consistent L2 is logged beside it), and the angle against
the file's own `gt_3d_vec_{1,2}` (no query-frame pose is stored; "with pose" means `pred_3d_vec`
present, as in eval.py)."""

from __future__ import annotations

import argparse
import json
import logging
import math
import os

import numpy as np

from .errors import InputError
from .formats.metrics import METRIC_KEYS, PER_QUERY_FIELDS, write_metrics, write_per_query
from .formats.results import EGOLOC, Prediction, read_results
from .formats.vq3d_annotations import annotation_to_matterport, read_vq3d

log = logging.getLogger(__name__)

CSV_FIELDS = PER_QUERY_FIELDS  # per_query.csv's columns (vq3d.formats.metrics)


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


def _gt_camera_vector(pred: Prediction, centre_mp: np.ndarray, annotator: int):
    """Ground-truth vector in the query camera: pose · centre, or the file's own stored vector
    where it has no pose (Ego4D results)."""
    if pred.query_frame_pose is not None:
        return (pred.query_frame_pose @ np.append(centre_mp, 1.0))[:3]
    return pred.gt_camera_stored.get(annotator)


def default_annotator(family: str | None) -> int:
    """The annotator the family's own evaluation script measures the angle to (module doc)."""
    return 2 if family == EGOLOC else 1


def evaluate(gt_path, pred_path, *, angle_annotator: int | None = None,
             pred_frame: str | None = None) -> dict:
    """Metrics of `pred_path` (submission or results file) against the VQ3D annotations.
    `pred_frame` ("annotation"/"matterport") gives the frame of pred_3d_vec_world where the file's
    keys do not (or overrides them); `angle_annotator` (1/2) picks which of angle_1/angle_2 is
    `angle` (default: the one the file family's own script uses)."""
    if angle_annotator not in (None, 1, 2):
        raise ValueError("angle_annotator must be 1 or 2")
    gt = read_vq3d(gt_path)
    preds = read_results(pred_path, world_frame=pred_frame)
    family = next((p.family for p in preds.values()), None)
    annotator = angle_annotator or default_annotator(family)
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

    rows, consistent_l2 = [], []
    for q in scored:
        p = preds.get(q.key)
        c1, c2 = annotation_to_matterport(q.gt1.position), annotation_to_matterport(q.gt2.position)
        row = dict(clip_uid=q.clip_uid, annotation_index=q.annotation_index,
                   query_set=q.query_set, object_title=q.object_title, has_3d=False,
                   has_pose=False, l2=None, angle=None, dist_to_centre=None,
                   threshold=success_threshold(c1, c2, q.gt1.dimension, q.gt2.dimension),
                   success=False, angle_1=None, angle_2=None)
        if p is not None and p.world_mp is not None:
            row["has_3d"] = True
            row["l2"] = float(np.linalg.norm(p.world_mp - c1))
            consistent_l2.append(row["l2"])
            if p.gt_world_stored is not None and pred_frame is None:  # Ego4D eval.py's L2
                row["l2"] = float(np.linalg.norm(p.world_stored - p.gt_world_stored))
            row["dist_to_centre"] = float(np.linalg.norm(p.world_mp - 0.5 * (c1 + c2)))
            row["success"] = row["dist_to_centre"] < row["threshold"]
        pred_cam = p.camera_vector() if p is not None else None
        if pred_cam is not None:
            for a, centre in ((1, c1), (2, c2)):
                gt_cam = _gt_camera_vector(p, centre, a)
                if gt_cam is not None:
                    row[f"angle_{a}"] = angle_between(pred_cam, gt_cam)
            row["angle"] = row[f"angle_{annotator}"]
            row["has_pose"] = row["angle"] is not None
        rows.append(row)
    m = summarize(rows)
    m.update(family=family, angle_annotator=annotator)
    if consistent_l2 and m["l2"] is not None and abs(np.mean(consistent_l2) - m["l2"]) > 1e-9:
        log.warning("%s: L2 %.4f is Ego4D eval.py's (against the file's own gt_3d_vec_world_1); "
                    "against the Matterport centres it is %.4f", pred_path, m["l2"],
                    float(np.mean(consistent_l2)))
    return m


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
        "angle_1": mean([r["angle_1"] for r in with_pose if r["angle_1"] is not None]),
        "angle_2": mean([r["angle_2"] for r in with_pose if r["angle_2"] is not None]),
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
    """The five published metrics, then the angle to each annotator (`angle` is one of them)."""
    head = (f"{'predictions':<40} {'L2':>7} {'angle':>7} {'Succ*%':>7} {'Succ%':>7} {'QwP%':>7} "
            f"{'n':>5} {'angle_a1':>8} {'angle_a2':>8}")
    line = (f"{name[-40:]:<40} {_fmt(m['l2'], '.4f'):>7} {_fmt(m['angle'], '.4f'):>7} "
            f"{_fmt(m['succ_star'], '.2f'):>7} {_fmt(m['succ'], '.2f'):>7} "
            f"{_fmt(m['qwp'], '.2f'):>7} {m['n_queries']:>5} {_fmt(m.get('angle_1'), '.4f'):>8} "
            f"{_fmt(m.get('angle_2'), '.4f'):>8}")
    note = (f"angle = annotator {m['angle_annotator']} ({m.get('family') or 'given frame'} "
            "convention)") if m.get("angle_annotator") else ""
    return f"{head}\n{line}" + (f"\n{note}" if note else "")


def write_per_query_csv(path, rows: list[dict]) -> None:
    write_per_query(path, rows)


def main(gt, pred, metrics, table) -> dict:
    """Stage: metrics JSON (l2, angle, succ, succ_star, qwp, n_queries) and a per-query CSV."""
    m = evaluate(gt, pred)
    write_metrics(metrics, m)
    write_per_query(table, m["per_query"])
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
                        help="frame of pred_3d_vec_world; required when the file's keys do not "
                             "tell it (default: from the keys, see docs/formats.md: submissions "
                             "and Ego4D results Matterport, EgoLoc results use their mp_* fields)")
    parser.add_argument("--angle-annotator", type=int, choices=(1, 2), default=None,
                        help="annotator the headline angle is measured to (default: the file "
                             "family's script: EgoLoc 2, Ego4D and submissions 1); both are printed")


def run(args: argparse.Namespace) -> int:
    m = evaluate(args.gt, args.pred, angle_annotator=args.angle_annotator,
                 pred_frame=args.pred_frame)
    if args.json:
        print(json.dumps({k: m[k] for k in METRIC_KEYS}))
    else:
        print(format_table(m, os.path.basename(str(args.pred))))
    return 0

