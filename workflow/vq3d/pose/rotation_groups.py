"""Joint PnP of frames that turn on the spot (pose.pnp_rotation_groups), for pose_pnp.

A wearer who stops to look at something (a counter, a table, a shelf) gives a stretch of frames
that share one camera centre and differ by a head rotation. SfM gets no parallax there and each
frame alone may hold too few 2D-3D matches to the scan for PnP (the hard tier's table dwell: 5-14
inliers a frame, docs/benchmarks.md). Together they hold many: a keypoint of frame i, rotated by
R_ref_from_i, is a ray of the group's reference camera, so all the group's matches pose that one
camera, and every member's cam_from_world follows from its rotation.

1. Link: consecutive frames i-1, i are one group when a pure rotation (bearings, 2-point RANSAC)
   explains their keypoint matches nearly as well as an essential matrix does (LINK_MIN_RATIO of
   its inliers at the same LINK_MAX_ERROR_PX): frames of a dwell pass it, walking frames mostly
   fail it (their translation shows as parallax; a step along a flat wall can pass as a turn, so
   a group is only solved where PnP failed, and is bounded to GROUP_MAX_FRAMES). Links are only
   tried next to a frame PnP failed on.
2. Solve: one absolute pose (pycolmap LO-RANSAC) for all members' 2D-3D matches as
   pixels of the reference camera, at GROUP_ERROR_FACTOR × pnp_max_error_px: pooled matches of
   many frames give chance agreements more room, and at the full threshold a camera far outside
   the room (seeing all points as one spot) out-voted the right pose. Accepted with at least
   pnp_min_inliers inliers from two or more frames and a centre inside the scan's points.
3. Only members PnP failed on take the group's pose; the others keep their own."""

from __future__ import annotations

from dataclasses import dataclass, field

import cv2
import numpy as np
import pycolmap

from .. import geometry
from . import colmap_io

LINK_MAX_ERROR_PX = 2.0   # rotation and essential-matrix inlier threshold of a link
LINK_MIN_INLIERS = 20
# Rotation inliers / essential inliers (benchmarks/rotation_links.py, tiers seeds 0 and 1): on the
# hard tier 117 of 121 pairs under 1 cm apart pass (median 0.94) and none of 99 pairs 8 cm or more
# apart (at most 0.53); on the easy tier's narrower view of flat walls 12 of 137 such pairs pass.
LINK_MIN_RATIO = 0.7
LINK_RATIO_TEST = 0.8
GROUP_ERROR_FACTOR = 0.5
GROUP_MAX_FRAMES = 50     # a longer dwell is posed as several groups (bounded RANSAC cost)
BOUNDS_MARGIN_M = 1.0     # a pose's centre must lie within the scan's points' box grown by this


@dataclass
class FrameFeatures:
    """One frame's keypoints as unit bearings of its camera, their descriptors, and its 2D-3D
    matches to the scan (pixels and scan points)."""

    desc: np.ndarray
    bearings: np.ndarray
    p2d: np.ndarray
    p3d: np.ndarray


def bearings(camera: pycolmap.Camera, xy: np.ndarray) -> np.ndarray:
    """Unit rays in the camera frame of pixels xy (COLMAP convention), lens undone."""
    if not len(xy):
        return np.zeros((0, 3))
    rays = np.column_stack([np.asarray(camera.cam_from_img(np.asarray(xy, float))), np.ones(len(xy))])
    return rays / np.linalg.norm(rays, axis=1, keepdims=True)


def _rotation_between(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """R minimising Σ|b - R a|² over rows a, b (Kabsch)."""
    u, _, vt = np.linalg.svd(a.T @ b)
    d = np.sign(np.linalg.det(vt.T @ u.T))
    return vt.T @ np.diag([1.0, 1.0, d]) @ u.T


def rotation_ransac(a: np.ndarray, b: np.ndarray, max_angle: float, trials: int = 300,
                    seed: int = colmap_io.RANSAC_SEED) -> tuple[np.ndarray, np.ndarray]:
    """(R_b_from_a, inlier mask) of bearings b ≈ R a; 2-point samples, refit on the inliers."""
    rng = np.random.default_rng(seed)
    cos_max = np.cos(max_angle)
    best = np.zeros(len(a), bool)
    for _ in range(trials):
        pick = rng.choice(len(a), 2, replace=False)
        inl = np.sum((a @ _rotation_between(a[pick], b[pick]).T) * b, axis=1) > cos_max
        if inl.sum() > best.sum():
            best = inl
    rot = np.eye(3)
    for _ in range(2):
        if best.sum() < 2:
            break
        rot = _rotation_between(a[best], b[best])
        best = np.sum((a @ rot.T) * b, axis=1) > cos_max
    return rot, best


def link_evidence(prev: FrameFeatures, cur: FrameFeatures, focal_px: float,
                  matcher: cv2.DescriptorMatcher) -> tuple[np.ndarray | None, int, int]:
    """(R_cur_from_prev, its inliers, an essential matrix's inliers) of the two frames' matches
    (None, 0, 0 with too few matches to try)."""
    if len(prev.desc) < 2 or len(cur.desc) < 2:
        return None, 0, 0
    pairs = matcher.knnMatch(prev.desc, cur.desc, k=2)
    m = np.array([(p[0].queryIdx, p[0].trainIdx) for p in pairs
                  if len(p) == 2 and p[0].distance < LINK_RATIO_TEST * p[1].distance]).reshape(-1, 2)
    if len(m) < LINK_MIN_INLIERS:
        return None, 0, 0
    a, b = prev.bearings[m[:, 0]], cur.bearings[m[:, 1]]
    max_angle = LINK_MAX_ERROR_PX / focal_px
    rot, inl = rotation_ransac(a, b, max_angle)
    # The essential matrix on normalised image points (z = 1), threshold in the same units.
    na, nb = a[:, :2] / a[:, 2:], b[:, :2] / b[:, 2:]
    _, mask = cv2.findEssentialMat(na, nb, focal=1.0, pp=(0.0, 0.0), method=cv2.RANSAC,
                                   prob=0.999, threshold=max_angle)
    return rot, int(inl.sum()), int(mask.sum()) if mask is not None else len(m)


def link(prev: FrameFeatures, cur: FrameFeatures, focal_px: float,
         matcher: cv2.DescriptorMatcher) -> np.ndarray | None:
    """R_cur_from_prev when the two frames differ by a pure rotation, else None."""
    rot, n_rot, n_essential = link_evidence(prev, cur, focal_px, matcher)
    if n_rot < LINK_MIN_INLIERS or n_rot < LINK_MIN_RATIO * n_essential:
        return None
    return rot


@dataclass
class Group:
    """Consecutive rotation-linked frames: rotations relative to the first (the reference) and
    each member's 2D-3D matches (not its descriptors: a group may be long)."""

    frames: list[int] = field(default_factory=list)
    cam_from_ref: list[np.ndarray] = field(default_factory=list)
    matches: list[tuple[np.ndarray, np.ndarray]] = field(default_factory=list)

    def add(self, frame: int, feats: FrameFeatures, cur_from_prev: np.ndarray | None) -> None:
        rot = np.eye(3) if cur_from_prev is None else cur_from_prev @ self.cam_from_ref[-1]
        self.frames.append(frame)
        self.cam_from_ref.append(rot)
        self.matches.append((feats.p2d, feats.p3d))


def solve(group: Group, camera: pycolmap.Camera, conf: dict,
          bounds: tuple[np.ndarray, np.ndarray]) -> dict:
    """{"cam_from_world": {frame: 3×4}, "inliers", "matches", "frames_with_inliers"} or {"reason"}."""
    rays, points, owner = [], [], []
    for k, (rot, (p2d, p3d)) in enumerate(zip(group.cam_from_ref, group.matches)):
        if len(p2d):
            rays.append(bearings(camera, p2d) @ rot)  # rows: R_ref_from_cam · ray
            points.append(p3d)
            owner.append(np.full(len(p2d), k))
    if not rays:
        return {"reason": "no 2D-3D matches in the group"}
    rays, points, owner = np.concatenate(rays), np.concatenate(points), np.concatenate(owner)
    front = rays[:, 2] > 0.2  # beyond ~78° off the reference axis the fisheye model is unreliable
    min_inliers = int(conf["pnp_min_inliers"])
    if front.sum() < min_inliers:
        return {"reason": f"{int(front.sum())} 2D-3D matches in view of the reference frame, need {min_inliers}"}
    pixels = np.asarray(camera.img_from_cam(np.ascontiguousarray(rays[front])))
    est = colmap_io.absolute_pose_options(GROUP_ERROR_FACTOR * float(conf["pnp_max_error_px"]))
    est.ransac.min_inlier_ratio = 0.01  # a few frames' right matches among many frames' wrong ones
    est.ransac.max_num_trials = 100_000
    ret = pycolmap.estimate_and_refine_absolute_pose(pixels, points[front], camera, est)
    if ret is None:
        return {"reason": f"absolute pose RANSAC failed on {int(front.sum())} matches"}
    inliers = int(ret["num_inliers"])
    with_inliers = len(np.unique(owner[front][np.asarray(ret["inlier_mask"], bool)]))
    if inliers < min_inliers or with_inliers < 2:
        return {"reason": f"{inliers} inliers from {with_inliers} frame(s), need {min_inliers} from 2"}
    ref_from_world = ret["cam_from_world"].matrix()
    centre = geometry.camera_centre(ref_from_world)
    if not inside(centre, bounds):
        return {"reason": f"centre {np.round(centre, 2).tolist()} outside the scan"}
    poses = {i: np.column_stack([rot @ ref_from_world[:, :3], rot @ ref_from_world[:, 3]])
             for i, rot in zip(group.frames, group.cam_from_ref)}
    return {"cam_from_world": poses, "inliers": inliers, "matches": int(front.sum()),
            "frames_with_inliers": with_inliers}


def inside(centre: np.ndarray, bounds: tuple[np.ndarray, np.ndarray]) -> bool:
    lo, hi = bounds
    return bool(np.all(centre >= lo - BOUNDS_MARGIN_M) and np.all(centre <= hi + BOUNDS_MARGIN_M))
