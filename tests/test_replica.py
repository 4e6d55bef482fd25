"""The Ego4D-shaped replica (`vq3d synth --layout ego4d`): the synthetic world laid out as the ego4d
CLI, Ego4D's and EgoLoc's repositories deliver the real data. Checked with the ego4d package's own
manifest reader, against Ego4D's clip-frame rule, and against the shapes of the real anchor files."""

from __future__ import annotations

import json
import tarfile
from pathlib import Path

import cv2
import numpy as np
import pytest

from vq3d.formats.intrinsics import resolution_key
from vq3d.synth import replica

pytest.importorskip("ego4d")
from ego4d.cli.manifest import list_videos_in_manifest  # noqa: E402

CONF = {"seed": 3, "scenes": 2, "clips_per_scene": 1, "queries_per_clip": 2, "clip_seconds": 12, "scale": 4}
V2 = Path("ego4d/v2")


@pytest.fixture(scope="module")
def rep(tmp_path_factory):
    out = tmp_path_factory.mktemp("replica") / "rep"
    summary = replica.write_replica(out, CONF)
    return out, summary


def _load(p):
    return json.loads(Path(p).read_text())


def test_manifests_read_by_the_ego4d_cli(rep):
    out, summary = rep
    for dataset, video in (("annotations", False), ("clips", True), ("full_scale", True), ("3d", False),
                           ("3d_scans", False)):
        d = out / V2 / dataset
        rows = list(list_videos_in_manifest(d / "manifest.csv", set(), set()))
        assert rows, dataset
        for r in rows:
            assert r.file_download is not video
            assert (d / r.filename_base).is_file(), (dataset, r.filename_base)
            assert r.s3_path.startswith("s3://")
        if dataset == "clips":
            assert {r.uid for r in rows} == set(summary["clips"])
            assert all(r.university == "unict" for r in rows)  # `--universities unict` keeps them


def test_clip_records_follow_ego4d(rep):
    out, summary = rep
    L, fps = CONF["clip_seconds"], 30
    vq2d = _load(out / V2 / "annotations/vq_val.json")
    clips_manifest = {r.uid for r in list_videos_in_manifest(out / V2 / "clips/manifest.csv", set(), set())}
    seen_negative = seen_normal = False
    for v in vq2d["videos"]:
        for c in v["clips"]:
            assert c["source_clip_uid"] != c["clip_uid"] and c["source_clip_uid"] not in clips_manifest
            assert c["video_end_frame"] - c["video_start_frame"] == L * fps
            assert c["clip_fps"] == 5.0 and c["clip_start_frame"] == 0
            if c["video_start_sec"] < 0:  # as the anchors' 7 negative-start clips
                seen_negative = True
                assert c["video_start_frame"] == 0 and c["video_start_sec"] == pytest.approx(-0.0123047, abs=1e-6)
                assert c["clip_end_frame"] == L * fps - 1 and c["video_end_sec"] - c["video_start_sec"] == pytest.approx(L)
            else:
                seen_normal = True
                assert c["video_start_frame"] == round(c["video_start_sec"] * fps)
            for a in c["annotations"]:
                for q in a["query_sets"].values():
                    assert q["query_video_frame"] == c["video_start_frame"] + 6 * q["query_frame"]
                    for box in [q["visual_crop"], *q["response_track"]]:
                        assert box["video_frame_number"] == c["video_start_frame"] + 6 * box["frame_number"]
    assert seen_negative and seen_normal


def test_resolutions_and_intrinsics_keys(rep):
    out, summary = rep
    intr = _load(out / "episodic-memory/VQ3D/data/scan_to_intrinsics.json")
    sizes = {(i["width"], i["height"]) for i in summary["clips"].values()}
    assert sizes == {(480, 270), (360, 270)}  # 1920x1080 and 1440x1080 divided by 4
    for cuid, info in summary["clips"].items():
        assert resolution_key(info["width"], info["height"]) in intr[info["scan_name"]]
        assert " " in info["scan_name"] or info["scan_name"] == "unict_Baker_32"
        cap = cv2.VideoCapture(str(out / V2 / "clips" / f"{cuid}.mp4"))
        assert (int(cap.get(cv2.CAP_PROP_FRAME_WIDTH)), int(cap.get(cv2.CAP_PROP_FRAME_HEIGHT))) == (info["width"], info["height"])
        assert cap.get(cv2.CAP_PROP_FPS) == pytest.approx(30)
    key = next(iter(next(iter(intr.values()))))
    assert key.startswith("('") and "', '" in key  # str(('W', 'H')), as run_all_data.py builds it


def _frames(path):
    cap, out = cv2.VideoCapture(str(path)), []
    while True:
        ok, f = cap.read()
        if not ok:
            return out
        out.append(f.astype(np.int16))


def test_canonical_clip_is_the_video_window(rep):
    """Canonical clip frame k is full-scale frame video_start_frame + k, end frame included
    (30 * L + 1 frames); a cut one frame off would differ far more than re-encoding does."""
    out, summary = rep
    L = CONF["clip_seconds"]
    for cuid, info in summary["clips"].items():
        clip = _frames(out / V2 / "clips" / f"{cuid}.mp4")
        video = _frames(out / V2 / "full_scale" / f"{info['video_uid']}.mp4")
        assert len(clip) == 30 * L + 1
        s = info["video_start_frame"]
        for k in (0, 6 * 7, 30 * L):
            same = np.abs(clip[k] - video[s + k]).mean()
            off = np.abs(clip[k] - video[s + k + 3]).mean()
            assert same < 4.0 and off > 3 * same, (cuid, k, same, off)


def test_scans_and_geo_register(rep):
    out, summary = rep
    names = _load(out / "scan_names.json")
    ann = _load(out / V2 / "annotations/vq3d_val.json")
    assert {v["scan_uid"] for v in ann["videos"]} == set(names)
    for name, folder in names.items():
        with tarfile.open(out / V2 / "3d_scans" / f"{folder}.tar") as tar:
            members = tar.getnames()
        assert all(m == folder or m.startswith(folder + "/") for m in members)
        assert any(m.endswith(".obj") for m in members) and f"{folder}/cloud.xyz" in members
        geo = out / "EgoLoc/data/geo_register" / folder
        lines = (geo / "geo.txt").read_text().split("\n")
        assert len([x for x in lines if x]) >= 3 and all((geo / x.split()[0]).is_file() for x in lines if x)
        assert not (geo / "scan.json").exists()  # EgoLoc ships no render camera


@pytest.mark.anchors
def test_same_shapes_as_the_anchors(rep, anchors):
    out, _ = rep
    real = _load(anchors / "egoloc/data/metadata/vq_val_vq3d.json")
    ours = _load(out / "EgoLoc/data/metadata/vq_val_vq3d.json")
    assert set(ours) == set(real)
    rc, oc = real["videos"][0]["clips"][0], ours["videos"][0]["clips"][0]
    assert set(oc) == set(rc)
    rq = next(q for a in rc["annotations"] for q in a.get("query_sets", {}).values())
    oq = next(q for a in oc["annotations"] for q in a["query_sets"].values())
    assert set(oq) == set(rq) and set(oq["visual_crop"]) == set(rq["visual_crop"])
    for real_t, ours_t in (("ego4d/VQ3D/data", "episodic-memory/VQ3D/data"), ("egoloc/data/metadata", "EgoLoc/data/metadata")):
        real_t = _load(anchors / real_t / "vq3d_test_unannotated_template.json")
        ours_t = _load(out / ours_t / "vq3d_test_unannotated_template.json")
        assert set(ours_t) == set(real_t)
        assert ours_t["version"] == real_t["version"] and ours_t.get("challenge") == real_t.get("challenge")
        assert set(ours_t["videos"][0]["clips"][0]["annotations"][0]) == {"query_sets", "annotation_uid"}
    real_m = _load(anchors / "egoloc/data/metadata/clip_names_val_test.json")
    ours_m = _load(out / "EgoLoc/data/metadata/clip_names_val_test.json")
    assert set(ours_m["clips"][0]) == set(real_m["clips"][0])


# --- the local S3: the real ego4d CLI downloads the replica ----------------------------------------

@pytest.fixture(scope="module")
def s3(rep, tmp_path_factory):
    pytest.importorskip("moto.server")
    from vq3d.formats.aws_env import CLEARED as _CLEARED
    from vq3d.synth.serve import serving

    out, _ = rep
    with serving(out, tmp_path_factory.mktemp("aws")) as env, pytest.MonkeyPatch.context() as mp:
        for k in _CLEARED:
            mp.delenv(k, raising=False)
        for k, v in env.items():
            mp.setenv(k, v)
        yield env


def test_download_every_dataset_from_the_local_s3(rep, s3, tmp_path):
    from vq3d import download

    out, summary = rep
    dl = tmp_path / "ego4d"
    for dataset in ("annotations", "3d"):
        files = download.download_files(dl, dataset)
        assert files and all(f.read_bytes() == (out / V2 / dataset / f.name).read_bytes() for f in files)
    folders = download.download_scans(dl)
    assert sorted(f.name for f in folders) == sorted(s["folder"] for s in summary["scans"].values())
    for f in folders:
        assert (f / next(s["mesh"] for s in summary["scans"].values() if s["folder"] == f.name)).is_file()
        assert (f / "cloud.xyz").is_file()
    mtimes = {f: f.stat().st_mtime_ns for f in folders}
    assert download.download_scans(dl) == folders and all(f.stat().st_mtime_ns == m for f, m in mtimes.items())
    cuid, info = next(iter(summary["clips"].items()))
    clip = download.main(tmp_path / "clips" / f"{cuid}.mp4", cuid, "clips", "default")
    assert clip.read_bytes() == (out / V2 / "clips" / f"{cuid}.mp4").read_bytes()
    video = download.main(tmp_path / "videos" / f"{info['video_uid']}.mp4", info["video_uid"], "videos", "default")
    assert video.read_bytes() == (out / V2 / "full_scale" / f"{info['video_uid']}.mp4").read_bytes()
    # the VQ clip_uid names the canonical clip file; its source_clip_uid is not in the clips manifest
    vq2d = _load(out / V2 / "annotations/vq_val.json")
    source = vq2d["videos"][0]["clips"][0]["source_clip_uid"]
    from vq3d.errors import InputError
    with pytest.raises(InputError, match=f"uid {source} is not in the Ego4D v2_1 'clips' manifest"):
        download.main(tmp_path / "x.mp4", source, "clips", "default")


def test_missing_scan_object_is_an_error(rep, s3, tmp_path):
    """The CLI exits 0 when an object listed in the manifest is absent: the download says which."""
    import boto3.session
    from vq3d import download

    out, summary = rep
    c = boto3.session.Session(profile_name="default").client("s3")
    folder = sorted(s["folder"] for s in summary["scans"].values())[-1]
    key = f"public/v2_1/3d_scans/{folder}.tar"
    body = c.get_object(Bucket="ego4d-consortium-sharing", Key=key)["Body"].read()
    c.delete_object(Bucket="ego4d-consortium-sharing", Key=key)
    try:
        with pytest.raises(download.DownloadError, match=rf"1 of 2 3d_scans files were not fetched \({folder}.tar\)"):
            download.download_scans(tmp_path / "ego4d")
    finally:
        c.put_object(Bucket="ego4d-consortium-sharing", Key=key, Body=body)


def test_scan_archive_layouts(tmp_path):
    """A tar with one top folder or with the files at its root; anything escaping is refused."""
    from vq3d.errors import InputError
    from vq3d.scan_archive import extract_scan

    src = tmp_path / "src"
    (src / "unict_3dscan_009").mkdir(parents=True)
    (src / "unict_3dscan_009" / "m.obj").write_text("v 0 0 0\n")
    with tarfile.open(tmp_path / "a.tar", "w") as t:
        t.add(src / "unict_3dscan_009", arcname="unict_3dscan_009")
    with tarfile.open(tmp_path / "unict_3dscan_010.tar", "w") as t:
        t.add(src / "unict_3dscan_009" / "m.obj", arcname="m.obj")
    scans = tmp_path / "scans"
    assert extract_scan(tmp_path / "a.tar", scans) == scans / "unict_3dscan_009"
    assert extract_scan(tmp_path / "unict_3dscan_010.tar", scans) == scans / "unict_3dscan_010"
    assert (scans / "unict_3dscan_010" / "m.obj").is_file()
    with tarfile.open(tmp_path / "evil.tar", "w") as t:
        t.add(src / "unict_3dscan_009" / "m.obj", arcname="../../etc/m.obj")
    with pytest.raises(InputError, match="cannot be unpacked|unsafe scan folder"):
        extract_scan(tmp_path / "evil.tar", scans)
    (tmp_path / "bad.tar").write_bytes(b"not a tar")
    with pytest.raises(InputError, match="scan archive cannot be read"):
        extract_scan(tmp_path / "bad.tar", scans)
    assert sorted(p.name for p in scans.iterdir()) == ["unict_3dscan_009", "unict_3dscan_010"]


def test_cli_layout_options(tmp_path, capsys):
    from vq3d.cli import main as cli_main

    assert cli_main(["synth", "--layout", "ego4d", "--out", str(tmp_path / "r"), "--width", "640"]) == 1
    assert "--width" in capsys.readouterr().err and not (tmp_path / "r").exists()
    assert cli_main(["synth", "--layout", "ego4d", "--out", str(tmp_path / "r"), "--scale", "5"]) == 1
    assert "--scale" in capsys.readouterr().err
    assert cli_main(["synth", "--layout", "ego4d", "--out", str(tmp_path / "r"), "--clip-seconds", "7.5"]) == 1
    assert "whole seconds" in capsys.readouterr().err


def test_run_failures_with_an_absolute_results_dir(tmp_path, monkeypatch, capsys):
    """The end-of-run failure list works when results_dir is outside the working directory (the
    replica run's configuration): it names the log by its absolute path."""
    import time

    from vq3d.slurm.status import print_run_failures

    log = tmp_path / "results" / "logs" / "frames" / "clip-a.log"
    log.parent.mkdir(parents=True)
    log.write_text("2026-12-01 10:00:00,000 ERROR vq3d: bad input: clip-a.mp4: not a readable video\n")
    monkeypatch.chdir(tmp_path.parent)
    print_run_failures(tmp_path / "results" / "logs", time.time() - 60)
    err = capsys.readouterr().err
    assert f"{log}: bad input: clip-a.mp4: not a readable video" in err
