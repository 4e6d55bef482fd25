"""The synthetic benchmark: determinism, geometry against pycolmap, annotation shapes, atomicity."""

import json

import cv2
import numpy as np
import pycolmap
import pytest

from vq3d.stages import stage_conf
from vq3d.synth import generate as gen
from vq3d.synth import layout
from vq3d.synth.camera import Fisheye, cam_from_world, look_rotation, yaw_pitch_forward
from vq3d.synth.render import FisheyeRenderer
from vq3d.synth.scene import Scene, build_scene

TINY = {"seed": 3, "scenes": 1, "clips_per_scene": 1, "queries_per_clip": 2, "width": 320, "height": 240,
        "source_fps": 10, "clip_seconds": 10}


@pytest.fixture(scope="module")
def tiny(tmp_path_factory):
    out = tmp_path_factory.mktemp("synth") / "ds"
    gen.generate(out, TINY, workers=1)
    return out


def _load(p):
    return json.loads(p.read_text())


def test_layout_names_exist(tiny):
    for key, name in layout.FILES.items():
        assert (tiny / name).exists(), key
    for c in layout.clips(TINY):
        assert (tiny / "videos" / f"{c.video_uid}.mp4").stat().st_size > 1000
        scan = tiny / "scans" / c.scan_uid
        assert (scan / "geo_register" / "geo.txt").exists() and (scan / "refs" / "poses.json").exists()
        assert (tiny / "gt" / "poses" / f"{c.clip_uid}.json").exists()


def test_deterministic(tiny, tmp_path):
    again = tmp_path / "again"
    gen.generate(again, TINY, workers=1)
    for name in (layout.FILES["annotations_val"], layout.FILES["queries_val"], layout.FILES["intrinsics"],
                 "gt/clips.json", "gt/boxes/synthclip-3-00-00.json", "gt/poses/synthclip-3-00-00.json"):
        assert (again / name).read_bytes() == (tiny / name).read_bytes(), name
    assert (again / "videos/synthvid-3-00.mp4").read_bytes() == (tiny / "videos/synthvid-3-00.mp4").read_bytes()
    ref = "scans/synthscan-3-00/refs/ref_005_depth.npy"
    assert np.array_equal(np.load(again / ref), np.load(tiny / ref))


def test_different_seed_differs(tmp_path):
    a = build_scene(np.random.default_rng([1, 0, 1]), 2)
    b = build_scene(np.random.default_rng([2, 0, 1]), 2)
    assert not np.allclose(a.size, b.size)


def test_projected_centre_inside_gt_box(tiny):
    """World→camera poses + intrinsics file (through pycolmap) + rendered boxes agree."""
    intr = _load(tiny / layout.FILES["intrinsics"])
    objects = _load(tiny / "gt/objects.json")
    checked = 0
    for c in layout.clips(TINY):
        p = intr[c.scan_uid][f"('{TINY['width']}', '{TINY['height']}')"]
        cam = pycolmap.Camera(model="RADIAL_FISHEYE", width=TINY["width"], height=TINY["height"],
                              params=[p["f"], p["cx"], p["cy"], p["k1"], p["k2"]])
        poses = _load(tiny / "gt/poses" / f"{c.clip_uid}.json")[c.clip_uid]["camera_poses"]
        frames = _load(tiny / "gt/boxes" / f"{c.clip_uid}.json")["frames"]
        assert len(poses) == len(frames) == int(TINY["clip_seconds"] * 5) + 1
        for i, fb in enumerate(frames):
            for oid, b in fb.items():
                if b["visible_fraction"] < 0.9:
                    continue
                centre = np.array(objects[c.scan_uid][int(oid)]["centre_scan"])
                P = np.array(poses[i])
                xc = P[:, :3] @ centre + P[:, 3]
                assert xc[2] > 0
                u, v = cam.img_from_cam(xc[None])[0]
                x1, y1, x2, y2 = b["bbox"]
                assert x1 - 1 <= u <= x2 + 1 and y1 - 1 <= v <= y2 + 1, (c.clip_uid, i, oid, (u, v), b)
                checked += 1
    assert checked >= 5


def test_annotation_frames_and_shapes(tiny):
    q2 = _load(tiny / layout.FILES["queries_val"])
    q3 = _load(tiny / layout.FILES["annotations_val"])
    gt = _load(tiny / "gt/queries.json")
    objects = _load(tiny / "gt/objects.json")
    assert gt, "no queries generated"
    n_frames = int(TINY["clip_seconds"] * 5) + 1  # Ego4D's clips include their end frame
    for video in q2["videos"]:
        for clip in video["clips"]:
            assert clip["clip_fps"] == 5.0
            for ann in clip["annotations"]:
                for qs in ann["query_sets"].values():
                    track = qs["response_track"]
                    frames = [b["frame_number"] for b in track]
                    assert frames == list(range(frames[0], frames[-1] + 1))
                    assert frames[-1] < qs["query_frame"] < n_frames
                    assert qs["visual_crop"]["width"] > 0 and qs["visual_crop"]["original_width"] == TINY["width"]
                    step = TINY["source_fps"] // 5
                    assert qs["query_video_frame"] == clip["video_start_frame"] + qs["query_frame"] * step
    # 3D answers: annotator 1 is the true centre in the annotation frame: (x, y, z)_mp = (y, -x, z)_ann
    for video in q3["videos"]:
        for clip in video["clips"]:
            for qid, qs in clip["annotations"][0]["query_sets"].items():
                rec = next(g for g in gt if g["clip_uid"] == clip["clip_uid"] and g["query_set"] == qid)
                pa = qs["3d_annotation_1"]["position"]
                mp = np.array(objects[video["scan_uid"]][rec["object_index"]]["centre_scan"])
                assert np.allclose([pa["y"], -pa["x"], pa["z"]], mp)
                pb = qs["3d_annotation_2"]["position"]
                assert 0 < np.linalg.norm(np.array([pa[k] - pb[k] for k in "xyz"])) < 0.15


def test_test_split_has_no_answers(tiny):
    q3 = _load(tiny / layout.FILES["annotations_test"])
    q2 = _load(tiny / layout.FILES["queries_test"])
    assert all(qs == {} for v in q3["videos"] for c in v["clips"] for a in c["annotations"] for qs in a["query_sets"].values())
    assert all("response_track" not in qs for v in q2["videos"] for c in v["clips"] for a in c["annotations"]
               for qs in a["query_sets"].values())


def test_readers_accept_files(tiny):
    formats = pytest.importorskip("vq3d.formats.vq3d_annotations")
    from vq3d.formats.intrinsics import read_intrinsics
    from vq3d.formats.mapping import read_mapping
    from vq3d.formats.poses import read_poses
    from vq3d.formats.queries import read_queries

    vf = formats.read_vq3d(tiny / layout.FILES["annotations_val"])
    assert len(vf.by_key()) == len(_load(tiny / "gt/queries.json"))
    formats.read_vq3d(tiny / layout.FILES["annotations_test"])
    read_queries(tiny / layout.FILES["queries_val"])
    read_queries(tiny / layout.FILES["queries_test"])
    read_mapping(tiny / layout.FILES["mapping_val"])
    intr = read_intrinsics(tiny / layout.FILES["intrinsics"])
    assert (TINY["width"], TINY["height"]) in intr["synthscan-3-00"]
    clip = layout.clips(TINY)[0].clip_uid
    assert len(read_poses(tiny / "gt/poses" / f"{clip}.json")[clip]) == int(TINY["clip_seconds"] * 5) + 1


def test_clip_timing_matches_source_frames(tiny):
    clips = _load(tiny / "gt/clips.json")
    q2 = _load(tiny / layout.FILES["queries_val"])
    for video in q2["videos"]:
        for clip in video["clips"]:
            g = clips[clip["clip_uid"]]
            assert g["source_frames"][0] == clip["video_start_frame"] == g["video_start_sec"] * TINY["source_fps"]
            assert np.all(np.diff(g["source_frames"]) == TINY["source_fps"] // 5)


def test_fisheye_render_matches_pycolmap_projection():
    """A quad whose texture encodes its own texel coordinates (R = s, G = t): the 3D point of the
    texel a pixel shows, projected by pycolmap's RADIAL_FISHEYE, must land on that pixel centre."""
    s_idx, t_idx = np.meshgrid(np.arange(256), np.arange(256))
    ramp = np.dstack([np.zeros_like(s_idx), t_idx, s_idx]).astype(np.uint8)  # BGR: R = s, G = t
    scene = Scene(size=np.array([4.0, 4.0, 3.0]))
    scene.add_face([0, 0, 0], [0, 0, 1.0], [1.0, 0, 0], 0.6, 0.6, ramp, cell_m=None)
    quad = scene.quads[0]
    cam = Fisheye(320, 240, f=200.0, cx=160.0, cy=120.0, k1=0.15, k2=0.04)
    pc = pycolmap.Camera(model="RADIAL_FISHEYE", width=320, height=240, params=[200.0, 160.0, 120.0, 0.15, 0.04])
    renderer = FisheyeRenderer(scene, cam)
    errors = []
    # looking down at the quad from 0.45 m, with the quad near the image centre and near a corner
    for yaw, off in ((0.0, (0, 0)), (0.7, (0.35, 0.3)), (2.0, (-0.3, 0.35))):
        centre = np.array([off[0], off[1], 0.45])
        R = look_rotation(yaw_pitch_forward(yaw, -np.pi / 2 + 0.05), 0.2)
        pose = cam_from_world(R, centre)
        img, ids = renderer.render(pose)
        # pixels well inside the quad (edge pixels blend the ramp with the black background)
        covered = (img.max(axis=2) > 0).astype(np.uint8)
        inside = cv2.erode(covered, np.ones((5, 5), np.uint8), borderValue=0) > 0
        rows, cols = np.nonzero(inside)
        assert len(rows) > 500
        s = img[rows, cols, 2].astype(float)
        t = img[rows, cols, 1].astype(float)
        X = quad.origin + s[:, None] * quad.es + t[:, None] * quad.et
        xc = X @ pose[:, :3].T + pose[:, 3]
        uv = pc.img_from_cam(xc)
        errors.append(uv - np.column_stack([cols + 0.5, rows + 0.5]))
    err = np.concatenate(errors)
    # 8-bit texel coordinates limit each pixel to ~0.5 texel (< 0.5 px here); a convention error
    # (half a pixel, the wrong distortion, a flipped axis) shows up as a bias or a large error
    assert np.abs(err.mean(0)).max() < 0.15, err.mean(0)
    assert np.percentile(np.linalg.norm(err, axis=1), 99) < 1.2


def test_atomic_no_partial_folder(tmp_path, monkeypatch):
    def boom(*a, **k):
        raise RuntimeError("disk full")

    monkeypatch.setattr(gen, "write_scan", boom)
    out = tmp_path / "ds"
    with pytest.raises(RuntimeError, match="disk full"):
        gen.generate(out, {**TINY, "clip_seconds": 3}, workers=1)
    assert not out.exists()
    assert list(tmp_path.iterdir()) == []


def test_bad_conf_is_clear(tmp_path):
    with pytest.raises(ValueError, match="even"):
        gen.generate(tmp_path / "x", {**TINY, "width": 321}, workers=1)


def test_clip_length_off_the_frame_grid_matches_the_frames_stage(tmp_path):
    # Found by the configuration sweep: a clip_seconds that is not a multiple of 0.2 s (3.1 s:
    # frames at 0.0 .. 3.0 s) gave 15 ground-truth frames where the frames stage extracts 16.
    from vq3d import frames

    conf = {**TINY, "width": 96, "height": 72, "clip_seconds": 3.1, "queries_per_clip": 1}
    gen.generate(tmp_path / "ds", conf, workers=1)
    (clip, ref), = _load(tmp_path / "ds/gt/clips.json").items()
    summary = frames.main(tmp_path / "ds/videos" / f"{ref['video_uid']}.mp4",
                          tmp_path / "ds" / layout.FILES["queries_val"], tmp_path / "frames", clip,
                          False, stage_conf("frames", decoder="cpu"))
    assert summary["count"] == ref["n_frames"] == len(ref["source_frames"]) == 16
    boxes = _load(tmp_path / "ds/gt/boxes" / f"{clip}.json")["frames"]
    assert len(boxes) == 16


def test_scan_reference_views_follow_the_scan_refs_plan(tiny):
    """The synthetic scan's reference views are what rule scan_refs would render for a real scan:
    its default camera and viewpoint plan (1 m grid over the floor at 1.5 m, headings 45° apart,
    pitched 15° down), ≤ 150 views, 30 of them geo renders; depth is z-depth on the room's
    surfaces (lifted pixels land inside the room, the floor's on z = 0)."""
    from vq3d.config import defaults
    from vq3d.scan import open_scan

    conf = defaults("scan_refs")
    scan_dir = tiny / "scans" / "synthscan-3-00"
    views = open_scan(scan_dir).reference_views()
    room = np.array(_load(scan_dir / "scan.json")["room_size"])
    assert 3 <= len(views) <= conf["max_views"]
    f = 0.5 * conf["width"] / np.tan(np.deg2rad(conf["fov_deg"]) / 2)
    yaws = set()
    for v in views:
        assert (v.camera.width, v.camera.height) == (conf["width"], conf["height"])
        assert np.allclose(v.camera.params, [f, f, conf["width"] / 2, conf["height"] / 2])
        m = v.cam_from_world.matrix()
        centre, forward = -m[:, :3].T @ m[:, 3], m[2, :3]
        assert centre[2] == pytest.approx(conf["heights_m"][0])
        grid = (centre[:2] - conf["spacing_m"] / 2) / conf["spacing_m"] % 1
        assert np.allclose(np.minimum(grid, 1 - grid), 0, atol=1e-6)  # on the grid's nodes
        assert np.degrees(np.arcsin(forward[2])) == pytest.approx(conf["pitch_deg"])
        yaws.add(round(np.degrees(np.arctan2(forward[1], forward[0]))) % 360)
        h, w = v.depth.shape
        uv = np.array([(x + 0.5, y + 0.5) for y in range(5, h, 37) for x in range(5, w, 41)])
        pts, ok = v.lift(uv)
        assert ok.mean() >= conf["min_valid"]
        assert (pts[ok] >= -0.02).all() and (pts[ok] <= room + 0.02).all()
    assert len(yaws) >= conf["yaws"]  # every heading, staggered between grid points
    floor_hits = [v.lift(np.array([[conf["width"] / 2, conf["height"] - 2.0]])) for v in views]
    assert np.median([p[0, 2] for p, ok in floor_hits if ok[0]]) == pytest.approx(0, abs=0.02)
    geo = [ln.split() for ln in (scan_dir / "geo_register" / "geo.txt").read_text().splitlines() if ln]
    centres = {tuple(np.round(-v.cam_from_world.matrix()[:, :3].T @ v.cam_from_world.matrix()[:, 3], 4))
               for v in views}
    assert len(geo) == min(conf["geo"], len(views))
    assert all(tuple(np.round(np.array(g[1:], float), 4)) in centres for g in geo)
