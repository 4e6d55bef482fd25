"""`vq3d check`: preflight of a real (ego4d) configuration, on the real anchor annotation files with
scan folders and videos laid out here. A clean setup passes; each planted mistake is one line."""

from __future__ import annotations

import json
import shutil
import subprocess

import pytest
import yaml

from vq3d import cli

RES = {"1920": (1920, 1080), "1440": (1440, 1080)}


def _video(path, w, h):
    subprocess.run(["ffmpeg", "-v", "error", "-y", "-f", "lavfi", "-i", f"color=c=gray:size={w}x{h}:rate=5",
                    "-frames:v", "1", "-pix_fmt", "yuv420p", str(path)], check=True, stdin=subprocess.DEVNULL)


def _matterpak(folder):
    folder.mkdir(parents=True)
    (folder / "model.obj").write_text("mtllib model.mtl\nv 0 0 0\nv 1 0 0\nv 0 1 0\nvt 0 0\nvt 1 0\nvt 0 1\n"
                                      "usemtl m\nf 1/1 2/2 3/3\n")
    (folder / "model.mtl").write_text("newmtl m\nmap_Kd model_000.jpg\n")
    (folder / "model_000.jpg").write_bytes(b"\xff\xd8\xff\xd9")


@pytest.fixture(scope="module")
def setup(tmp_path_factory):
    """The anchors' val files, four MatterPak-shaped scan folders, one on-disk video per clip at a
    resolution its scan has intrinsics for."""
    from conftest import ANCHORS
    if not ANCHORS.is_dir():
        pytest.skip(f"anchor files not found at {ANCHORS}")
    if shutil.which("ffmpeg") is None:
        pytest.skip("ffmpeg not installed")
    from vq3d.dataset import read_vq3d_clip_refs
    from vq3d.formats.intrinsics import read_intrinsics
    from vq3d.formats.scan_names import EGO4D_SCAN_NAMES
    root = tmp_path_factory.mktemp("check")
    meta = ANCHORS / "egoloc/data/metadata"
    intrinsics = ANCHORS / "egoloc/data/precomputed/scan_to_intrinsics_egoloc.json"
    config = {"dataset": {"kind": "ego4d", "split": "val"},
              "ego4d": {"annotations": str(meta / "vq3d_val.json"), "queries": str(meta / "vq_val_vq3d.json"),
                        "mapping": str(meta / "mapping_vq2d_to_vq3d_queries_annotations_val.json"),
                        "intrinsics": str(intrinsics), "scans_dir": str(root / "scans"),
                        "videos_dir": str(root / "videos")}}
    for folder in EGO4D_SCAN_NAMES.values():
        _matterpak(root / "scans" / folder)
    (root / "videos").mkdir()
    for key, (w, h) in RES.items():
        _video(root / f"{key}.mp4", w, h)
    intr = read_intrinsics(intrinsics)
    clips = {}
    for ref in read_vq3d_clip_refs(meta / "vq3d_val.json"):
        w, _ = sorted(intr[ref.scan_uid])[0]
        (root / "videos" / f"{ref.clip_uid}.mp4").symlink_to(root / f"{w}.mp4")
        clips[ref.clip_uid] = (ref.scan_uid, w)
    return root, config, clips


def _run(tmp_path, capsys, config):
    path = tmp_path / "my.yaml"
    path.write_text(yaml.safe_dump(config))
    rc = cli.main(["check", "--configfile", str(path)])
    out = capsys.readouterr()
    return rc, [ln[len("problem: "):] for ln in out.out.splitlines() if ln.startswith("problem: ")], out


def _copy(config):
    return json.loads(json.dumps(config))


def test_clean_configuration_passes(setup, tmp_path, capsys):
    _, config, _ = setup
    rc, problems, out = _run(tmp_path, capsys, config)
    assert (rc, problems) == (0, []), out
    assert "44 clips, 4 scans, 44 videos on disk" in out.out


def test_missing_scan_folder(setup, tmp_path, capsys):
    root, config, _ = setup
    config = _copy(config)
    scans = tmp_path / "scans"
    shutil.copytree(root / "scans", scans)
    shutil.rmtree(scans / "unict_3dscan_003")
    config["ego4d"]["scans_dir"] = str(scans)
    rc, problems, _ = _run(tmp_path, capsys, config)
    assert rc == 1 and len(problems) == 1, problems
    assert str(scans / "unict_3dscan_003") in problems[0] and "'unict_Carpenter_33'" in problems[0]
    assert "does not exist" in problems[0]


def test_unmapped_scan_name(setup, tmp_path, capsys):
    _, config, _ = setup
    config = _copy(config)
    from vq3d.formats.scan_names import EGO4D_SCAN_NAMES
    names = dict(EGO4D_SCAN_NAMES)
    del names["unict_Bike mechanic_34"]
    (tmp_path / "names.json").write_text(json.dumps(names))
    config["ego4d"]["scan_names"] = str(tmp_path / "names.json")
    rc, problems, _ = _run(tmp_path, capsys, config)
    assert rc == 1 and len(problems) == 1, problems
    assert "'unict_Bike mechanic_34'" in problems[0] and "names.json" in problems[0]


def test_resolution_without_intrinsics(setup, tmp_path, capsys):
    root, config, clips = setup
    config = _copy(config)
    videos = tmp_path / "videos"
    shutil.copytree(root / "videos", videos, symlinks=True)
    # a Baker clip (intrinsics at 1920x1080 only) whose video is 1440x1080
    clip = next(c for c, (scan, _) in sorted(clips.items()) if scan == "unict_Baker_32")
    (videos / f"{clip}.mp4").unlink()
    (videos / f"{clip}.mp4").symlink_to(root / "1440.mp4")
    config["ego4d"]["videos_dir"] = str(videos)
    rc, problems, _ = _run(tmp_path, capsys, config)
    assert rc == 1 and len(problems) == 1, problems
    assert clip in problems[0] and "1440x1080" in problems[0] and "unict_Baker_32" in problems[0]


@pytest.mark.parametrize("content", [b"{not json", b"\x00\xff binary", b"[]"])
def test_unreadable_annotation_file(setup, tmp_path, capsys, content):
    _, config, _ = setup
    config = _copy(config)
    bad = tmp_path / "vq3d_val.json"
    bad.write_bytes(content)
    config["ego4d"]["annotations"] = str(bad)
    rc, problems, _ = _run(tmp_path, capsys, config)
    assert rc == 1 and len(problems) == 1, problems
    assert problems[0].startswith(str(bad))


def test_videos_missing_and_not_downloadable_and_bad_mesh(setup, tmp_path, capsys, monkeypatch):
    root, config, _ = setup
    config = _copy(config)
    scans = tmp_path / "scans"
    shutil.copytree(root / "scans", scans)
    (scans / "unict_3dscan_002" / "model_000.jpg").unlink()
    config["ego4d"].update(scans_dir=str(scans), videos_dir=str(tmp_path / "none"), aws_profile="nobody")
    monkeypatch.setenv("AWS_SHARED_CREDENTIALS_FILE", str(tmp_path / "no-credentials"))
    monkeypatch.setenv("AWS_CONFIG_FILE", str(tmp_path / "no-config"))
    rc, problems, _ = _run(tmp_path, capsys, config)
    assert rc == 1 and len(problems) == 2, problems
    assert any("model_000.jpg" in p and "texture" in p for p in problems)
    assert any("video not on disk and 43 more" in p and "'nobody'" in p for p in problems)


def test_geo_renders_alone_cannot_serve_pnp(setup, tmp_path, capsys):
    root, config, _ = setup
    config = _copy(config)
    scans = tmp_path / "scans"
    shutil.copytree(root / "scans", scans)
    folder = scans / "unict_3dscan_001"
    for f in folder.iterdir():
        f.unlink()
    (folder / "geo_register").mkdir()
    config["ego4d"]["scans_dir"] = str(scans)
    rc, problems, _ = _run(tmp_path, capsys, config)
    assert rc == 1 and len(problems) == 1 and str(folder) in problems[0] and "pose.pnp" in problems[0], problems
    config["pose"] = {"pnp": False}
    rc, problems, _ = _run(tmp_path, capsys, config)
    assert (rc, problems) == (0, [])
