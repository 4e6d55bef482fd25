"""The scan interface and the headless mesh renderer: conventions against known geometry, reference
views rendered from a Matterport-style mesh, and PnP on them recovering known camera poses."""

from __future__ import annotations

import json
import sys

import cv2
import numpy as np
import pycolmap
import pytest

from conftest import REPO
from vq3d.config import validate_config
from vq3d.errors import InputError
from vq3d import geometry
from vq3d.scan import MatterportScan, SynthScan, open_scan

pyrender = pytest.importorskip("pyrender", reason="mesh renderer not installed (pip install -e '.[render]')")


def _renderer_or_skip(geoms, *args, **kw):
    from vq3d.scan.render import MeshRenderer
    try:
        return MeshRenderer(geoms, *args, **kw)
    except RuntimeError as exc:  # no EGL on this machine: say so, do not pass silently
        pytest.skip(str(exc))


def _look(centre, target):
    from vq3d.scan.refs import look
    return look(np.asarray(target, float) - centre, np.asarray(centre, float))


def _wall_obj(tmp_path, marker_rc):
    """A 4×3 m wall in the plane x = 3 (facing -x), texture 400×300 px white with a 20 px black
    square whose top-left texel is at row, col `marker_rc`; returns (obj path, marker centre 3D)."""
    tex = np.full((300, 400, 3), 255, np.uint8)
    r, c = marker_rc
    tex[r:r + 20, c:c + 20] = 0
    cv2.imwrite(str(tmp_path / "wall.png"), tex)
    (tmp_path / "wall.mtl").write_text("newmtl w\nKa 1 1 1\nKd 1 1 1\nmap_Kd wall.png\n")
    # corners: texel (s, t) at y = -2 + s/100, z = 3 - t/100 (s right along +y, t down)
    v = [(3, -2, 3), (3, 2, 3), (3, 2, 0), (3, -2, 0)]
    vt = [(0, 1), (1, 1), (1, 0), (0, 0)]
    lines = ["mtllib wall.mtl", *(f"v {x} {y} {z}" for x, y, z in v), *(f"vt {a} {b}" for a, b in vt),
             "usemtl w", "f 1/1 2/2 3/3", "f 1/1 3/3 4/4"]
    (tmp_path / "wall.obj").write_text("\n".join(lines) + "\n")
    centre_st = np.array([c + 10, r + 10], float)
    return tmp_path / "wall.obj", np.array([3.0, -2 + centre_st[0] / 100, 3 - centre_st[1] / 100])


@pytest.mark.parametrize("pose_seed", [0, 1, 2])
def test_render_depth_and_projection_match_known_geometry(tmp_path, pose_seed):
    """Metric z-depth equals the analytic ray/plane depth, and a marker lands where the COLMAP
    camera projects it (pixel centres at +0.5): world->camera and pixel conventions both hold."""
    from vq3d.scan.render import load_mesh
    obj, marker = _wall_obj(tmp_path, (140, 190))
    rng = np.random.default_rng(pose_seed)
    w, h, f = 320, 240, 260.0
    cx, cy = w / 2 + rng.uniform(-12, 12), h / 2 + rng.uniform(-9, 9)  # off-centre principal point
    rend = _renderer_or_skip(load_mesh(obj), w, h, f, f * 1.02, cx, cy)
    centre = np.array([rng.uniform(0.2, 0.8), rng.uniform(-0.4, 0.4), rng.uniform(1.2, 1.8)])
    cam_from_world = _look(centre, marker + rng.uniform(-0.3, 0.3, 3))
    bgr, depth = rend.render(cam_from_world)
    assert bgr.shape == (h, w, 3) and depth.shape == (h, w)

    cam = pycolmap.Camera(model="PINHOLE", width=w, height=h, params=[f, f * 1.02, cx, cy])
    # depth: the ray through each pixel centre meets x = 3 at z-depth (3 - Cx) / (R^T ray)_x
    R, t = cam_from_world[:, :3], cam_from_world[:, 3]
    uu, vv = np.meshgrid(np.arange(w) + 0.5, np.arange(h) + 0.5)
    rays = np.hstack([cam.cam_from_img(np.stack([uu.ravel(), vv.ravel()], 1)), np.ones((w * h, 1))])
    world_dir = rays @ R  # R^T ray for each row
    z_true = ((3.0 - centre[0]) / world_dir[:, 0]).reshape(h, w)
    hit = (centre[1] + z_true * world_dir[:, 1].reshape(h, w))
    hit_z = (centre[2] + z_true * world_dir[:, 2].reshape(h, w))
    inside = (np.abs(hit) < 1.98) & (hit_z > 0.02) & (hit_z < 2.98)
    assert inside.mean() > 0.3
    assert np.abs(depth[inside] - z_true[inside]).max() < 2e-3 * z_true[inside].max()
    assert np.all(depth[~((np.abs(hit) < 2.02) & (hit_z > -0.02) & (hit_z < 3.02))] == 0)

    # reprojection: the black square's centroid vs COLMAP's projection of its centre
    p_cam = R @ marker + t
    u, v = cam.img_from_cam(p_cam[None])[0]
    # darkness-weighted centroid: sub-pixel through the texture filtering at the square's edges
    # around the square only (the background and the wall's border pixels are dark too)
    _, lab, stats, _ = cv2.connectedComponentsWithStats(((bgr.mean(2) < 128) & (depth > 0)).astype(np.uint8))
    x0, y0, bw, bh, _ = stats[1 + np.argmax(stats[1:, 4])]
    win = np.zeros(depth.shape, bool)
    win[max(0, y0 - 3):y0 + bh + 3, max(0, x0 - 3):x0 + bw + 3] = True
    wgt = np.where(win & (depth > 0), 1 - bgr.mean(2) / 255.0, 0)
    assert wgt.sum() > 20
    rows, cols = np.indices(wgt.shape)
    u_img, v_img = ((cols + 0.5) * wgt).sum() / wgt.sum(), ((rows + 0.5) * wgt).sum() / wgt.sum()
    # a half-pixel convention error would show as 0.5 px in both
    assert abs(u_img - u) < 0.2 and abs(v_img - v) < 0.2, (u_img - u, v_img - v)


def test_downscaled_render_keeps_the_field_of_view(tmp_path):
    from vq3d.scan.render import load_mesh
    obj, marker = _wall_obj(tmp_path, (100, 100))
    rend = _renderer_or_skip(load_mesh(obj), 320, 240, 250, 250, 160, 120)
    pose = _look(np.array([0.5, 0.0, 1.5]), marker)
    _, full = rend.render(pose)
    _, small = rend.render(pose, downscale=8)
    assert small.shape == (30, 40)
    np.testing.assert_allclose(small[15, 20], full[120:122, 160:162].mean(), rtol=0.02)
    _, again = rend.render(pose)  # back to full size
    np.testing.assert_array_equal(again, full)


@pytest.fixture(scope="module")
def matterpak_scan(tmp_path_factory):
    """The mini pose clip's room (benchmarks/pose_minisynth.py, seed 1) as a MatterPak scan folder
    (vq3d.synth.matterpak), its clip frames with ground-truth poses, and rendered views."""
    sys.path.insert(0, str(REPO / "benchmarks"))
    from pose_minisynth import make_clip
    from vq3d.scan import refs
    from vq3d.synth.matterpak import write_matterpak
    from vq3d.synth.scene import build_scene
    root = tmp_path_factory.mktemp("matterpak")
    info = make_clip(root / "clip", seed=1, frames=10, width=400, geo_renders=3, refs=3)
    scene = build_scene(np.random.default_rng(1), 3)  # the same room make_clip rendered
    write_matterpak(scene, root / "scans" / "scan_a", "scan_a")
    conf = validate_config({"scan_refs": {"spacing_m": 1.5, "yaws": 6, "max_views": 40, "geo": 12}})["scan_refs"]
    try:
        refs.main(out_dir=root / "rendered" / "scan_a", scan_dir=root / "scans" / "scan_a", conf=conf)
    except RuntimeError as exc:
        pytest.skip(str(exc))
    return root, info, scene


def test_scan_refs_views_agree_with_the_scene(matterpak_scan):
    """Rendered reference depth matches the synthetic scene's own analytic renderer at the same
    poses; geo.txt centres are the render poses' centres; open_scan serves both to the pose stages."""
    from vq3d.synth import camera as C
    from vq3d.synth.render import Renderer
    root, _, scene = matterpak_scan
    scan = open_scan(root / "scans" / "scan_a", root / "rendered" / "scan_a")
    assert isinstance(scan, MatterportScan) and scan.mesh().suffix == ".obj"
    views = scan.reference_views()
    assert 12 <= len(views) <= 40
    cam = views[0].camera
    fx, fy, cx, cy = cam.params
    analytic = Renderer(scene, C.Pinhole(cam.width, cam.height, fx, fy, cx, cy))
    errs = []
    for view in views[:: max(1, len(views) // 6)]:
        _, invz, _ = analytic.render(view.cam_from_world.matrix(), want_ids=False)
        z = np.where(invz > 0, 1 / np.maximum(invz, 1e-9), 0)
        both = (z > 0) & (view.depth > 0)
        assert both.mean() > 0.85
        errs.append(np.median(np.abs(view.depth[both] - z[both])))
    assert np.median(errs) < 0.01
    geo_dir, centres = scan.geo_renders()
    assert len(centres) == 12 and (geo_dir / "geo_0.jpg").is_file()
    poses = json.loads((root / "rendered" / "scan_a" / "refs" / "poses.json").read_text())["images"]
    all_centres = np.array([geometry.camera_centre(geometry.rigid(np.array(p["cam_from_world"]))) for p in poses.values()])
    for c in centres.values():
        assert np.min(np.linalg.norm(all_centres - c, axis=1)) < 1e-9
    assert scan.render_camera().model.name == "PINHOLE"


def test_pnp_on_rendered_references_recovers_known_poses(matterpak_scan, tmp_path):
    from vq3d.pose import pnp
    root, info, _ = matterpak_scan
    clip = root / "clip"
    conf = validate_config({})["pose"]
    pnp.main(frames_dir=clip / "frames", intrinsics=clip / "intrinsics.json", out=tmp_path / "pnp.json",
             scan_dir=root / "scans" / "scan_a", scan_uid=info["scan_uid"], conf=conf,
             scan_refs=root / "rendered" / "scan_a")
    gt = np.load(clip / "gt_cam_from_world.npy")
    posed = json.loads((tmp_path / "pnp.json").read_text())["posed"]
    assert len(posed) >= 8
    rot, cen = [], []
    for p in posed:
        est, truth = geometry.rigid(np.array(p["cam_from_world"])), geometry.rigid(gt[p["frame"]])
        rot.append(geometry.rotation_error_deg(est, truth))
        cen.append(np.linalg.norm(geometry.camera_centre(est) - geometry.camera_centre(truth)))
    assert np.median(rot) < 0.5 and np.median(cen) < 0.03


def test_open_scan_layouts_and_what_is_missing(tmp_path, matterpak_scan):
    root, _, _ = matterpak_scan
    with pytest.raises(InputError, match="does not exist"):
        open_scan(tmp_path / "nowhere")
    (tmp_path / "odd").mkdir()
    (tmp_path / "odd" / "cloud.xyz").write_text("0 0 0 1 2 3\n")
    with pytest.raises(InputError, match=r"textured mesh \*\.obj.*found cloud\.xyz"):
        open_scan(tmp_path / "odd")
    # a Matterport scan whose views were not rendered yet names the rule that renders them
    scan = open_scan(root / "scans" / "scan_a")
    with pytest.raises(InputError, match="scan_refs"):
        scan.reference_views()
    # a MatterPak missing a texture names the texture
    import shutil
    broken = tmp_path / "broken"
    shutil.copytree(root / "scans" / "scan_a", broken)
    victim = sorted(broken.glob("*.jpg"))[0]
    victim.unlink()
    with pytest.raises(InputError, match=victim.name):
        open_scan(broken)
    # the synthetic scans keep their own layout
    sys.path.insert(0, str(REPO / "benchmarks"))
    assert isinstance(open_scan(root / "clip" / "scan"), SynthScan)
