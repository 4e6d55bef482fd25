"""Sim(3) estimation between matched 3D points (the pose stages' registration and merge, and
predict's alignment of SfM sub-models to imported poses). Directions as in vq3d.geometry: a fit
returns `tgt_from_src`, a pycolmap Sim3d."""

from __future__ import annotations

import dataclasses

import numpy as np
import pycolmap
from scipy.spatial.transform import Rotation

from ..geometry import apply_sim3


def umeyama(src: np.ndarray, tgt: np.ndarray) -> pycolmap.Sim3d:
    """Least-squares tgt_from_src similarity (Umeyama 1991) between matched 3D points (n ≥ 3)."""
    src = np.asarray(src, float)
    tgt = np.asarray(tgt, float)
    mu_s, mu_t = src.mean(0), tgt.mean(0)
    ds, dt = src - mu_s, tgt - mu_t
    var_s = (ds ** 2).sum() / len(src)
    cov = dt.T @ ds / len(src)
    u, d, vt = np.linalg.svd(cov)
    sign = np.eye(3)
    if np.linalg.det(u) * np.linalg.det(vt) < 0:
        sign[2, 2] = -1
    rot = u @ sign @ vt
    scale = float(np.trace(np.diag(d) @ sign) / var_s) if var_s > 0 else 1.0
    trans = mu_t - scale * rot @ mu_s
    return pycolmap.Sim3d(scale, pycolmap.Rotation3d(rot), trans)


@dataclasses.dataclass
class Sim3Fit:
    tgt_from_src: pycolmap.Sim3d
    inliers: np.ndarray  # bool per correspondence
    residuals: np.ndarray  # ‖sim(src) − tgt‖ per correspondence, target units


def ransac_sim3(src, tgt, threshold: float, *, iterations: int = 2000, seed: int = 0) -> Sim3Fit | None:
    """Robust tgt_from_src: 3-point minimal samples, most inliers within `threshold` (target
    units) wins (ties: lower inlier error), refit on the inliers. None when fewer than 3 points or
    the points are degenerate (collinear)."""
    src = np.asarray(src, float)
    tgt = np.asarray(tgt, float)
    n = len(src)
    if n < 3:
        return None
    rng = np.random.default_rng(seed)
    best_key, best_mask = None, None
    for _ in range(iterations if n > 3 else 1):
        idx = rng.choice(n, 3, replace=False)
        if _degenerate(src[idx]) or _degenerate(tgt[idx]):
            continue
        sim = umeyama(src[idx], tgt[idx])
        res = np.linalg.norm(apply_sim3(sim, src) - tgt, axis=1)
        mask = res < threshold
        key = (int(mask.sum()), -float(res[mask].sum()))
        if best_key is None or key > best_key:
            best_key, best_mask = key, mask
    if best_mask is None or best_mask.sum() < 3:
        return None
    # Refit on the inliers, then let the refit pick its own inliers once more.
    for _ in range(2):
        sim = umeyama(src[best_mask], tgt[best_mask])
        res = np.linalg.norm(apply_sim3(sim, src) - tgt, axis=1)
        mask = res < threshold
        if mask.sum() < 3 or np.array_equal(mask, best_mask):
            break
        best_mask = mask
    return Sim3Fit(sim, res < threshold, res)


def sim3_with_rotation(rot: np.ndarray, src: np.ndarray, tgt: np.ndarray) -> pycolmap.Sim3d:
    """Least-squares scale and translation of tgt = s·rot·src + t for a known rotation."""
    src_r = np.asarray(src, float) @ np.asarray(rot).T
    tgt = np.asarray(tgt, float)
    ds, dt = src_r - src_r.mean(0), tgt - tgt.mean(0)
    scale = float((ds * dt).sum() / max((ds ** 2).sum(), 1e-18))
    return pycolmap.Sim3d(scale, pycolmap.Rotation3d(rot), tgt.mean(0) - scale * src_r.mean(0))


def robust_mean_rotation(rots: np.ndarray, *, floor_deg: float = 1.0) -> np.ndarray:
    """Chordal mean of rotation matrices, once more after dropping those further than
    max(floor, 3× median) degrees from the first mean."""
    r = Rotation.from_matrix(rots)
    mean = r.mean()
    dev = np.degrees((r * mean.inv()).magnitude())
    keep = dev <= max(floor_deg, 3 * float(np.median(dev)))
    return r[keep].mean().as_matrix()


def _degenerate(pts: np.ndarray) -> bool:
    a, b = pts[1] - pts[0], pts[2] - pts[0]
    scale = max(np.linalg.norm(a), np.linalg.norm(b), 1e-12)
    return np.linalg.norm(np.cross(a, b)) < 1e-3 * scale ** 2
