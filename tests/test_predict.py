"""3D prediction: lens model vs pycolmap, lifting by each depth source against a known synthetic
scene, EgoLoc's aggregation modes, and the frame conventions against EgoLoc's real files."""

from __future__ import annotations

import itertools
import json
import warnings
from pathlib import Path

import cv2
import numpy as np
import pycolmap
import pytest
from conftest import vq2d_box, vq2d_clip, vq2d_doc, vq2d_query_set, write_doc

from vq3d.config import defaults
from vq3d.errors import InputError
from vq3d.formats.clip_detections import ClipDetections, Peak, QueryDetections, ScoredBox, \
    write_clip_detections
from vq3d.formats.clip_predictions import (ClipPredictions, QueryPrediction, read_clip_predictions,
                                           write_clip_predictions)
from vq3d.formats.intrinsics import Fisheye
from vq3d.formats.vq3d_annotations import annotation_to_matterport
from vq3d.predict import aggregate as agg
from vq3d import lens as camera
from vq3d.predict import main
from vq3d.predict import submission as sub
from vq3d.stages import stage_conf
from vq3d.formats.pose_internal import ModelAlignment, write_scan_from_model
from vq3d.geometry import rigid, to_camera
from vq3d.predict.lift import PosedPeak, Triangulation

W, H = 1440, 1080
# Real Ego4D intrinsics from scan_to_intrinsics_egoloc.json: unict_Bike mechanic_34 at 1440×1080, a
# strong fisheye; the 1920×1080 calibrations are close to a pinhole (k1 ≈ 1/3 ≈ tan's own term).
CAM = Fisheye(W, H, 641.6797178849386, 720.0, 540.0, 0.07091705016669456, -0.005081857490635613)
CAM_1920 = Fisheye(1920, 1080, 1024.8266155770132, 960.0, 540.0, 0.30255376114399013,
                   0.22426695094136556)
CLIP, SCAN, VIDEO = "clip-a", "scan-a", "video-a"
CENTRE = np.array([1.0, 2.0, 0.8])


def colmap_cam(cam: Fisheye, scale: float = 1.0) -> pycolmap.Camera:
    return pycolmap.Camera(model="RADIAL_FISHEYE", width=int(cam.width * scale),
                           height=int(cam.height * scale),
                           params=[cam.f * scale, cam.cx * scale, cam.cy * scale, cam.k1, cam.k2])


# ------------------------------------------------------------------------------------- lens model

@pytest.mark.parametrize("cam", [CAM, CAM_1920, Fisheye(W, H, 600.0, 700, 530, -0.05, 0.01),
                                 Fisheye(W, H, 600.0, 700, 530, 0.0, 0.0)])
def test_fisheye_matches_pycolmap(cam):
    ref = colmap_cam(cam)
    rng = np.random.default_rng(0)
    # Rays up to ~60° off axis: the corners of an Ego4D frame are about there.
    pts = np.column_stack([rng.uniform(-1.6, 1.6, 500), rng.uniform(-1.0, 1.0, 500), np.ones(500)])
    pts *= rng.uniform(0.5, 5, (500, 1))
    px = camera.project(cam, pts)
    np.testing.assert_allclose(px, ref.img_from_cam(pts), atol=1e-6)
    np.testing.assert_allclose(camera.undistort_normalized(cam, px), ref.cam_from_img(px),
                               atol=1e-8)
    np.testing.assert_allclose(camera.undistort_normalized(cam, px), pts[:, :2] / pts[:, 2:],
                               atol=1e-8)
    rays = camera.unproject(cam, px)
    np.testing.assert_allclose(rays, pts / np.linalg.norm(pts, axis=1, keepdims=True), atol=1e-9)


def test_fisheye_distortion_is_not_negligible():
    """The research code back-projected with a pinhole. For the 1920×1080 Ego4D calibrations the
    fitted RADIAL_FISHEYE is close to a pinhole (k1≈0.3≈1/3), but for the 1440×1080 ones
    (unict_Bike mechanic_34 below) a pixel 3/4 of the way to the corner is ~4° off."""
    cam = CAM
    px = np.array([[1440 * 0.75, 1080 * 0.75]])
    ray = np.append(camera.undistort_normalized(cam, px)[0], 1.0)
    pinhole = np.append((px[0] - [cam.cx, cam.cy]) / cam.f, 1.0)
    cos = ray @ pinhole / np.linalg.norm(ray) / np.linalg.norm(pinhole)
    assert np.degrees(np.arccos(cos)) > 3.5
    np.testing.assert_allclose(camera.undistort_pixels(cam, camera.project(cam, [[0.5, 0.3, 1]])),
                               [[cam.f * 0.5 + cam.cx, cam.f * 0.3 + cam.cy]], atol=1e-6)


def test_unproject_beyond_lens_curve_is_nan():
    cam = Fisheye(W, H, 100.0, 960, 540, -0.5, 0.0)  # θ_d peaks at 0.544 (θ≈0.82): larger radii are impossible
    out = camera.undistort_normalized(cam, np.array([[960 + 100 * 0.5, 540], [960 + 100 * 0.6, 540]]))
    assert np.all(np.isfinite(out[0])) and np.all(np.isnan(out[1]))


# -------------------------------------------------------------------------------- synthetic scene

def look_at(centre, target) -> np.ndarray:
    """cam_from_world 3×4 of a camera at `centre` looking at `target` (COLMAP: y down, z ahead)."""
    z = target - centre
    z /= np.linalg.norm(z)
    x = np.cross(z, [0, 0, 1.0])
    x /= np.linalg.norm(x)
    y = np.cross(z, x)
    R = np.stack([x, y, z])
    return np.column_stack([R, -R @ centre])


PEAK_FRAMES = [3, 8, 12, 17, 21]
QUERY_FRAME = 25
N_FRAMES = 30


def scene():
    """Cameras around the object, each looking 1.4 m beside it (~30° off-axis) so the object lies off-axis where
    the lens distortion is strong; object = points on a 4 cm sphere; background walls."""
    rng = np.random.default_rng(1)
    poses = {}
    for k, f in enumerate(PEAK_FRAMES + [QUERY_FRAME]):
        ang = 0.5 * k
        c = CENTRE + np.array([2.2 * np.cos(ang), 2.2 * np.sin(ang), 0.4 + 0.1 * k])
        side = np.cross(CENTRE - c, [0, 0, 1.0])
        poses[f] = look_at(c, CENTRE + 1.4 * side / np.linalg.norm(side))
    d = rng.normal(size=(60, 3))
    obj = CENTRE + 0.04 * d / np.linalg.norm(d, axis=1, keepdims=True)
    walls = np.column_stack([rng.uniform(-3, 5, 400), rng.uniform(-2, 6, 400), rng.uniform(0, 3, 400)])
    walls[:200, 0] = -3.0
    walls[200:, 1] = 6.0
    return poses, obj, walls


def box_of(cam_from_world, half=40.0):
    """A box centred exactly on the projection of the object centre."""
    u, v = colmap_cam(CAM).img_from_cam(to_camera(cam_from_world, CENTRE))[0]
    return (u - half, v - half, u + half, v + half)


SFM_FROM_SCAN = (0.37, 0.3, [0.5, -1.0, 2.0])  # scale, yaw, translation of the model's frame


def sim3_of(sfm_from_scan=SFM_FROM_SCAN) -> pycolmap.Sim3d:
    s, yaw, t = sfm_from_scan
    Rs = np.array([[np.cos(yaw), -np.sin(yaw), 0], [np.sin(yaw), np.cos(yaw), 0], [0, 0, 1]])
    return pycolmap.Sim3d(s, pycolmap.Rotation3d(Rs), np.asarray(t, float))


def write_sfm(path: Path, poses: dict, obj, walls, sfm_from_scan=SFM_FROM_SCAN):
    """A COLMAP model of the scene in its own similarity frame (as SfM gives), at half resolution."""
    s, yaw, t = sfm_from_scan
    Rs = np.array([[np.cos(yaw), -np.sin(yaw), 0], [np.sin(yaw), np.cos(yaw), 0], [0, 0, 1]])
    t = np.asarray(t, float)
    cam = colmap_cam(CAM, 0.5)
    cam.camera_id = 1
    rec = pycolmap.Reconstruction()
    rec.add_camera_with_trivial_rig(cam)
    pts = np.vstack([obj, walls])
    obs = {i: [] for i in range(len(pts))}
    for image_id, (frame, P) in enumerate(sorted(poses.items()), start=1):
        if frame == QUERY_FRAME:
            continue  # the query frame is posed by PnP only: not in the SfM model
        p_cam = to_camera(P, pts)
        px = cam.img_from_cam(np.where(p_cam[:, 2:] > 0, p_cam, 1))
        x1, y1, x2, y2 = (v * 0.5 for v in box_of(P))
        in_box = (px[:, 0] > x1) & (px[:, 0] < x2) & (px[:, 1] > y1) & (px[:, 1] < y2)
        keep = (p_cam[:, 2] > 0) & (px[:, 0] > 0) & (px[:, 0] < cam.width) & (px[:, 1] > 0) \
            & (px[:, 1] < cam.height)
        keep &= ~in_box | (np.arange(len(pts)) < len(obj))  # walls behind the object are hidden
        idx = np.flatnonzero(keep)
        img = pycolmap.Image(name=f"color_{frame:07d}.jpg",
                             points2D=pycolmap.Point2DList([pycolmap.Point2D(px[i]) for i in idx]),
                             camera_id=1, image_id=image_id)
        R, tc = P[:, :3], P[:, 3]
        cam_from_sfm = np.column_stack([R @ Rs.T, s * tc - R @ Rs.T @ t])
        rec.add_image_with_trivial_frame(img, pycolmap.Rigid3d(cam_from_sfm))
        for k, i in enumerate(idx):
            obs[i].append((image_id, k))
    for i, p in enumerate(pts):
        if len(obs[i]) >= 2:
            track = pycolmap.Track()
            for image_id, k in obs[i]:
                track.add_element(image_id, k)
            rec.add_point3D(s * Rs @ p + t, track)
    (path / "models" / "0").mkdir(parents=True)
    rec.write(path / "models" / "0")


def write_inputs(tmp: Path, poses: dict, peaks: list[tuple[int, tuple, float]], pose_query=True,
                 crop_box=(2, (1, 1, 11, 11)), frames=()):
    """`frames`: (frame, [(box, score), ...]) the detector scored, besides the peaks."""
    good = [False] * N_FRAMES
    mats = [np.zeros((3, 4)).tolist()] * N_FRAMES
    for f, P in poses.items():
        if f != QUERY_FRAME or pose_query:
            good[f], mats[f] = True, P.tolist()
    (tmp / "poses.json").write_text(json.dumps({CLIP: {"good_poses": good, "camera_poses": mats}}))
    (tmp / "intr.json").write_text(json.dumps({SCAN: {"('1440', '1080')": {
        "f": CAM.f, "cx": CAM.cx, "cy": CAM.cy, "k1": CAM.k1, "k2": CAM.k2}}}))
    cf, (cx1, cy1, cx2, cy2) = crop_box
    crop = vq2d_box(cf, cx1, cy1, cx2 - cx1, cy2 - cy1, size=(W, H))
    qsets = {q: vq2d_query_set(QUERY_FRAME, crop) for q in ("1", "2")}
    write_doc(tmp / "queries.json", vq2d_doc({VIDEO: [vq2d_clip(CLIP, [qsets], end=6.0)]}))
    det = ClipDetections(CLIP, "precomputed", [QueryDetections(
        0, "1", QUERY_FRAME, 2, (W, H),
        frames=[(f, [ScoredBox(*b, s) for b, s in boxes]) for f, boxes in frames],
        peaks=[Peak(f, ScoredBox(*b, s)) for f, b, s in peaks])])
    write_clip_detections(tmp / "det.json", det)


def run_predict(tmp: Path, depth: str, aggregation="mf_median", scan_from_model=None, scan_dir=None,
                **conf):
    # The scene's boxes are loose (80 px around a 4 cm sphere whose every point SfM "sees"): no
    # surface-to-centre correction unless a test asks for it.
    conf = stage_conf("predict", **{"sfm_surface_offset": 0.0, "depth": depth,
                                    "aggregation": aggregation, **conf})
    if scan_from_model is None:  # as with imported poses: predict fits each sub-model's Sim(3)
        conf["sfm_sim3_threshold_m"] = defaults("predict")["sfm_sim3_threshold_m"]
    main(tmp / "det.json", tmp / "poses.json", tmp / "sfm", tmp / "queries.json", tmp / "intr.json",
         tmp / "pred.json", CLIP, SCAN, conf, scan_from_model=scan_from_model,
         frames_dir=tmp / "frames", scan_dir=scan_dir)
    return read_clip_predictions(tmp / "pred.json").by_key()


@pytest.fixture(scope="module")
def synth(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("scene")
    poses, obj, walls = scene()
    write_sfm(tmp / "sfm", poses, obj, walls)
    return tmp, poses


def test_sfm_depth_recovers_centre(synth):
    tmp, poses = synth
    write_inputs(tmp, poses, [(f, box_of(poses[f]), 0.5 + 0.1 * i) for i, f in enumerate(PEAK_FRAMES)])
    preds = run_predict(tmp, "sfm")
    q = preds[(0, "1")]
    assert q.reason is None
    # The SfM points are the object's surface (4 cm sphere): their median depth is the centre's
    # to within the radius; every peak is lifted.
    assert all(p.point is not None and np.linalg.norm(p.point - CENTRE) < 0.05 for p in q.peaks)
    assert np.linalg.norm(q.pred_3d_vec_world - CENTRE) < 0.03
    np.testing.assert_allclose(q.query_frame_pose[:3], poses[QUERY_FRAME], atol=1e-12)  # a Rigid3d's
    np.testing.assert_allclose(q.query_frame_pose[3], [0, 0, 0, 1])
    np.testing.assert_allclose(q.pred_3d_vec_query_frame,
                               poses[QUERY_FRAME][:, :3] @ q.pred_3d_vec_world + poses[QUERY_FRAME][:, 3])
    # A query in the query file with no detections is kept, null, with its reason.
    assert preds[(0, "2")].pred_3d_vec_world is None and "no detections" in preds[(0, "2")].reason


def _scan_with_cube(root: Path, half: float = 0.04, centres=(CENTRE,)) -> Path:
    """A synthetic scan folder whose surface is a cube of half-size `half` around each of
    `centres` (CENTRE) and a floor 1 m below CENTRE (what rays beside the cubes hit)."""
    from vq3d.formats.ply import write_ply_mesh
    corners = np.array([[x, y, z] for x in (-1, 1) for y in (-1, 1) for z in (-1, 1)], float)
    quads = [(0, 1, 3, 2), (4, 6, 7, 5), (0, 4, 5, 1), (2, 3, 7, 6), (0, 2, 6, 4), (1, 5, 7, 3)]
    verts, faces = [], []
    for centre in centres:
        base = len(verts)
        verts += list(centre + half * corners)
        faces += [(base + a, base + b, base + c) for q in quads
                  for a, b, c in [(q[0], q[1], q[2]), (q[0], q[2], q[3])]]
    base = len(verts)
    verts += [CENTRE + [dx, dy, -1.0] for dx, dy in ((-9, -9), (9, -9), (9, 9), (-9, 9))]
    faces += [(base, base + 1, base + 2), (base, base + 2, base + 3)]
    (root / "refs").mkdir(parents=True)
    write_ply_mesh(root / "mesh.ply", np.array(verts), np.full((len(verts), 3), 128), np.array(faces))
    return root


def test_scan_depth_lifts_peaks_onto_the_scan_surface(synth, tmp_path):
    """depth scan: rays through the (tight) boxes hit the cube's visible faces: every peak lands
    within the cube's half-diagonal of the object centre, with no SfM point needed."""
    tmp, poses = synth
    scan = _scan_with_cube(tmp_path / "scan")
    write_inputs(tmp, poses, [(f, box_of(poses[f], half=8.0), 0.5) for f in PEAK_FRAMES])
    q = run_predict(tmp, "scan", scan_dir=scan)[(0, "1")]
    assert q.reason is None and all(p.point is not None for p in q.peaks)
    for p in q.peaks:
        assert 0.035 < np.linalg.norm(p.point - CENTRE) < 0.04 * np.sqrt(3) + 1e-3  # on the cube
    assert np.linalg.norm(q.pred_3d_vec_world - CENTRE) < 0.07
    with pytest.raises(InputError, match="depth 'scan' needs the clip's scan folder"):
        run_predict(tmp, "scan", scan_dir=tmp_path / "nowhere")


def test_scan_surface_is_the_last_fallback_for_peaks_nothing_else_lifts(synth, tmp_path):
    """One peak (nothing to triangulate) and no usable SfM points: only the scan surface lifts it;
    without the scan folder the query keeps its reason; rays that hit nothing say so."""
    from vq3d.predict.lift import ScanDepth
    tmp, poses = synth
    scan = _scan_with_cube(tmp_path / "scan")
    f = PEAK_FRAMES[2]
    write_inputs(tmp, poses, [(f, box_of(poses[f], half=8.0), 0.9)])  # its crop frame has no pose
    q = run_predict(tmp, "sfm", scan_dir=scan, min_points=10 ** 6)[(0, "1")]
    assert q.reason is None and np.linalg.norm(q.pred_3d_vec_world - CENTRE) < 0.07
    q = run_predict(tmp, "sfm", min_points=10 ** 6)[(0, "1")]
    assert q.pred_3d_vec_world is None and "SfM points" in q.reason
    q = run_predict(tmp, "sfm", scan_dir=scan, min_points=10 ** 6, fallback=False)[(0, "1")]
    assert q.pred_3d_vec_world is None
    # A broken scan mesh only turns the fallback off (the clip keeps its other predictions); with
    # depth scan it is the clip's error, naming the file.
    (scan / "mesh.ply").write_bytes((scan / "mesh.ply").read_bytes()[:-7])
    q = run_predict(tmp, "sfm", scan_dir=scan, min_points=10 ** 6)[(0, "1")]
    assert q.pred_3d_vec_world is None and "SfM points" in q.reason
    with pytest.raises(InputError, match=r"mesh\.ply.*truncated"):
        run_predict(tmp, "scan", scan_dir=scan)
    empty = ScanDepth(np.zeros((0, 3)), np.zeros((0, 3), int), stage_conf("predict"))
    peak = PosedPeak(f, box_of(poses[f], half=8.0), 0.9, rigid(poses[f]))
    (lifted,) = empty.lift(CAM, [peak])
    assert lifted.point_world is None and lifted.reason.startswith("0 of 9 rays")


def test_crop_anchor_finds_the_crops_instance_among_repeats(synth, tmp_path):
    """Two identical cubes: the queried one at CENTRE and a repeat 0.7 m above it. The peak is on
    the repeat (appearance alone cannot tell them apart); the visual crop, in a posed frame, shows
    the queried one. With crop_anchor_m the last boxes before the query frame that lift near the
    crop's point replace the peak; off, or with no such box (the object may have moved), the
    peak stays; an unposed crop frame changes nothing."""
    tmp, poses = synth
    twin = CENTRE + [0.0, 0.0, 0.7]
    scan = _scan_with_cube(tmp_path / "scan", centres=(CENTRE, twin))

    def box_at(frame, point, half=8.0):
        u, v = colmap_cam(CAM).img_from_cam(to_camera(poses[frame], point))[0]
        return (u - half, v - half, u + half, v + half)

    peak = (21, box_at(21, twin), 0.6)
    crop = (12, box_at(12, CENTRE))
    seen = [(3, [(box_at(3, CENTRE), 0.4)]), (8, [(box_at(8, CENTRE), 0.5), (box_at(8, twin), 0.45)]),
            (17, [(box_at(17, twin), 0.2)]), (21, [(peak[1], 0.6)])]
    write_inputs(tmp, poses, [peak], crop_box=crop, frames=seen)
    q = run_predict(tmp, "scan", scan_dir=scan)[(0, "1")]
    assert np.linalg.norm(q.pred_3d_vec_world - CENTRE) < 0.07
    used = {p.frame: p for p in q.peaks}
    assert sorted(used) == [3, 8, 21]  # the two sightings of the crop's instance, latest first
    assert "not the visual crop's instance" in used[21].reason and used[8].reason is None
    np.testing.assert_allclose(q.pred_3d_vec_query_frame, to_camera(poses[QUERY_FRAME], q.pred_3d_vec_world)[0])
    # Off: the peak's instance.
    q = run_predict(tmp, "scan", scan_dir=scan, crop_anchor_m=None)[(0, "1")]
    assert np.linalg.norm(q.pred_3d_vec_world - twin) < 0.07
    # No box before the query frame near the crop's instance: the peak stays.
    write_inputs(tmp, poses, [peak], crop_box=crop, frames=[f for f in seen if f[0] in (17, 21)])
    q = run_predict(tmp, "scan", scan_dir=scan)[(0, "1")]
    assert np.linalg.norm(q.pred_3d_vec_world - twin) < 0.07 and all(p.reason is None for p in q.peaks)
    # The crop's frame has no pose: nothing to check against.
    write_inputs(tmp, poses, [peak], crop_box=(13, crop[1]), frames=seen)
    q = run_predict(tmp, "scan", scan_dir=scan)[(0, "1")]
    assert np.linalg.norm(q.pred_3d_vec_world - twin) < 0.07


def test_peak_on_an_unposed_frame_falls_back_to_its_sightings_latest_posed_frame(synth, tmp_path):
    """The peak's frame (22) has no pose, the frame before it in the same run of boxed frames (21)
    has: that sighting is lifted. A run broken by more than 2 boxless frames is another sighting;
    with fallbacks off nothing is tried."""
    tmp, poses = synth
    scan = _scan_with_cube(tmp_path / "scan")
    on = box_of(poses[21], half=8.0)
    peak = (22, on, 0.7)
    write_inputs(tmp, poses, [peak], frames=[(20, [(on, 0.3)]), (21, [((0, 0, 4, 4), 0.1), (on, 0.6)]),
                                             (22, [(on, 0.7)])])
    q = run_predict(tmp, "scan", scan_dir=scan)[(0, "1")]
    assert np.linalg.norm(q.pred_3d_vec_world - CENTRE) < 0.07
    assert {p.frame: p.reason for p in q.peaks} == {21: None, 22: "frame has no pose"}
    assert run_predict(tmp, "scan", scan_dir=scan, fallback=False)[(0, "1")].pred_3d_vec_world is None
    write_inputs(tmp, poses, [peak], frames=[(17, [(box_of(poses[17], half=8.0), 0.6)]), (22, [(on, 0.7)])])
    q = run_predict(tmp, "scan", scan_dir=scan)[(0, "1")]
    assert q.pred_3d_vec_world is None and q.reason == "no peak frame has a pose"


def test_sfm_depth_maps_points_with_pose_merges_scan_from_model(synth, tmp_path):
    """With pose_merge's file, a sub-model's points go through that Sim(3), not a refit: the true
    one recovers the centre exactly as the fit does; one shifted by 0.3 m moves every lifted point
    by 0.3 m along the shift's component on the ray (depth), proving the file is what is used; a
    sub-model without one contributes no point, with merge's reason."""
    tmp, poses = synth
    write_inputs(tmp, poses, [(f, box_of(poses[f]), 0.5 + 0.1 * i) for i, f in enumerate(PEAK_FRAMES)])
    fitted = run_predict(tmp, "sfm")[(0, "1")]
    scan_from_model = sim3_of().inverse()
    path = tmp_path / "scan_from_model.json"
    write_scan_from_model(path, CLIP, [ModelAlignment(0, 5, scan_from_model, "renders")])
    merged = run_predict(tmp, "sfm", scan_from_model=path)[(0, "1")]
    np.testing.assert_allclose(merged.pred_3d_vec_world, fitted.pred_3d_vec_world, atol=1e-9)
    assert np.linalg.norm(merged.pred_3d_vec_world - CENTRE) < 0.03

    shift = np.array([0.0, 0.0, 0.3])
    moved = pycolmap.Sim3d(scan_from_model.scale, scan_from_model.rotation,
                           scan_from_model.translation + shift)
    write_scan_from_model(path, CLIP, [ModelAlignment(0, 5, moved, "renders+pnp")])
    shifted = run_predict(tmp, "sfm", scan_from_model=path)[(0, "1")]
    for a, b in zip(merged.peaks, shifted.peaks):
        P = poses[a.frame]
        assert b.depth - a.depth == pytest.approx(float(P[2, :3] @ shift), abs=1e-6)

    write_scan_from_model(path, CLIP, [ModelAlignment(0, 5, None, reason="renders: 1 render(s)")])
    none = run_predict(tmp, "sfm", fallback=False, scan_from_model=path)[(0, "1")]
    assert none.pred_3d_vec_world is None
    assert all("no scan Sim(3) (renders: 1 render(s))" in p.reason for p in none.peaks)
    write_scan_from_model(path, CLIP, [ModelAlignment(3, 5, scan_from_model, "renders")])
    with pytest.raises(InputError, match=r"scan_from_model.json: no entry for sub-model 0"):
        run_predict(tmp, "sfm", scan_from_model=path)
    with pytest.raises(InputError, match="clip_uid is 'other', expected 'clip-a'"):
        write_scan_from_model(path, "other", [ModelAlignment(0, 5, scan_from_model, "renders")])
        run_predict(tmp, "sfm", scan_from_model=path)


def test_sfm_depth_without_undistortion_would_miss(synth):
    """The same lift with the pinhole model is measurably worse: the lens model matters here."""
    tmp, poses = synth
    errs = []
    for f in PEAK_FRAMES:
        P = poses[f]
        u, v = np.mean(np.reshape(box_of(P), (2, 2)), axis=0)
        depth = to_camera(P, CENTRE)[0, 2]
        pin = np.array([(u - CAM.cx) / CAM.f * depth, (v - CAM.cy) / CAM.f * depth, depth])
        errs.append(np.linalg.norm(P[:, :3].T @ (pin - P[:, 3]) - CENTRE))
    assert min(errs) > 0.05


def test_triangulation_exact_and_rejects_outlier(synth):
    tmp, poses = synth
    peaks = [(f, box_of(poses[f]), 0.9) for f in PEAK_FRAMES]
    x1, y1, x2, y2 = box_of(poses[PEAK_FRAMES[2]])
    peaks[2] = (PEAK_FRAMES[2], (x1 + 300, y1 - 200, x2 + 300, y2 - 200), 0.95)  # a false detection
    write_inputs(tmp, poses, peaks)
    q = run_predict(tmp, "triangulate", "mf_mean")[(0, "1")]
    assert np.linalg.norm(q.pred_3d_vec_world - CENTRE) < 1e-4
    by_frame = {p.frame: p for p in q.peaks}
    assert by_frame[PEAK_FRAMES[2]].point is None and "disagrees" in by_frame[PEAK_FRAMES[2]].reason
    # Two views only: still exact; one view: null with a reason.
    write_inputs(tmp, poses, [(f, box_of(poses[f]), 0.9) for f in PEAK_FRAMES[:2]])
    assert np.linalg.norm(run_predict(tmp, "triangulate")[(0, "1")].pred_3d_vec_world - CENTRE) < 1e-4
    write_inputs(tmp, poses, [(PEAK_FRAMES[0], box_of(poses[PEAK_FRAMES[0]]), 0.9)])
    q = run_predict(tmp, "triangulate", fallback=False)[(0, "1")]
    assert q.pred_3d_vec_world is None and "needs 2" in q.reason


def test_fallbacks_lift_what_the_depth_source_cannot(synth):
    """predict.fallback: the other geometric source on the same peaks, then the visual crop."""
    tmp, poses = synth
    f0 = PEAK_FRAMES[0]
    # One peak cannot be triangulated; its SfM depth can.
    write_inputs(tmp, poses, [(f0, box_of(poses[f0]), 0.9)])
    q = run_predict(tmp, "triangulate")[(0, "1")]
    assert q.reason is None and np.linalg.norm(q.pred_3d_vec_world - CENTRE) < 0.05
    assert [p.point is not None for p in q.peaks] == [True]
    # SfM depth refused for every peak (too few points asked for): the peaks are triangulated.
    write_inputs(tmp, poses, [(f, box_of(poses[f]), 0.9) for f in PEAK_FRAMES])
    q = run_predict(tmp, "sfm", min_points=1000)[(0, "1")]
    assert q.reason is None and np.linalg.norm(q.pred_3d_vec_world - CENTRE) < 1e-3
    q = run_predict(tmp, "sfm", min_points=1000, fallback=False)[(0, "1")]
    assert q.pred_3d_vec_world is None and "need 1000" in q.reason
    # No detection peak at all: the visual crop, a box of the object in a posed frame, is lifted.
    f1 = PEAK_FRAMES[1]
    write_inputs(tmp, poses, [], crop_box=(f1, box_of(poses[f1])))
    q = run_predict(tmp, "sfm")[(0, "1")]
    assert q.reason is None and np.linalg.norm(q.pred_3d_vec_world - CENTRE) < 0.05
    np.testing.assert_allclose(q.pred_3d_vec_query_frame, to_camera(poses[QUERY_FRAME],
                                                                    q.pred_3d_vec_world)[0])
    assert run_predict(tmp, "sfm", fallback=False)[(0, "1")].reason == "no detection peak"
    # ... and with triangulation and one peak, the crop's view is triangulated with the peak's
    # when the crop has no SfM depth either.
    write_inputs(tmp, poses, [(f0, box_of(poses[f0]), 0.9)], crop_box=(f1, box_of(poses[f1])))
    q = run_predict(tmp, "triangulate", min_points=1000)[(0, "1")]
    assert q.reason is None and np.linalg.norm(q.pred_3d_vec_world - CENTRE) < 1e-3
    # A crop in a frame without a pose is no help.
    write_inputs(tmp, poses, [], crop_box=(2, box_of(poses[f1])))
    assert run_predict(tmp, "sfm")[(0, "1")].reason == "no detection peak"


def egoloc_backproject(box, f, cx, cy, z):
    """EgoLoc's vq3d/mv_aggregate.py predict_for_frame_j, written out: tx, ty the box centre,
    x = z·(tx − cx − 0.5)/f, y = z·(ty − cy − 0.5)/f (camera frame)."""
    x1, y1, x2, y2 = box
    tx, ty = (x1 + x2) / 2.0, (y1 + y2) / 2.0
    return np.array([z * (tx - cx - 0.5) / f, z * (ty - cy - 0.5) / f, z])


def test_pinhole_is_egolocs_formula():
    rng = np.random.default_rng(7)
    for _ in range(20):
        f, cx, cy = rng.uniform(200, 1500), rng.uniform(300, 960), rng.uniform(200, 540)
        box = tuple(rng.uniform(0, 1900, 2)) + tuple(rng.uniform(0, 1900, 2))
        box = (min(box[0], box[2]), min(box[1], box[3]), max(box[0], box[2]), max(box[1], box[3]))
        z = rng.uniform(0.3, 8)
        pc = camera.Pinhole(f, cx, cy)
        centre = np.mean(np.reshape(box, (2, 2)), axis=0)
        xy = camera.undistort_normalized(pc, centre[None])[0]
        np.testing.assert_allclose(np.append(xy * z, z), egoloc_backproject(box, f, cx, cy, z),
                                   rtol=1e-12, atol=1e-12)
        np.testing.assert_allclose(camera.project(pc, [np.append(xy * z, z)])[0], centre, atol=1e-9)


def test_undistort_false_reproduces_the_pinhole_lift(synth):
    """predict.undistort: false back-projects as EgoLoc did (k1, k2 ignored, principal point
    shifted by half a pixel): the same SfM depth, EgoLoc's ray; measurably off on this fisheye."""
    tmp, poses = synth
    f = PEAK_FRAMES[1]
    write_inputs(tmp, poses, [(f, box_of(poses[f]), 0.9)])
    good = run_predict(tmp, "sfm")[(0, "1")].peaks[0]
    pin = run_predict(tmp, "sfm", undistort=False)[(0, "1")].peaks[0]
    assert pin.depth == pytest.approx(good.depth)
    P = poses[f]
    u, v = np.mean(np.reshape(box_of(P), (2, 2)), axis=0)
    p_cam = egoloc_backproject(box_of(P), CAM.f, CAM.cx, CAM.cy, pin.depth)
    np.testing.assert_allclose(pin.point, P[:, :3].T @ (p_cam - P[:, 3]), atol=1e-4)  # file rounding
    assert np.linalg.norm(good.point - CENTRE) < 0.05 < np.linalg.norm(pin.point - CENTRE)
    pc = camera.pinhole(CAM)
    np.testing.assert_allclose(camera.project(pc, [p_cam]), [[u, v]], atol=1e-9)


def test_sfm_surface_offset_reaches_the_centre_of_a_box(tmp_path):
    """SfM sees only an object's front faces; the annotation is its centre. A 30 cm cube seen
    obliquely, a tight box: the surface depth falls short of the centre along the ray, and the
    default offset (half the object's half-size seen in the box) brings it much closer."""
    poses, _, _ = scene()
    f = PEAK_FRAMES[1]
    P = poses[f]
    C = -P[:, :3].T @ P[:, 3]
    a = 0.3
    g = np.linspace(-a / 2, a / 2, 9)
    uu, vv = (m.ravel() for m in np.meshgrid(g, g))
    faces = []
    for axis in range(3):
        for sign in (-1, 1):
            n = np.zeros(3)
            n[axis] = sign
            if n @ (C - (CENTRE + n * a / 2)) <= 0:
                continue  # faces turned away are not seen
            pts = np.zeros((len(uu), 3))
            pts[:, axis] = sign * a / 2
            pts[:, [k for k in range(3) if k != axis]] = np.column_stack([uu, vv])
            faces.append(CENTRE + pts)
    surface = np.vstack(faces)
    corners = CENTRE + a / 2 * np.array(list(itertools.product((-1, 1), repeat=3)))
    px = colmap_cam(CAM).img_from_cam(to_camera(P, corners))
    box = (*px.min(axis=0), *px.max(axis=0))
    write_sfm(tmp_path / "sfm", poses, surface, np.zeros((0, 3)))
    write_inputs(tmp_path, poses, [(f, box, 0.9)])
    ray = CENTRE - C
    ray /= np.linalg.norm(ray)
    surface_pt = run_predict(tmp_path, "sfm")[(0, "1")].pred_3d_vec_world
    centre_pt = run_predict(tmp_path, "sfm", sfm_surface_offset=0.5)[(0, "1")].pred_3d_vec_world
    short = (CENTRE - surface_pt) @ ray
    assert short > 0.05  # the surface is in front of the centre ...
    err = np.linalg.norm(centre_pt - CENTRE)
    assert err < 0.04 and err < 0.5 * np.linalg.norm(surface_pt - CENTRE), (err, short)


def test_triangulation_needs_parallax():
    P = look_at(np.zeros(3), CENTRE)
    P2 = look_at(np.array([0.001, 0, 0]), CENTRE)  # 1 mm baseline at 2.3 m
    peaks = [PosedPeak(i, box_of(p), 1.0, rigid(p)) for i, p in enumerate([P, P2])]
    X, mask, reason = Triangulation(stage_conf("predict")).point(CAM, peaks)
    assert X is None and "parallax" in reason


def test_nulls_without_pose(synth):
    tmp, poses = synth
    f0 = PEAK_FRAMES[0]
    write_inputs(tmp, {QUERY_FRAME: poses[QUERY_FRAME]}, [(f0, box_of(poses[f0]), 0.9)])
    q = run_predict(tmp, "triangulate")[(0, "1")]
    assert q.pred_3d_vec_world is None and q.reason == "no peak frame has a pose"
    assert q.query_frame_pose is not None
    write_inputs(tmp, poses, [(f, box_of(poses[f]), 0.9) for f in PEAK_FRAMES], pose_query=False)
    q = run_predict(tmp, "triangulate")[(0, "1")]
    assert q.pred_3d_vec_world is not None and q.pred_3d_vec_query_frame is None
    assert q.query_frame_pose is None and q.query_pose_reason == "query frame has no pose"


def test_mono_depth_from_local_torchscript(synth):
    torch = pytest.importorskip("torch")
    tmp, poses = synth
    f = PEAK_FRAMES[1]
    true_depth = float(to_camera(poses[f], CENTRE)[0, 2])

    class Const(torch.nn.Module):  # a "network": constant metric depth, right output shape
        def __init__(self, d: float):
            super().__init__()
            self.conv = torch.nn.Conv2d(3, 1, 1)
            torch.nn.init.zeros_(self.conv.weight)
            torch.nn.init.constant_(self.conv.bias, d)

        def forward(self, x):
            return self.conv(x)[:, 0]

    ckpt = tmp / "depth.pt"
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)
        torch.jit.script(Const(true_depth)).save(str(ckpt))
    (tmp / "frames").mkdir(exist_ok=True)
    cv2.imwrite(str(tmp / "frames" / f"color_{f:07d}.jpg"), np.zeros((H // 4, W // 4, 3), np.uint8))
    write_inputs(tmp, poses, [(f, box_of(poses[f]), 0.9)])
    q = run_predict(tmp, "mono", mono_checkpoint=str(ckpt))[(0, "1")]
    assert np.linalg.norm(q.pred_3d_vec_world - CENTRE) < 1e-4
    # The same as a torch.export archive holding inverse depth (MiDaS-style output).
    ckpt = tmp / "depth.pt2"
    torch.export.save(torch.export.export(Const(1.0 / true_depth), (torch.zeros(1, 3, 384, 384),)),
                      str(ckpt))
    q = run_predict(tmp, "mono", mono_checkpoint=str(ckpt), mono_output="inverse_depth")[(0, "1")]
    assert np.linalg.norm(q.pred_3d_vec_world - CENTRE) < 1e-3
    with pytest.raises(InputError, match="does not exist"):
        run_predict(tmp, "mono", mono_checkpoint=str(tmp / "missing.pt"))
    (tmp / "junk.pt").write_bytes(b"not a model")
    with pytest.raises(InputError, match="junk.pt.*not a loadable"):
        run_predict(tmp, "mono", mono_checkpoint=str(tmp / "junk.pt"))


def test_bad_detections_name_the_file(synth, tmp_path):
    tmp, poses = synth
    write_inputs(tmp, poses, [])
    with pytest.raises(InputError, match="expected 'other-clip'"):
        main(tmp / "det.json", tmp / "poses.json", tmp / "sfm", tmp / "queries.json",
             tmp / "intr.json", tmp_path / "p.json", "other-clip", SCAN, {})
    (tmp_path / "det.json").write_text('{"format": "vq3d.clip_detections", "version": 1}')
    with pytest.raises(InputError, match="det.json.*clip_uid"):
        main(tmp_path / "det.json", tmp / "poses.json", tmp / "sfm", tmp / "queries.json",
             tmp / "intr.json", tmp_path / "p.json", CLIP, SCAN, {})


# ----------------------------------------------------------------------------------- aggregation

POINTS = np.array([[0.0, 0, 0], [1, 0, 0], [0.2, 0.1, 0], [10, 10, 10]])
SCORES = np.array([0.5, 0.2, 0.9, 0.1])
FRAMES = np.array([4, 30, 12, 7])


def test_aggregation_modes_by_hand():
    assert agg.aggregate(POINTS, SCORES, FRAMES, "last").tolist() == [1, 0, 0]
    np.testing.assert_allclose(agg.aggregate(POINTS, SCORES, FRAMES, "mf_mean"), [2.8, 2.525, 2.5])
    np.testing.assert_allclose(agg.aggregate(POINTS, SCORES, FRAMES, "mf_median"), [0.6, 0.05, 0])
    np.testing.assert_allclose(agg.aggregate(POINTS, SCORES, FRAMES, "mf_weighted2d"),
                               [(0.2 + 0.18 + 1.0) / 1.7, (0.09 + 1.0) / 1.7, 1.0 / 1.7])
    # EgoLoc's NMS without fusion (its default) returns the top-scoring point.
    assert agg.aggregate(POINTS, SCORES, FRAMES, "mf_nms", defaults("predict")).tolist() == [0.2, 0.1, 0]
    # With fusion 0.3: points within 0.5 m of the top scoring > 0.3 × 0.9 join it ([0,0,0] only).
    np.testing.assert_allclose(
        agg.aggregate(POINTS, SCORES, FRAMES, "mf_nms", {**defaults("predict"), "nms_fusion_threshold": 0.3}),
        [0.2 * 0.9 / 1.4, 0.1 * 0.9 / 1.4, 0])
    gm = agg.aggregate(POINTS, SCORES, FRAMES, "mf_geomedian")
    assert np.linalg.norm(gm - [0.2, 0.1, 0]) < 0.2  # the far outlier barely pulls it
    with pytest.raises(ValueError, match="unknown aggregation"):
        agg.aggregate(POINTS, SCORES, FRAMES, "max")


def test_geometric_median_known_answers():
    # Three unit-weight points of an equilateral triangle: the median is the centroid.
    tri = np.array([[0, 0, 0], [1, 0, 0], [0.5, np.sqrt(3) / 2, 0]])
    np.testing.assert_allclose(agg.geometric_median(tri), [0.5, np.sqrt(3) / 6, 0], atol=1e-6)
    # A point heavier than all others together is the median.
    np.testing.assert_allclose(agg.geometric_median(tri, np.array([5.0, 1, 1])), tri[0], atol=1e-9)


def test_weighted2d_zero_scores_falls_back_to_mean():
    np.testing.assert_allclose(agg.aggregate(POINTS[:2], [0, 0], [1, 2], "mf_weighted2d"), [0.5, 0, 0])


# ------------------------------------------------------------------ conventions on EgoLoc's files

def _query_sets(path):
    data = json.loads(Path(path).read_text())
    for v in data["videos"]:
        for c in v["clips"]:
            for ai, a in enumerate(c["annotations"]):
                for q, qs in a.get("query_sets", {}).items():
                    yield v, c, ai, q, qs


def test_query_frame_transform_matches_egoloc_val(anchors):
    """EgoLoc val: query_frame_pose is cam_from_world in the Matterport frame and the annotation
    frame is Matterport rotated: our to_camera on mp_pred_3d_vec_world gives its query vector."""
    path = anchors / "egoloc/data/vq3d_results/egoloc_val_mf_weighted2d_val.json"
    n = 0
    for _, _, _, _, qs in _query_sets(path):
        if qs.get("query_frame_pose") is None or qs.get("pred_3d_vec_world") is None:
            continue
        pose = np.array(qs["query_frame_pose"])
        mp = np.array(qs["mp_pred_3d_vec_world"])
        np.testing.assert_allclose(annotation_to_matterport(qs["pred_3d_vec_world"]), mp, atol=1e-9)
        np.testing.assert_allclose(to_camera(pose[:3], mp)[0], qs["mp_pred_3d_vec_query_frame"],
                                   atol=1e-9)
        n += 1
    assert n == 135


def test_submission_frame_is_matterport(anchors):
    """EgoLoc's real test submission: pred_3d_vec_query_frame = pose · pred_3d_vec_world, and the
    query cameras of a scan sit where the val file's Matterport-frame cameras of the same scan sit
    (a 90° turn would move them): the submission is in the Matterport frame, like our files."""
    data = anchors / "egoloc/data/vq3d_results"
    centres = {"val": {}, "test": {}}
    for split, name in (("val", "egoloc_val_mf_weighted2d_val.json"),
                        ("test", "egoloc_test_mf_weighted2d_test.json")):
        for v, _, _, _, qs in _query_sets(data / name):
            if qs.get("query_frame_pose") is None:
                continue
            pose = np.array(qs["query_frame_pose"])[:3]
            centres[split].setdefault(v["scan_uid"], []).append(-pose[:, :3].T @ pose[:, 3])
            if split == "test" and qs.get("pred_3d_vec_world") is not None:
                np.testing.assert_allclose(to_camera(pose, qs["pred_3d_vec_world"])[0],
                                           qs["pred_3d_vec_query_frame"], atol=1e-9)
    shared = set(centres["val"]) & set(centres["test"])
    assert len(shared) >= 3
    for scan in shared:
        val = np.array(centres["val"][scan])[:, :2]
        test = np.array(centres["test"][scan])[:, :2]

        def spread(xy):  # median distance from a test camera to the nearest val camera (metres)
            return np.median(np.min(np.linalg.norm(xy[:, None] - val[None], axis=2), axis=1))
        # Measured: 0.10–0.41 m as is; 0.22–8.1 m turned by ±90° about z.
        for turned in (np.c_[-test[:, 1], test[:, 0]], np.c_[test[:, 1], -test[:, 0]]):
            assert spread(test) < spread(turned)


def _fake_predictions(tmp: Path, template: Path, mapping_inverse=None, every=3):
    """Per-clip files for every query of `template`: a prediction on 2 of 3, nulls on the rest."""
    rng = np.random.default_rng(0)
    per_clip, expected = {}, {}
    for v, c, ai, q, _ in _query_sets(template):
        key2d = mapping_inverse.get((c["clip_uid"], ai, q)) if mapping_inverse else (c["clip_uid"], ai, q)
        if key2d is None:
            continue
        i = len(expected)
        qp = QueryPrediction(key2d[1], key2d[2], 10, reason="no detection peak")
        if i % every:
            pose = np.vstack([look_at(rng.normal(size=3), rng.normal(size=3)), [0, 0, 0, 1]])
            qp = QueryPrediction(key2d[1], key2d[2], 10, rng.normal(size=3), None, pose)
            qp.pred_3d_vec_query_frame = to_camera(pose[:3], qp.pred_3d_vec_world)[0]
        per_clip.setdefault(c["clip_uid"], ClipPredictions(c["clip_uid"], v["scan_uid"], "sfm",
                                                           "mf_median")).queries.append(qp)
        expected[(c["clip_uid"], ai, q)] = qp
    files = []
    for clip, cp in per_clip.items():
        files.append(str(tmp / f"{clip}.json"))
        write_clip_predictions(files[-1], cp)
    return files, expected


def test_submission_fills_test_template_like_egoloc(anchors, tmp_path):
    template = anchors / "egoloc/data/metadata/vq3d_test_unannotated_template.json"
    real = json.loads((anchors / "egoloc/data/vq3d_results/egoloc_test_mf_weighted2d_test.json").read_text())
    files, expected = _fake_predictions(tmp_path, template)
    out = tmp_path / "submission.json"
    sub.main(files, str(template), str(out))
    ours = json.loads(out.read_text())

    def shape(doc):
        return ({k for k in doc if k != "videos"},
                [(v["video_uid"], v["scan_uid"], [(c["clip_uid"], [sorted(
                    (q, tuple(sorted(qs))) for q, qs in a.get("query_sets", {}).items()) if a else None
                    for a in c["annotations"]]) for c in v["clips"]]) for v in doc["videos"]])
    assert shape(ours) == shape(real)
    got = {(c["clip_uid"], ai, q): qs for _, c, ai, q, qs in _query_sets(out)}
    assert len(got) == 264
    for key, qp in expected.items():
        if qp.pred_3d_vec_world is None:
            assert got[key]["pred_3d_vec_world"] is None and got[key]["query_frame_pose"] is None
        else:
            np.testing.assert_allclose(got[key]["pred_3d_vec_world"], qp.pred_3d_vec_world)
            np.testing.assert_allclose(got[key]["query_frame_pose"], qp.query_frame_pose)
            np.testing.assert_allclose(got[key]["pred_3d_vec_query_frame"],
                                       qp.pred_3d_vec_query_frame)


def test_submission_val_uses_the_vq2d_to_vq3d_mapping(anchors, tmp_path):
    meta = anchors / "egoloc/data/metadata"
    raw = json.loads((meta / "mapping_vq2d_to_vq3d_queries_annotations_val.json").read_text())
    # Keyed by the VQ3D query, valued by the VQ2D one (as EgoLoc's run.py reads it).
    inverse = {(c, int(ai), q): (c, t["ai"], t["qset_id"])
               for clips in raw.values() for c, anns in clips.items()
               for ai, sets in anns.items() for q, t in sets.items() if t}
    files, expected = _fake_predictions(tmp_path, meta / "vq3d_val.json", inverse, every=2)
    assert any(inverse[k] != k for k in expected)  # the mapping really permutes some queries
    out = tmp_path / "submission.json"
    sub.main(files, str(meta / "vq3d_val.json"),
             str(out), mapping=str(meta / "mapping_vq2d_to_vq3d_queries_annotations_val.json"))
    got = {(c["clip_uid"], ai, q): qs for _, c, ai, q, qs in _query_sets(out)}
    for key, qp in expected.items():
        assert "3d_annotation_1" in got[key]  # val annotations kept for the evaluation
        if qp.pred_3d_vec_world is not None:
            np.testing.assert_allclose(got[key]["pred_3d_vec_world"], qp.pred_3d_vec_world)
    # Without the mapping, VQ2D keys land on the wrong or on no VQ3D query: refused.
    with pytest.raises(InputError, match="not in this annotation file"):
        sub.main(files, str(meta / "vq3d_val.json"), str(tmp_path / "s2.json"))


def test_clip_predictions_reader_names_bad_field(tmp_path):
    bad = {"format": "vq3d.clip_predictions", "version": 1, "clip_uid": "c", "scan_uid": "s",
           "depth": "sfm", "aggregation": "last",
           "queries": [{"annotation_index": 0, "query_set": "1", "query_frame": 3,
                        "pred_3d_vec_world": [1, 2], "peaks": []}]}
    (tmp_path / "p.json").write_text(json.dumps(bad))
    with pytest.raises(InputError, match=r"p.json.*queries\[0\].pred_3d_vec_world"):
        read_clip_predictions(tmp_path / "p.json")
