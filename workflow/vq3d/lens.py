"""COLMAP RADIAL_FISHEYE lens model in numpy: project, unproject (iterative inverse), undistort.

The research code back-projected box centres with a pinhole model and ignored k1, k2; at the
border of an Ego4D frame that is off by tens of pixels. Model (COLMAP `RadialFisheyeCameraModel`):
a camera point (x, y, z) has r = ‖(x, y)‖ / z, θ = atan(r), θ_d = θ (1 + k1 θ² + k2 θ⁴), and the
distorted normalised point (x/z, y/z) · θ_d / r is mapped to pixels by f and (cx, cy).

Pixel coordinates follow COLMAP: (0, 0) is the top-left corner of the top-left pixel, so box
corners from a detector are used as they are. `cam` is anything with attributes f, cx, cy, k1, k2
(vq3d.formats.intrinsics.Fisheye)."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

_EPS = 1e-12
# θ = π/2 is the horizon: tan θ is infinite there; rays beyond it cannot come from z > 0.
_THETA_MAX = np.pi / 2 - 1e-6


def _theta_d(theta: np.ndarray, k1: float, k2: float) -> np.ndarray:
    t2 = theta * theta
    return theta * (1.0 + k1 * t2 + k2 * t2 * t2)


# EgoLoc's back-projection (vq3d/mv_aggregate.py `predict_for_frame_j`):
# x = z·(tx − cx − 0.5)/f, y = z·(ty − cy − 0.5)/f, i.e. its principal point sits half a pixel
# right of and below COLMAP's cx, cy.
EGOLOC_PIXEL_OFFSET = 0.5


@dataclass(frozen=True)
class Pinhole:
    """The research code's reading of a calibration: f, cx, cy of a pinhole, k1 and k2 ignored,
    with EgoLoc's half-pixel shift (EGOLOC_PIXEL_OFFSET): pixel u is at x/z = (u − cx − 0.5)/f.
    Only for reproducing it (`predict.undistort: false`); `pinhole(cam)` builds one."""

    f: float
    cx: float
    cy: float


def pinhole(cam) -> Pinhole:
    return Pinhole(float(cam.f), float(cam.cx), float(cam.cy))


def project(cam, points_cam) -> np.ndarray:
    """Camera-frame points (N, 3) (z > 0) → distorted pixels (N, 2)."""
    p = np.atleast_2d(np.asarray(points_cam, dtype=float))
    u, v = p[:, 0] / p[:, 2], p[:, 1] / p[:, 2]
    if isinstance(cam, Pinhole):
        c = EGOLOC_PIXEL_OFFSET
        return np.stack([cam.f * u + cam.cx + c, cam.f * v + cam.cy + c], axis=1)
    r = np.hypot(u, v)
    safe = np.where(r > _EPS, r, 1.0)
    # Near the axis θ_d / r → 1, the limit COLMAP uses too.
    factor = np.where(r > _EPS, _theta_d(np.arctan(r), cam.k1, cam.k2) / safe, 1.0)
    return np.stack([cam.f * u * factor + cam.cx, cam.f * v * factor + cam.cy], axis=1)


def undistort_normalized(cam, pixels, *, iterations: int = 50, tol: float = 1e-12) -> np.ndarray:
    """Distorted pixels (N, 2) → undistorted normalised coordinates (x/z, y/z) (N, 2).

    θ_d = θ + k1 θ³ + k2 θ⁵ is inverted by Newton's method from θ = θ_d. Where the lens curve is not
    invertible (θ_d beyond its maximum for negative k's, or θ past the horizon) the result is NaN."""
    px = np.atleast_2d(np.asarray(pixels, dtype=float))
    if isinstance(cam, Pinhole):
        px = px - EGOLOC_PIXEL_OFFSET
    ud, vd = (px[:, 0] - cam.cx) / cam.f, (px[:, 1] - cam.cy) / cam.f
    if isinstance(cam, Pinhole):
        return np.stack([ud, vd], axis=1)
    rd = np.hypot(ud, vd)
    k1, k2 = cam.k1, cam.k2
    theta = rd.copy()
    for _ in range(iterations):
        t2 = theta * theta
        g = theta * (1.0 + k1 * t2 + k2 * t2 * t2) - rd
        dg = 1.0 + 3.0 * k1 * t2 + 5.0 * k2 * t2 * t2
        step = g / np.where(np.abs(dg) > _EPS, dg, np.nan)
        theta = theta - step
        if np.all(~np.isfinite(step) | (np.abs(step) < tol)):
            break
    bad = (~np.isfinite(theta) | (theta < 0) | (theta > _THETA_MAX)
           | (np.abs(_theta_d(theta, k1, k2) - rd) > 1e-9 * np.maximum(1.0, rd)))
    r = np.tan(np.clip(theta, 0.0, _THETA_MAX))
    factor = np.where(rd > _EPS, r / np.where(rd > _EPS, rd, 1.0), 1.0)
    out = np.stack([ud * factor, vd * factor], axis=1)
    out[bad] = np.nan
    return out


def unproject(cam, pixels) -> np.ndarray:
    """Distorted pixels (N, 2) → unit viewing rays in the camera frame (N, 3), NaN where invalid."""
    xy = undistort_normalized(cam, pixels)
    rays = np.concatenate([xy, np.ones((len(xy), 1))], axis=1)
    return rays / np.linalg.norm(rays, axis=1, keepdims=True)


def undistort_pixels(cam, pixels) -> np.ndarray:
    """Distorted pixels → pixels of the ideal pinhole camera with the same f, cx, cy."""
    xy = undistort_normalized(cam, pixels)
    c = EGOLOC_PIXEL_OFFSET if isinstance(cam, Pinhole) else 0.0
    return np.stack([cam.f * xy[:, 0] + cam.cx + c, cam.f * xy[:, 1] + cam.cy + c], axis=1)
