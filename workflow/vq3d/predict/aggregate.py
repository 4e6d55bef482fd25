"""Aggregate a query's lifted peak points into one 3D prediction.

EgoLoc's modes (vq3d/mv_aggregate.py and run.py at Wayne-Mai/EgoLoc 15de772), same definitions:
- `last`: the point of the latest posed peak frame (run.py: argmax of the valid frame indices);
- `mf_mean`, `mf_median` (per coordinate), `mf_weighted2d` (mean weighted by detection score);
- `mf_nms`: greedy NMS in 3D by score with radius `nms_threshold` (0.5 m); with
  `nms_fusion_threshold` > 0 the points within the radius scoring above that fraction of the top
  score are fused by score-weighted mean; otherwise (EgoLoc's default, -1) the top point wins.
Added here:
- `mf_geomedian`: the score-weighted geometric median (Weiszfeld), robust to a minority of
  wrong peaks in any direction, unlike the per-coordinate median.

EgoLoc aggregated its query-frame vectors separately; here the query-frame vector is always the
aggregated world point seen from the query frame, so the two outputs describe one point."""

from __future__ import annotations

import numpy as np

MODES = ("last", "mf_weighted2d", "mf_mean", "mf_median", "mf_nms", "mf_geomedian")


def weighted_mean(points: np.ndarray, scores: np.ndarray) -> np.ndarray:
    w = np.asarray(scores, float)
    if not np.all(np.isfinite(w)) or np.any(w < 0) or w.sum() <= 0:
        return points.mean(axis=0)  # np.average would divide by zero
    return np.average(points, weights=w, axis=0)


def nms(points: np.ndarray, scores: np.ndarray, threshold: float = 0.5,
        fusion_threshold: float = -1.0) -> np.ndarray:
    """The first (highest-score) proposal of EgoLoc's 3D NMS."""
    if len(points) == 1:
        return points[0]
    order = np.argsort(-scores, kind="stable")
    top, rest = order[0], order[1:]
    if fusion_threshold <= 0:
        return points[top]
    close = rest[np.linalg.norm(points[rest] - points[top], axis=1) <= threshold]
    keep = [top] + [i for i in close if scores[i] > fusion_threshold * scores[top]]
    return np.average(points[keep], weights=scores[keep], axis=0)


def geometric_median(points: np.ndarray, weights: np.ndarray | None = None, *,
                     iterations: int = 200, tol: float = 1e-7) -> np.ndarray:
    """Weighted Weiszfeld iteration from the weighted mean; exact for 1 or 2 points' limits."""
    w = np.ones(len(points)) if weights is None else np.asarray(weights, float)
    if w.sum() <= 0 or np.any(w < 0) or not np.all(np.isfinite(w)):
        w = np.ones(len(points))
    x = np.average(points, weights=w, axis=0)
    x = _weiszfeld(points, w, x, iterations, tol)
    # Weiszfeld creeps slowly onto a data point that is the optimum: compare against them exactly.
    cands = np.vstack([x[None], points])
    cost = (w[None, :] * np.linalg.norm(cands[:, None] - points[None], axis=2)).sum(axis=1)
    return cands[int(np.argmin(cost))]


def _weiszfeld(points, w, x, iterations, tol):
    for _ in range(iterations):
        d = np.linalg.norm(points - x, axis=1)
        at = d < 1e-12
        if at.any():
            # Standing on a data point: it is the median if the pull of the others is weaker.
            others = ~at
            if not others.any():
                return x
            pull = (w[others, None] * (points[others] - x) / d[others, None]).sum(axis=0)
            if np.linalg.norm(pull) <= w[at].sum():
                return x
            d = np.where(at, 1e-12, d)
        new = (w[:, None] * points / d[:, None]).sum(axis=0) / (w / d).sum()
        if np.linalg.norm(new - x) < tol:
            return new
        x = new
    return x


def aggregate(points, scores, frames, mode: str, conf: dict | None = None) -> np.ndarray:
    """One (3,) point from N lifted points (N, 3), their detection scores and frame indices;
    `conf` (the predict config) is read by mf_nms only."""
    points = np.asarray(points, float).reshape(-1, 3)
    scores = np.asarray(scores, float).reshape(-1)
    frames = np.asarray(frames).reshape(-1)
    if len(points) == 0:
        raise ValueError("nothing to aggregate")
    if not (len(points) == len(scores) == len(frames)):
        raise ValueError("points, scores and frames differ in length")
    if mode == "last":
        return points[int(np.argmax(frames))]
    if mode == "mf_mean":
        return points.mean(axis=0)
    if mode == "mf_median":
        return np.median(points, axis=0)
    if mode == "mf_weighted2d":
        return weighted_mean(points, scores)
    if mode == "mf_nms":
        return nms(points, scores, float(conf["nms_threshold"]),
                   float(conf["nms_fusion_threshold"]))
    if mode == "mf_geomedian":
        return geometric_median(points, scores)
    raise ValueError(f"unknown aggregation mode {mode!r}; expected one of {', '.join(MODES)}")
