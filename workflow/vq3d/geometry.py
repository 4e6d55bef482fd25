"""The pose vocabulary, in one place (the Sim(3) estimators built on it are vq3d.pose.sim3).

A pose is `cam_from_world`: it maps world points into the camera, x_cam = R x_world + t. In memory
it is a pycolmap `Rigid3d`; files and vectorised code hold its 3×4 matrix [R | t] (arrays of them
are (N, 3, 4)), and every function here takes either. Its inverse is `world_from_cam`, the camera
centre is C = −Rᵀt. A similarity names its direction the same way: `scan_from_model` (a Sim3d)
takes a SfM sub-model's points into the scan frame. Array results are computed from the 3×4
matrix, so a Rigid3d and its matrix give the same numbers.

pycolmap is imported where a typed pose is built: vq3d.formats reads pose files through this
module in environments that need no pycolmap."""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np

if TYPE_CHECKING:
    import pycolmap


def _matrix(pose) -> np.ndarray:
    """The 3×4 [R | t] (or (N, 3, 4)) of a Rigid3d or a pose array."""
    if hasattr(pose, "matrix"):
        return np.asarray(pose.matrix(), float)
    return np.asarray(pose, float)


def camera_centre(cam_from_world) -> np.ndarray:
    """World position of the camera(s): (3,) for one pose, (N, 3) for (N, 3, 4)."""
    m = _matrix(cam_from_world)
    R, t = m[..., :3], m[..., 3]
    if m.ndim == 2:
        return -R.T @ t
    return -np.einsum("...ji,...j->...i", R, t)


def pose_at(rotation, centre) -> np.ndarray:
    """The 3×4 cam_from_world [R | −R c] of a camera at world position `centre` whose
    cam_from_world rotation is `rotation` (rows: the camera's x right, y down, z forward axes)."""
    R = np.asarray(rotation, float)
    return np.hstack([R, (-R @ np.asarray(centre, float))[:, None]])


def world_from_cam(cam_from_world):
    """The inverse pose: a Rigid3d for a Rigid3d, else the 3×4 [Rᵀ | −Rᵀt] (camera centre in
    the last column)."""
    if hasattr(cam_from_world, "inverse"):
        return cam_from_world.inverse()
    m = _matrix(cam_from_world)
    Rt = np.swapaxes(m[..., :3], -1, -2)
    return np.concatenate([Rt, camera_centre(m)[..., None]], axis=-1)


def to_camera(cam_from_world, points_world) -> np.ndarray:
    """World points (N, 3) in the camera's frame: R p + t."""
    m = _matrix(cam_from_world)
    p = np.atleast_2d(np.asarray(points_world, float))
    return p @ m[:, :3].T + m[:, 3]


def to_world(cam_from_world, points_cam) -> np.ndarray:
    """Camera-frame points (N, 3) in the world: Rᵀ (p − t)."""
    m = _matrix(cam_from_world)
    p = np.atleast_2d(np.asarray(points_cam, float))
    return (p - m[:, 3]) @ m[:, :3]


def orthonormalise(rotation) -> np.ndarray:
    """The rotation nearest to `rotation` (SVD): removes the rounding a stored matrix carries."""
    u, _, vt = np.linalg.svd(np.asarray(rotation, float))
    return u @ vt


def rigid(cam_from_world_3x4) -> pycolmap.Rigid3d:
    """A Rigid3d from a stored 3×4 [R | t] (rotation re-orthonormalised against rounding)."""
    import pycolmap

    m = np.asarray(cam_from_world_3x4, dtype=float).reshape(3, 4)
    rot = orthonormalise(m[:, :3])
    if np.linalg.det(rot) < 0:
        raise ValueError("rotation part has a negative determinant (a reflection)")
    return pycolmap.Rigid3d(np.hstack([rot, m[:, 3:]]))


def sim3(tgt_from_src_3x4) -> pycolmap.Sim3d:
    """A Sim3d from a stored 3×4 [s·R | t]: s is the cube root of the 3×3 part's determinant,
    R re-orthonormalised. ValueError where the scale is not positive."""
    import pycolmap

    m = np.asarray(tgt_from_src_3x4, dtype=float).reshape(3, 4)
    scale = float(np.cbrt(np.linalg.det(m[:, :3])))
    if not scale > 0:
        raise ValueError("the 3×3 part has no positive scale")
    return pycolmap.Sim3d(scale, pycolmap.Rotation3d(orthonormalise(m[:, :3] / scale)), m[:, 3])


def apply_sim3(tgt_from_src: pycolmap.Sim3d, points) -> np.ndarray:
    """Points (N, 3) of the source frame in the target frame: s R p + t."""
    m = tgt_from_src.matrix()
    return np.asarray(points, float) @ m[:, :3].T + m[:, 3]


def cam_from_scan(scan_from_model: pycolmap.Sim3d, cam_from_model: pycolmap.Rigid3d) -> pycolmap.Rigid3d:
    """The scan-frame pose of a camera posed in a sub-model: cam_from_model ∘ model_from_scan, its
    translation rescaled to scan (metric) units by the similarity's scale."""
    return scan_from_model.transform_camera_world(cam_from_model)


def rotation_error_deg(cam_from_world_a, cam_from_world_b) -> float:
    """Angle of the relative rotation between two poses, degrees."""
    r_a, r_b = _matrix(cam_from_world_a)[:, :3], _matrix(cam_from_world_b)[:, :3]
    cos = (np.trace(r_a @ r_b.T) - 1.0) / 2.0
    return float(np.degrees(np.arccos(np.clip(cos, -1.0, 1.0))))


def interpolate(cam_from_world_a: pycolmap.Rigid3d, cam_from_world_b: pycolmap.Rigid3d,
                t: float) -> pycolmap.Rigid3d:
    """Pose at fraction t between a (t=0) and b (t=1): slerp of the orientation, linear camera
    centre (interpolating world→camera translations would bend the path)."""
    import pycolmap
    from scipy.spatial.transform import Rotation, Slerp

    rots = Rotation.from_matrix(np.stack([cam_from_world_a.rotation.matrix(),
                                          cam_from_world_b.rotation.matrix()]))
    rot = Slerp([0.0, 1.0], rots)([t]).as_matrix()[0]
    c = (1 - t) * camera_centre(cam_from_world_a) + t * camera_centre(cam_from_world_b)
    return pycolmap.Rigid3d(pose_at(rot, c))
