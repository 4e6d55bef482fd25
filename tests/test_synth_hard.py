"""The hard synthetic tier (synth.preset: hard): its calibration against the real anchors, the
camera faults' physics, determinism, ground truth that agrees with what was rendered, config errors."""

import json
import sys
from pathlib import Path

import numpy as np
import pytest

from vq3d.config import load_config, validate_config
from vq3d.errors import InputError
from vq3d.stages import config_slice
from vq3d.synth import generate as gen
from vq3d.synth import hard
from vq3d.synth.annotate import sightings
from vq3d.synth.camera import cam_from_world, look_rotation, yaw_pitch_forward

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "benchmarks"))
import hard_anchor_stats  # noqa: E402

SMALL = {"preset": "hard", "scale": "ci", "seed": 3, "scenes": 1, "clips_per_scene": 1, "queries_per_clip": 2,
         "source_fps": 10}


@pytest.fixture(scope="module")
def small(tmp_path_factory):
    out = tmp_path_factory.mktemp("hard") / "ds"
    gen.generate(out, SMALL, workers=1)
    return out


def _load(p):
    return json.loads(Path(p).read_text())


def test_shipped_table_is_the_anchors_statistics(anchors):
    """hard_stats.json holds exactly what the anchors give (cameras, quantiles), recomputed here
    from the anchor files with numpy, not through the table's writer."""
    table = hard.stats()
    intr = _load(anchors / "ego4d/VQ3D/data/scan_to_intrinsics.json")
    cams = {(c["scan"], c["width"], c["height"]): c for c in table["cameras"]}
    n = 0
    for scan, per_res in intr.items():
        for key, p in per_res.items():
            w, h = (int(s.strip(" '")) for s in key.strip("()").split(","))
            c = cams[(scan, w, h)]
            assert all(c[k] == pytest.approx(p[k], abs=0) for k in ("f", "cx", "cy", "k1", "k2"))
            n += 1
    assert n == len(cams) == 5 and {(c["width"], c["height"]) for c in cams.values()} == {(1440, 1080), (1920, 1080)}
    q = _load(anchors / "egoloc/data/metadata/vq_val_vq3d.json")
    clips = [c for v in q["videos"] for c in v["clips"]]
    sets = [qs for c in clips for a in c["annotations"] for qs in a["query_sets"].values()]
    med = lambda name: float(np.interp(0.5, table["levels"], table["quantiles"][name]))  # noqa: E731
    assert med("duration_s") == pytest.approx(np.median([c["clip_end_sec"] - c["clip_start_sec"] for c in clips]))
    assert med("duration_s") == 480
    assert med("track_len") == pytest.approx(np.median([len(s["response_track"]) for s in sets]))
    short = [min(s["visual_crop"]["width"], s["visual_crop"]["height"]) * 1080 / s["visual_crop"]["original_height"]
             for s in sets]
    assert med("crop_short_1080") == pytest.approx(np.median(short), rel=1e-3)
    assert 170 < med("crop_short_1080") < 190  # the "≈ 180 px at 1080p"


def test_table_writer_reproduces_the_shipped_table(anchors, tmp_path, monkeypatch):
    monkeypatch.setattr(hard_anchor_stats, "TABLE", tmp_path / "t.json")
    hard_anchor_stats.write_table()
    assert _load(tmp_path / "t.json") == hard.stats()


def test_cameras_are_the_real_calibrations_scaled():
    full = hard.camera(0, 0, "full")
    c = hard.stats()["cameras"][0]
    assert (full.width, full.height, full.f, full.k1, full.k2) == (c["width"], c["height"], c["f"], c["k1"], c["k2"])
    ci = hard.camera(0, 0, "ci")
    assert (ci.width, ci.height) == (c["width"] // 4, c["height"] // 4)
    assert ci.f == pytest.approx(c["f"] / 4) and ci.cx == pytest.approx(c["cx"] / 4) and ci.k1 == c["k1"]
    sizes = {(hard.camera(0, s, "full").width, hard.camera(0, s, "full").height) for s in range(5)}
    assert sizes == {(1440, 1080), (1920, 1080)}


def test_motion_blur_follows_rotation_speed_and_exposure():
    """A camera panning at ω: the blur length is f·ω·t_exp (small-angle image motion)."""
    cam = hard.camera(0, 1, "ci")
    fps, omega = 30, np.radians(120.0)
    poses = np.stack([cam_from_world(look_rotation(yaw_pitch_forward(omega * k / fps, 0.0)), np.zeros(3))
                      for k in range(12)])
    faults = hard.Faults(np.random.default_rng(0), cam, poses, fps)
    faults.hands = []
    img = np.full((cam.height, cam.width, 3), 110, np.uint8)
    img[:, ::7] = 200  # stripes across the motion: blur must smear them
    for k in range(12):
        out = faults.apply(img.copy(), np.zeros(img.shape[:2], np.uint8), k)
    expect = cam.f * omega * faults.exposure_s[5]
    assert faults.blur_px[5] == pytest.approx(expect, rel=0.05)
    assert faults.blur_px[5] > 1.5
    row = out[cam.height // 2].astype(float).mean(axis=1)
    assert row.std() < 0.5 * img[cam.height // 2].astype(float).mean(axis=1).std()  # stripes smeared


def test_a_still_camera_has_no_blur_and_noise_grows_with_gain():
    cam = hard.camera(0, 0, "ci")
    poses = np.stack([cam_from_world(look_rotation(yaw_pitch_forward(0.3, 0.0)), np.zeros(3))] * 40)
    res = {}
    for level in (40, 160):
        f = hard.Faults(np.random.default_rng(1), cam, poses, 10)
        f.hands, f.wb[:] = [], 1.0
        img = np.full((cam.height, cam.width, 3), level, np.uint8)
        for k in range(40):
            out = f.apply(img.copy(), np.zeros(img.shape[:2], np.uint8), k)
        assert f.blur_px.max() < 1e-6
        res[level] = (f.gain, out.astype(float).std())
    (g_dark, s_dark), (g_bright, s_bright) = res[40], res[160]
    assert g_dark > 1.5 > g_bright  # auto-exposure brightens the dark scene...
    assert s_dark > s_bright        # ...and amplifies its noise


def test_hands_hide_objects_in_the_ground_truth():
    cam = hard.camera(0, 0, "ci")
    poses = np.stack([cam_from_world(look_rotation(yaw_pitch_forward(0.0, 0.0)), np.zeros(3))] * 150)
    f = hard.Faults(np.random.default_rng(2), cam, poses, 10)
    k0, k1, *_ = f.hands[0] if f.hands else pytest.fail("no hand event")
    ids = np.full((cam.height, cam.width), 5, np.uint8)
    f.apply(np.full((cam.height, cam.width, 3), 100, np.uint8), ids, (k0 + k1) // 2)
    assert 0.02 < (ids == 0).mean() < 0.6


def test_deterministic_and_consistent_ground_truth(small, tmp_path):
    again = tmp_path / "again"
    gen.generate(again, SMALL, workers=1)
    for name in ("vq_val_vq3d.json", "vq3d_val.json", "scan_to_intrinsics.json", "gt/clips.json",
                 "gt/queries.json", "gt/boxes/synthclip-3-00-00.json", "gt/poses/synthclip-3-00-00.json",
                 "videos/synthvid-3-00.mp4"):
        assert (again / name).read_bytes() == (small / name).read_bytes(), name
    intr = _load(small / "scan_to_intrinsics.json")["synthscan-3-00"]
    (key, p), = intr.items()
    cam = hard.camera(3, 0, "ci")
    assert key == f"('{cam.width}', '{cam.height}')" and p["f"] == pytest.approx(cam.f)
    clip = _load(small / "gt/clips.json")["synthclip-3-00-00"]
    n = clip["n_frames"]
    dur = clip["video_end_sec"] - clip["video_start_sec"]
    assert dur * hard.CLIP_FPS + 1 == pytest.approx(n) and dur >= 4
    boxes = _load(small / "gt/boxes/synthclip-3-00-00.json")["frames"]
    q2 = _load(small / "vq_val_vq3d.json")["videos"][0]["clips"][0]["annotations"][0]["query_sets"]
    gtq = _load(small / "gt/queries.json")
    assert gtq and len(gtq) == len(q2)
    for g in gtq:
        qs = q2[g["query_set"]]
        s, e = g["response_track"]
        assert e < g["query_frame"] < n and g["plan"]["query_frame"] <= g["query_frame"]
        assert [b["frame_number"] for b in qs["response_track"]] == list(range(s, e + 1))
        for b in qs["response_track"] + [qs["visual_crop"]]:
            gt = boxes[b["frame_number"]][str(g["object_index"])]["bbox"]
            assert [b["x"], b["y"], b["x"] + b["width"], b["y"] + b["height"]] == gt
        assert not s <= qs["visual_crop"]["frame_number"] <= e  # never on the track, as in Ego4D
        # the query frame is not itself a sighting (the track is the LAST one before it)
        assert g["query_frame"] not in sightings([{int(k): v for k, v in fb.items()} for fb in boxes],
                                                 g["object_index"], cam.width)
    kinds = {o["kind"] for o in _load(small / "gt/objects.json")["synthscan-3-00"]}
    assert {"query", "distractor", "clutter"} <= kinds


def test_hard_preset_refuses_the_keys_it_does_not_read():
    with pytest.raises(InputError, match="synth.width"):
        gen._conf({"preset": "hard", "width": 320})
    with pytest.raises(InputError, match="synth.clip_seconds"):
        gen._conf({"preset": "hard", "clip_seconds": 8})
    with pytest.raises(Exception, match="preset"):
        validate_config({"synth": {"preset": "medium"}})


def test_easy_slice_is_unchanged_and_hard_slice_names_its_keys():
    """The synth rule's params for the demo hold no preset or scale (a demo made before they
    existed is not regenerated for them), but ref_views: the scans' reference views changed with
    it (planned as scan_refs plans them), so an older demo is regenerated once, on purpose; the
    hard tier's name preset and scale instead of width/height/clip_seconds."""
    easy = config_slice(load_config(), "synth")
    assert list(easy) == ["seed", "scenes", "clips_per_scene", "queries_per_clip", "width", "height",
                          "source_fps", "clip_seconds", "ref_views"]
    h = config_slice(load_config(overrides={"synth": {"preset": "hard", "scale": "ci"}}), "synth")
    assert h["preset"] == "hard" and h["scale"] == "ci" and "width" not in h


def test_a_broken_statistics_table_names_its_field(tmp_path):
    import json

    from vq3d.errors import InputError
    from vq3d.formats.hard_stats import read_hard_stats

    bad = tmp_path / "t.json"
    bad.write_text(json.dumps({"levels": [0, 0.5, 1], "quantiles": {"track_len": [1, 2]}, "cameras": []}))
    with pytest.raises(InputError, match=r"quantiles.track_len: 3 values expected"):
        read_hard_stats(bad)
