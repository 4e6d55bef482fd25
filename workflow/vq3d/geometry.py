"""The pose vocabulary on plain arrays, in one place: a pose is a 3×4 `cam_from_world` [R | t]
(world points into the camera, what every pose file stores; arrays of them are (N, 3, 4)), its
inverse is `world_from_cam`, the camera centre is C = −Rᵀt. The pycolmap-typed side (Rigid3d,
Sim3d, Sim(3) estimation) is vq3d.pose.geometry, built on these."""

from __future__ import annotations

import numpy as np


def camera_centre(cam_from_world) -> np.ndarray:
    """World position of the camera(s): (3,) for a 3×4 pose, (N, 3) for (N, 3, 4)."""
    m = np.asarray(cam_from_world, float)
    R, t = m[..., :3], m[..., 3]
    if m.ndim == 2:
        return -R.T @ t
    return -np.einsum("...ji,...j->...i", R, t)


def world_from_cam(cam_from_world) -> np.ndarray:
    """The inverse pose, 3×4 [Rᵀ | −Rᵀt] (camera centre in the last column)."""
    m = np.asarray(cam_from_world, float)
    R = m[..., :3]
    Rt = np.swapaxes(R, -1, -2)
    return np.concatenate([Rt, camera_centre(m)[..., None]], axis=-1)


def to_camera(cam_from_world, points_world) -> np.ndarray:
    """World points (N, 3) in the camera's frame: R p + t."""
    m = np.asarray(cam_from_world, float)
    p = np.atleast_2d(np.asarray(points_world, float))
    return p @ m[:, :3].T + m[:, 3]


def orthonormalise(rotation) -> np.ndarray:
    """The rotation nearest to `rotation` (SVD): removes the rounding a stored matrix carries."""
    u, _, vt = np.linalg.svd(np.asarray(rotation, float))
    return u @ vt
