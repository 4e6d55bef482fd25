"""The pose vocabulary (vq3d.geometry) against ground truth: cameras built the way the synthetic
scenes are (a centre and a look direction in a z-up world, vq3d.synth.camera), where what a camera
sees is known without the formulas under test; Sim3d composition against plain numpy."""

from __future__ import annotations

import numpy as np
import pycolmap
import pytest
from scipy.spatial.transform import Rotation

from vq3d import geometry
from vq3d.synth.camera import cam_from_world as synth_cam_from_world, look_rotation


def scene_cameras(n=12, seed=0):
    """(cam_from_world (n, 3, 4), centres, world_from_cam rotations) of cameras at random places
    looking in random directions, as the synthetic renderer poses them."""
    rng = np.random.default_rng(seed)
    centres = rng.uniform([-3, -3, 0.5], [6, 6, 2.0], (n, 3))
    rots = [look_rotation(rng.normal(size=3) * [1, 1, 0.3], roll=rng.uniform(-0.3, 0.3))
            for _ in range(n)]
    poses = np.stack([synth_cam_from_world(r, c) for r, c in zip(rots, centres)])
    return poses, centres, rots


def test_camera_centre_and_what_the_camera_sees():
    poses, centres, rots = scene_cameras()
    np.testing.assert_allclose(geometry.camera_centre(poses), centres, atol=1e-12)
    for pose, c, world_from_cam_R in zip(poses, centres, rots):
        typed = geometry.rigid(pose)
        np.testing.assert_allclose(geometry.camera_centre(typed), c, atol=1e-12)
        np.testing.assert_allclose(geometry.camera_centre(pose), c, atol=1e-12)
        right, down, forward = world_from_cam_R.T
        # 1 m ahead is camera z = 1; right is +x; down is +y; the centre is the origin.
        seen = geometry.to_camera(typed, [c, c + forward, c + 2 * right, c + 0.5 * down])
        np.testing.assert_allclose(seen, [[0, 0, 0], [0, 0, 1], [2, 0, 0], [0, 0.5, 0]], atol=1e-12)
        # world above the camera (z-up world) is camera "up": negative y, for a level-ish camera.
        assert geometry.to_camera(pose, c + [0, 0, 1.0])[0, 1] < 0


def test_round_trips_world_camera_world():
    poses, _, _ = scene_cameras(seed=3)
    pts = np.random.default_rng(4).uniform(-5, 5, (50, 3))
    for pose in poses:
        for p in (pose, geometry.rigid(pose)):
            np.testing.assert_allclose(geometry.to_world(p, geometry.to_camera(p, pts)), pts, atol=1e-12)
        # The inverse pose's translation is the centre; inverse of the inverse is the pose.
        inv = geometry.world_from_cam(pose)
        np.testing.assert_allclose(inv[:, 3], geometry.camera_centre(pose), atol=1e-12)
        np.testing.assert_allclose(geometry.world_from_cam(geometry.rigid(pose)).matrix(), inv, atol=1e-12)
        np.testing.assert_allclose(geometry.to_camera(inv, geometry.to_camera(pose, pts)), pts, atol=1e-12)
        # A Rigid3d and its matrix are the same pose: pycolmap's own transform agrees.
        np.testing.assert_allclose(geometry.rigid(pose) * pts, geometry.to_camera(pose, pts), atol=1e-12)
    np.testing.assert_allclose(geometry.world_from_cam(poses)[4], geometry.world_from_cam(poses[4]))


def test_orthonormalise_and_rigid_reject_what_is_not_a_rotation():
    pose = scene_cameras(1)[0][0]
    rounded = np.round(pose, 4)  # a pose file written with 4 decimals
    r = geometry.orthonormalise(rounded[:, :3])
    np.testing.assert_allclose(r @ r.T, np.eye(3), atol=1e-14)
    assert np.abs(r - pose[:, :3]).max() < 1e-4
    mirrored = pose.copy()
    mirrored[:, 0] *= -1
    with pytest.raises(ValueError, match="reflection"):
        geometry.rigid(mirrored)


def _random_sim(seed: int) -> pycolmap.Sim3d:
    rng = np.random.default_rng(seed)
    return pycolmap.Sim3d(float(rng.uniform(0.1, 5)), pycolmap.Rotation3d(Rotation.random(random_state=seed).as_matrix()),
                          rng.normal(size=3) * 3)


def _numpy_sim(sim: pycolmap.Sim3d):
    return sim.scale, Rotation.from_quat(sim.rotation.quat).as_matrix(), np.asarray(sim.translation)


def test_sim3_apply_composition_and_storage_against_numpy():
    pts = np.random.default_rng(7).normal(size=(20, 3))
    a, b = _random_sim(1), _random_sim(2)
    sa, ra, ta = _numpy_sim(a)
    sb, rb, tb = _numpy_sim(b)
    np.testing.assert_allclose(geometry.apply_sim3(a, pts), sa * pts @ ra.T + ta, atol=1e-12)
    by_hand = sa * (sb * pts @ rb.T + tb) @ ra.T + ta
    np.testing.assert_allclose(geometry.apply_sim3(a * b, pts), by_hand, atol=1e-12)
    np.testing.assert_allclose(geometry.apply_sim3(a.inverse(), geometry.apply_sim3(a, pts)), pts, atol=1e-12)
    # The stored 3×4 [s·R | t] gives the same similarity back (what the pose files hold).
    back = geometry.sim3(a.matrix())
    assert back.scale == pytest.approx(a.scale, rel=1e-14)
    np.testing.assert_allclose(back.matrix(), a.matrix(), atol=1e-12)
    with pytest.raises(ValueError, match="positive scale"):
        geometry.sim3(np.hstack([-np.eye(3), np.zeros((3, 1))]))


def test_cam_from_scan_against_numpy():
    """A camera posed in a sub-model sees a model point, in metres, at scale × its model-unit
    camera coordinates; cam_from_scan sees the point's scan position exactly there."""
    scan_from_model = _random_sim(5)
    cam_from_model = geometry.rigid(scene_cameras(1, seed=6)[0][0])
    model_pts = np.random.default_rng(8).normal(size=(10, 3))
    cam_from_scan = geometry.cam_from_scan(scan_from_model, cam_from_model)
    np.testing.assert_allclose(
        geometry.to_camera(cam_from_scan, geometry.apply_sim3(scan_from_model, model_pts)),
        scan_from_model.scale * geometry.to_camera(cam_from_model, model_pts), atol=1e-12)
    np.testing.assert_allclose(geometry.camera_centre(cam_from_scan),
                               geometry.apply_sim3(scan_from_model, geometry.camera_centre(cam_from_model)[None])[0],
                               atol=1e-12)


def test_rotation_error_and_interpolation_endpoints():
    a = geometry.rigid(scene_cameras(1)[0][0])
    turn = Rotation.from_rotvec([0, 0, np.radians(30)]).as_matrix()
    b = pycolmap.Rigid3d(pycolmap.Rotation3d(turn @ a.rotation.matrix()), a.translation)
    assert geometry.rotation_error_deg(a, b) == pytest.approx(30.0, abs=1e-9)
    assert geometry.rotation_error_deg(a, geometry.interpolate(a, b, 0.5)) == pytest.approx(15.0, abs=1e-6)
    np.testing.assert_allclose(geometry.interpolate(a, b, 1.0).matrix(), b.matrix(), atol=1e-12)
