"""Joint PnP of frames sharing a camera centre (vq3d.pose.rotation_groups, pose_pnp's Grouper),
against the true poses of a synthetic fisheye camera in a room of known points."""

from __future__ import annotations

import cv2
import numpy as np
import pycolmap
from scipy.spatial.transform import Rotation

from vq3d import geometry
from vq3d.pose import pnp, rotation_groups
from vq3d.pose.rotation_groups import FrameFeatures
from vq3d.stages import stage_conf

CAMERA = pycolmap.Camera(model="RADIAL_FISHEYE", width=720, height=540,
                         params=[320.0, 360.0, 270.0, 0.05, -0.003])
CONF = stage_conf("pose_pnp")
ROOM = (np.array([0.0, 0.0, 0.0]), np.array([6.0, 5.0, 3.0]))
CENTRE = np.array([2.0, 2.5, 1.5])


def room_points(n: int, rng) -> np.ndarray:
    """Points on the walls, floor and ceiling of ROOM (a scene of very different depths)."""
    pts = rng.uniform(ROOM[0], ROOM[1], size=(n, 3))
    axis = rng.integers(0, 3, n)
    side = rng.integers(0, 2, n)
    pts[np.arange(n), axis] = np.where(side == 1, ROOM[1][axis], ROOM[0][axis])
    return pts


def view(cam_from_world: np.ndarray, points: np.ndarray):
    """(pixels, mask) of points seen by the camera: in front, on the image."""
    cam = points @ cam_from_world[:, :3].T + cam_from_world[:, 3]
    front = cam[:, 2] > 0.3
    px = np.full((len(points), 2), -1.0)
    px[front] = np.asarray(CAMERA.img_from_cam(np.ascontiguousarray(cam[front])))
    seen = front & (px[:, 0] > 0) & (px[:, 0] < CAMERA.width) & (px[:, 1] > 0) & (px[:, 1] < CAMERA.height)
    return px, seen


def look(yaw_deg: float, pitch_deg: float = 0.0) -> np.ndarray:
    """R_cam_from_world of a camera looking along +x turned by yaw about z (world up) and pitch."""
    base = np.array([[0, -1, 0], [0, 0, -1], [1, 0, 0]], float)  # cam z = world x, cam y = -world z
    return base @ Rotation.from_euler("zy", [yaw_deg, pitch_deg], degrees=True).as_matrix().T


class Scene:
    """Room points with one random SIFT-like descriptor each; frames observe them with noise."""

    def __init__(self, seed: int = 0, n: int = 3000):
        self.rng = np.random.default_rng(seed)
        self.points = room_points(n, self.rng)
        self.desc = self.rng.random((n, 128)).astype(np.float32)

    def frame(self, cam_from_world, scan_matches: int, wrong_matches: int = 40) -> FrameFeatures:
        """A frame's features (every visible point, 0.5 px noise) and its 2D-3D matches to the
        scan: `scan_matches` right ones (fewer than PnP needs alone) and `wrong_matches`."""
        px, seen = view(cam_from_world, self.points)
        idx = np.flatnonzero(seen)
        xy = px[idx] + self.rng.normal(0, 0.5, (len(idx), 2))
        desc = self.desc[idx] + self.rng.normal(0, 0.01, (len(idx), 128)).astype(np.float32)
        right = self.rng.choice(len(idx), scan_matches, replace=False)
        wrong_xy = self.rng.uniform([0, 0], [CAMERA.width, CAMERA.height], (wrong_matches, 2))
        wrong_xyz = room_points(wrong_matches, self.rng)
        return FrameFeatures(desc, rotation_groups.bearings(CAMERA, xy),
                             np.concatenate([xy[right], wrong_xy]),
                             np.concatenate([self.points[idx][right], wrong_xyz]))


pose = geometry.pose_at


def link(scene, a, b):
    return rotation_groups.link(scene.frame(a, 0, 0), scene.frame(b, 0, 0), CAMERA.mean_focal_length(),
                                cv2.BFMatcher(cv2.NORM_L2))


def test_link_recovers_a_head_rotation_and_refuses_a_step():
    scene = Scene(1)
    a = pose(look(10, -5), CENTRE)
    b = pose(look(14, -3), CENTRE)
    rot = link(scene, a, b)
    assert rot is not None
    truth = b[:, :3] @ a[:, :3].T  # R_b_from_a
    assert np.degrees(Rotation.from_matrix(rot @ truth.T).magnitude()) < 0.2
    # The same turn with a 20 cm step (a walking frame at 5 fps): parallax, no link.
    assert link(scene, a, pose(look(14, -3), CENTRE + [0.15, 0.13, 0.0])) is None


def test_group_poses_frames_none_of_which_pnp_poses_alone():
    scene = Scene(2)
    rots = [look(yaw, pitch) for yaw, pitch in zip(np.linspace(0, 25, 12), np.linspace(-10, 5, 12))]
    truth = [pose(r, CENTRE) for r in rots]
    feats = [scene.frame(t, scan_matches=6) for t in truth]  # 6 right matches: < pnp_min_inliers 15
    posed, failed = {}, {}
    grouper = pnp.Grouper(CAMERA, ROOM, CONF)
    for i, f in enumerate(feats):
        failed[i] = "too few inliers"
        grouper.add(i, f, False, posed, failed)
    grouper.close(posed, failed)
    assert sorted(posed) == list(range(12)) and not failed
    for i, entry in posed.items():
        got = np.array(entry["cam_from_world"])
        assert geometry.rotation_error_deg(got, truth[i]) < 1.0
        assert np.linalg.norm(geometry.camera_centre(got) - CENTRE) < 0.05
        assert (entry["group"]["first"], entry["group"]["last"]) == (0, 11)
        assert entry["group"]["frames_with_inliers"] >= 8


def test_group_keeps_the_poses_pnp_found_alone_and_stops_at_a_step():
    scene = Scene(3)
    truth = [pose(look(5 * i), CENTRE) for i in range(6)]
    truth += [pose(look(30 + 2 * i), CENTRE + [1.0, 0.5, 0.0]) for i in range(4)]  # walked away
    alone_pose = np.eye(3, 4)  # what PnP "found" for frame 2: kept as it is
    posed, failed = {2: {"frame": 2, "cam_from_world": alone_pose.tolist()}}, {}
    grouper = pnp.Grouper(CAMERA, ROOM, CONF)
    for i, t in enumerate(truth):
        ok = i == 2
        if not ok:
            failed[i] = "too few inliers"
        grouper.add(i, scene.frame(t, scan_matches=6), ok, posed, failed)
    grouper.close(posed, failed)
    assert posed[2]["cam_from_world"] == alone_pose.tolist()
    first = {i: e["group"] for i, e in posed.items() if "group" in e}
    assert {g["first"] for g in first.values()} <= {0, 6} and all(
        (g["first"], g["last"]) in ((0, 5), (6, 9)) for g in first.values())
    for i, e in posed.items():
        if i != 2:
            assert np.linalg.norm(geometry.camera_centre(np.array(e["cam_from_world"]))
                                  - geometry.camera_centre(truth[i])) < 0.05


def test_group_without_enough_evidence_says_why_and_poses_nothing():
    scene = Scene(4)
    truth = [pose(look(3 * i), CENTRE) for i in range(3)]
    posed, failed = {}, {}
    grouper = pnp.Grouper(CAMERA, ROOM, CONF)
    for i, t in enumerate(truth):
        failed[i] = "2 PnP inliers"
        grouper.add(i, scene.frame(t, scan_matches=2, wrong_matches=30), False, posed, failed)
    grouper.close(posed, failed)
    assert not posed
    assert all(r.startswith("2 PnP inliers; rotation group 0-2: ") for r in failed.values())


def test_a_pose_outside_the_scan_is_refused():
    assert rotation_groups.inside(CENTRE, ROOM)
    assert rotation_groups.inside(ROOM[1] + 0.9, ROOM)
    assert not rotation_groups.inside(np.array([400.0, 250.0, -20.0]), ROOM)


def test_pnp_rotation_groups_is_a_pose_pnp_key_on_by_default():
    assert CONF["pnp_rotation_groups"] is True
    assert stage_conf("pose_pnp", pnp_rotation_groups=False)["pnp_rotation_groups"] is False
