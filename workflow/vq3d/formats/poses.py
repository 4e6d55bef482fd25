"""Per-clip camera poses, EgoLoc/Ego4D pose JSON:
{clip_uid: {"good_poses": [bool per clip frame], "camera_poses": [3×4 per clip frame]}}.

Each camera pose is world→camera (`cam_from_world` = [R | t], x_cam = R x_world + t) in the
Matterport scan frame (not the 90°-rotated annotation frame); frame i is clip frame i
(color_%07d.jpg, 5 fps). A 4×4 with bottom row [0, 0, 0, 1] is accepted on read.

Entries whose `good_poses` flag is false carry no information: on read they may hold anything
(null, a wrong shape, zeros) and come back as NaN; on write they are written as the 3×4 zero
matrix, so the file stays a plain numeric array for consumers that np.array() it."""

from __future__ import annotations

import os
from dataclasses import dataclass

import numpy as np

from ..errors import InputError
from ..geometry import world_from_cam
from ._common import dump_json, load_json, uid

WHAT = "camera pose file"


@dataclass
class ClipPoses:
    good: np.ndarray            # (N,) bool
    cam_from_world: np.ndarray  # (N, 3, 4) float; NaN where not good

    def __post_init__(self):
        self.good = np.asarray(self.good, dtype=bool)
        self.cam_from_world = np.asarray(self.cam_from_world, dtype=float)
        n = len(self.good)
        if self.good.shape != (n,) or self.cam_from_world.shape != (n, 3, 4):
            raise ValueError(f"ClipPoses: good {self.good.shape} and cam_from_world "
                             f"{self.cam_from_world.shape} must be (N,) and (N, 3, 4)")

    def __len__(self) -> int:
        return len(self.good)

    def world_from_cam(self, i: int) -> np.ndarray:
        """3×4 camera→world of frame i (camera centre in the last column)."""
        return world_from_cam(self.cam_from_world[i])


def _pose(path, value, where: str) -> np.ndarray:
    try:
        arr = np.asarray(value, dtype=float)
    except (TypeError, ValueError):
        raise InputError(path, f"{where} must be a 3×4 numeric matrix") from None
    if arr.shape == (4, 4):
        if not np.allclose(arr[3], [0, 0, 0, 1]):
            raise InputError(path, f"{where} is 4×4 but its last row is not [0, 0, 0, 1]")
        arr = arr[:3]
    if arr.shape != (3, 4):
        raise InputError(path, f"{where} must be 3×4 (world→camera [R|t]), got shape {arr.shape}")
    if not np.all(np.isfinite(arr)):
        raise InputError(path, f"{where} is marked good but holds non-finite values")
    R = arr[:, :3]
    if abs(np.linalg.det(R) - 1) > 1e-3 or not np.allclose(R @ R.T, np.eye(3), atol=1e-3):
        raise InputError(path, f"{where} is marked good but its 3×3 part is not a rotation")
    return arr


def read_poses(path: str | os.PathLike) -> dict[str, ClipPoses]:
    raw = load_json(path, WHAT)
    if not isinstance(raw, dict):
        raise InputError(path, f"{WHAT} must be an object keyed by clip_uid")
    out = {}
    for clip_uid, entry in raw.items():
        uid(path, clip_uid, "clip_uid", "top-level key")
        if not isinstance(entry, dict):
            raise InputError(path, f"{clip_uid} must be an object with good_poses and camera_poses")
        good, poses = entry.get("good_poses"), entry.get("camera_poses")
        if not isinstance(good, list) or not all(isinstance(g, bool) for g in good):
            raise InputError(path, f"{clip_uid}.good_poses must be a list of booleans")
        if not isinstance(poses, list):
            raise InputError(path, f"{clip_uid}.camera_poses must be a list of 3×4 matrices")
        if len(good) != len(poses):
            raise InputError(path, f"{clip_uid}: good_poses has {len(good)} entries but "
                                   f"camera_poses has {len(poses)}")
        mats = np.full((len(good), 3, 4), np.nan)
        for i, (g, p) in enumerate(zip(good, poses)):
            if g:
                mats[i] = _pose(path, p, f"{clip_uid}.camera_poses[{i}]")
        out[clip_uid] = ClipPoses(good=np.array(good, dtype=bool), cam_from_world=mats)
    return out


def poses_to_json(poses: dict[str, ClipPoses]) -> dict:
    out = {}
    for clip_uid, cp in poses.items():
        mats = np.where(cp.good[:, None, None], cp.cam_from_world, 0.0)
        if not np.all(np.isfinite(mats)):
            raise ValueError(f"{clip_uid}: a pose marked good is not finite")
        out[clip_uid] = {"good_poses": [bool(g) for g in cp.good], "camera_poses": mats.tolist()}
    return out


def write_poses(path: str | os.PathLike, poses: dict[str, ClipPoses]) -> None:
    dump_json(path, poses_to_json(poses))
