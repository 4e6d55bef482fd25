"""pose_sfm's loop-closure pairs (vq3d.pose.retrieval): their number grows linearly with the clip,
and retrieval finds the true loop closures of a rendered clip that revisits its views."""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np
import pytest

from vq3d.pose import retrieval, sfm
from vq3d.stages import stage_conf


def _pairs_at(n: int, stride: int, overlap: int, candidates: int) -> int:
    keys = retrieval.keyframe_indices(n, stride)
    rng = np.random.default_rng(n)
    gdesc = rng.standard_normal((len(keys), 32))
    gdesc /= np.linalg.norm(gdesc, axis=1, keepdims=True)
    return len(retrieval.retrieval_pairs(keys, gdesc, candidates, overlap))


def test_retrieval_pairs_grow_linearly_exhaustive_quadratically():
    n = 600
    small, large = _pairs_at(n, 10, 10, 5), _pairs_at(4 * n, 10, 10, 5)
    assert 0 < large <= 5 * len(retrieval.keyframe_indices(4 * n, 10))
    assert large <= 4.0 * small * 1.05  # linear (dedup makes it slightly sublinear at best)
    assert large >= 4.0 * small * 0.8
    names = [f"f{i}" for i in range(4 * n)]
    ex_small, ex_large = (len(retrieval.exhaustive_pairs(names[:m], 10, 10)) for m in (n, 4 * n))
    assert ex_large > 14 * ex_small  # the old scheme: ~16× for 4× the frames
    assert len(retrieval.exhaustive_pairs(names, 10, 10)) > 28_000 > 10 * large


def test_windowed_mapping_matches_exhaustive_loop_pairs_only_inside_windows():
    """With pose.sfm_window_frames the exhaustive loop pairs are kept inside one window (the only
    ones a window's mapping uses): linear in the clip, and all of a window's pairs are there."""
    from vq3d.pose.windows import windows
    conf = stage_conf("pose_sfm", sfm_loop_pairs="exhaustive", sfm_window_frames=300,
                      sfm_window_overlap=30)
    counts = {}
    for n in (600, 2400):
        names = [f"f{i}" for i in range(n)]
        pairs = sfm.loop_pairs(Path("unused.db"), names, conf)
        spans = windows(n, 300, 30)
        index = {name: i for i, name in enumerate(names)}
        assert all(any(a <= index[p] < b and a <= index[q] < b for a, b in spans) for p, q in pairs)
        inside = {(p, q) for p, q in retrieval.exhaustive_pairs(names, 10, 10)
                  if any(a <= index[p] < b and a <= index[q] < b for a, b in spans)}
        assert set(pairs) == inside
        counts[n] = len(pairs)
    assert 3.0 * counts[600] < counts[2400] < 5.0 * counts[600]  # linear, not ~16x
    unwindowed = sfm.loop_pairs(Path("unused.db"), [f"f{i}" for i in range(600)],
                                {**conf, "sfm_window_frames": 0})
    assert len(unwindowed) == len(retrieval.exhaustive_pairs([f"f{i}" for i in range(600)], 10, 10))


def test_retrieval_pairs_skip_near_frames_and_dedupe():
    keys = list(range(0, 100, 5))
    g = np.ones((len(keys), 4)) / 2.0  # all alike: any far keyframe may be chosen
    pairs = retrieval.retrieval_pairs(keys, g, 3, overlap=10)
    assert pairs == sorted(set(pairs))
    assert all(i < j and keys[j] - keys[i] > 10 for i, j in pairs)
    assert retrieval.retrieval_pairs(keys, g, 0, overlap=10) == []


def _revisit_clip(out: Path, steps: int = 24, width: int = 320):
    """Two turns on the spot (the second 0.25 m aside, yaw offset 4°): frame steps+k sees what
    frame k saw. Returns the frame names and each frame's (yaw, centre)."""
    from vq3d.synth import camera as C
    from vq3d.synth.render import FisheyeRenderer
    from vq3d.synth.scene import build_scene

    rng = np.random.default_rng(3)
    scene = build_scene(rng, 3)
    height = int(round(width * 9 / 16)) // 2 * 2
    fish = C.fisheye_for(width, height, rng)
    mid = (scene.walk_min + scene.walk_max) / 2
    renderer = FisheyeRenderer(scene, fish)
    (out / "frames").mkdir(parents=True)
    names, truth = [], []
    for i in range(2 * steps):
        lap, k = divmod(i, steps)
        yaw = 2 * np.pi * k / steps + np.radians(4) * lap
        centre = np.array([mid[0] + 0.25 * lap, mid[1], 1.6])
        pose = C.cam_from_world(C.look_rotation(C.yaw_pitch_forward(yaw, -0.2)), centre)
        img, _ = renderer.render(pose)
        name = f"color_{i:07d}.jpg"
        cv2.imwrite(str(out / "frames" / name), img, [cv2.IMWRITE_JPEG_QUALITY, 92])
        names.append(name)
        truth.append(yaw)
    return names, np.array(truth), fish


def test_retrieval_finds_the_revisits_of_a_rendered_clip(tmp_path):
    import pycolmap

    steps = 24
    names, yaw, fish = _revisit_clip(tmp_path, steps)
    camera = pycolmap.Camera(model="RADIAL_FISHEYE", width=fish.width, height=fish.height,
                             params=[fish.f, fish.cx, fish.cy, fish.k1, fish.k2])
    conf = {**stage_conf("pose_sfm"), "threads": 2}
    db = tmp_path / "database.db"
    sfm.extract(db, tmp_path / "frames", names, camera, conf)
    overlap = 2
    pairs = retrieval.loop_pairs(db, names, stride=1, overlap=overlap, candidates=3)
    index = {n: i for i, n in enumerate(names)}
    partners: dict[int, set[int]] = {}
    for a, b in pairs:
        i, j = index[a], index[b]
        assert j - i > overlap
        partners.setdefault(i, set()).add(j)
        partners.setdefault(j, set()).add(i)
    assert len(pairs) <= 3 * len(names)
    # True loop closure of frame k of the second turn: frame k of the first (4° and 0.25 m off).
    found = [k for k in range(steps) if k + steps in partners.get(k, set())]
    assert len(found) >= 0.8 * steps, (found, sorted(partners.items()))
    # A retrieval that ignored the views would pick partners at random headings.
    dyaw = [abs((yaw[i] - yaw[j] + np.pi) % (2 * np.pi) - np.pi) for a, b in pairs
            for i, j in [(index[a], index[b])]]
    assert np.median(np.degrees(dyaw)) < 30


@pytest.mark.parametrize("kind", ["retrieval", "exhaustive"])
def test_sfm_loop_pairs_config(kind, tmp_path):
    names = [f"color_{i:07d}.jpg" for i in range(50)]
    conf = {**stage_conf("pose_sfm"), "sfm_loop_pairs": kind, "sfm_keyframe_stride": 10,
            "sfm_overlap": 10, "sfm_loop_candidates": 0}
    if kind == "exhaustive":
        assert len(sfm.loop_pairs(tmp_path / "none.db", names, conf)) == 6  # 0-20..30-40 etc.
    else:
        assert sfm.loop_pairs(tmp_path / "none.db", names, conf) == []
    with pytest.raises(ValueError, match="sfm_loop_pairs"):
        sfm.loop_pairs(tmp_path / "none.db", names, {**conf, "sfm_loop_pairs": "vocab"})


def test_pnp_runs_where_it_adds_frames_or_checks(monkeypatch, tmp_path):
    """pnp_check_stride k > 1: PnP on frames outside large SfM sub-models, plus every k-th frame."""
    from vq3d.pose import merge, pnp

    names = [f"color_{i:07d}.jpg" for i in range(200)]
    big = {i: None for i in range(0, 150) if i not in (40, 41, 42)}  # 147 images, a 3-frame hole
    small = {i: None for i in range(160, 190)}                      # 30 images: too small to trust
    monkeypatch.setattr(merge, "load_models", lambda sfm_dir, n: {0: big, 1: small})
    run, skipped = pnp.frames_to_run(names, tmp_path, 5)
    assert set(run) == ({40, 41, 42} | set(range(150, 200)) | {i for i in big if i % 5 == 0})
    assert set(run) | set(skipped) == set(range(200)) and not set(run) & set(skipped)
    assert all("pnp_check_stride 5" in r for r in skipped.values())
    assert pnp.frames_to_run(names, tmp_path, 1) == (list(range(200)), {})
    assert pnp.frames_to_run(names, None, 5) == (list(range(200)), {})
