"""Pose geometry shared by the pose stages: Sim(3) estimation, pose conversions, interpolation.

Every pose is a pycolmap typed object whose name says its direction: `cam_from_world` maps world
points into the camera (what files store), `world_from_cam` is its inverse, `scan_from_model` is a
Sim3d taking a SfM sub-model's frame into the scan frame."""

from __future__ import annotations

import dataclasses

import numpy as np
import pycolmap
from scipy.spatial.transform import Rotation, Slerp

from ..geometry import orthonormalise


def rigid(cam_from_world_3x4) -> pycolmap.Rigid3d:
    """A Rigid3d from a 3×4 [R|t] matrix (rotation re-orthonormalised against rounding)."""
    m = np.asarray(cam_from_world_3x4, dtype=float).reshape(3, 4)
    rot = orthonormalise(m[:, :3])
    if np.linalg.det(rot) < 0:
        raise ValueError("rotation part has a negative determinant (a reflection)")
    return pycolmap.Rigid3d(np.hstack([rot, m[:, 3:]]))


def centre(cam_from_world: pycolmap.Rigid3d) -> np.ndarray:
    """Camera centre in world coordinates: C = -Rᵀ t."""
    return np.asarray(cam_from_world.inverse().translation, dtype=float)


def rotation_error_deg(cam_from_world_a: pycolmap.Rigid3d, cam_from_world_b: pycolmap.Rigid3d) -> float:
    r_a = cam_from_world_a.rotation.matrix()
    r_b = cam_from_world_b.rotation.matrix()
    cos = (np.trace(r_a @ r_b.T) - 1.0) / 2.0
    return float(np.degrees(np.arccos(np.clip(cos, -1.0, 1.0))))


def to_scan(scan_from_model: pycolmap.Sim3d, cam_from_model: pycolmap.Rigid3d) -> pycolmap.Rigid3d:
    """cam_from_scan of a camera posed in a sub-model. The similarity's scale changes only the
    translation: cam_from_scan = cam_from_model ∘ model_from_scan, rescaled to metric units."""
    return scan_from_model.transform_camera_world(cam_from_model)


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


def apply_sim3(sim: pycolmap.Sim3d, points: np.ndarray) -> np.ndarray:
    m = sim.matrix()
    return np.asarray(points, float) @ m[:, :3].T + m[:, 3]


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


def interpolate(cam_from_world_a: pycolmap.Rigid3d, cam_from_world_b: pycolmap.Rigid3d,
                t: float) -> pycolmap.Rigid3d:
    """Pose at fraction t between a (t=0) and b (t=1): slerp of the orientation, linear camera
    centre (interpolating world→camera translations would bend the path)."""
    rots = Rotation.from_matrix(np.stack([cam_from_world_a.rotation.matrix(),
                                          cam_from_world_b.rotation.matrix()]))
    rot = Slerp([0.0, 1.0], rots)([t]).as_matrix()[0]
    c = (1 - t) * centre(cam_from_world_a) + t * centre(cam_from_world_b)
    return pycolmap.Rigid3d(pycolmap.Rotation3d(rot), -rot @ c)
