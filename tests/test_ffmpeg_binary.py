"""Which ffmpeg runs (system on the PATH, else imageio-ffmpeg's static build), probing without
ffprobe (checked against ffprobe itself where one exists), and the frames stage on the pip binary
with no ffmpeg or ffprobe on the PATH."""

from __future__ import annotations

import json
import math
import os
import shutil
import subprocess
import sys
from fractions import Fraction
from pathlib import Path

import pytest

from vq3d import frames
from vq3d.errors import InputError
from vq3d.video import ffmpeg as ff
from vq3d.video import probe as probe_mod

from test_frames import W, H, check_truth, make_video, run

pytest.importorskip("imageio_ffmpeg")


@pytest.fixture
def no_system_ffmpeg(monkeypatch, tmp_path):
    """A PATH without ffmpeg/ffprobe: the Python in use and nothing else."""
    bindir = tmp_path / "bin"
    bindir.mkdir()
    monkeypatch.setenv("PATH", str(bindir))
    monkeypatch.delenv("VQ3D_FFMPEG", raising=False)
    assert shutil.which("ffmpeg") is None and shutil.which("ffprobe") is None
    return bindir


def test_pip_binary_is_used_without_a_system_ffmpeg(no_system_ffmpeg):
    b = ff.locate()
    assert b.source == "pip" and b.ffprobe is None
    assert "imageio_ffmpeg" in b.path and Path(b.path).is_file()
    assert b.version.startswith("ffmpeg version")
    assert b.record() == {"path": b.path, "source": "pip", "version": b.version}


def test_system_ffmpeg_is_preferred(monkeypatch, tmp_path):
    # a stand-in "system" ffmpeg on the PATH (the pip binary under that name) wins over the wheel's
    real = ff._pip_ffmpeg()
    bindir = tmp_path / "bin"
    bindir.mkdir()
    (bindir / "ffmpeg").symlink_to(real)
    monkeypatch.setenv("PATH", str(bindir))
    monkeypatch.delenv("VQ3D_FFMPEG", raising=False)
    b = ff.locate()
    assert b.source == "system" and b.path == str(bindir / "ffmpeg") and b.ffprobe is None
    monkeypatch.setenv("VQ3D_FFMPEG", "pip")
    assert ff.locate().source == "pip"
    monkeypatch.setenv("VQ3D_FFMPEG", str(bindir / "ffmpeg"))
    assert ff.locate().source == "env"


def test_no_ffmpeg_at_all_is_one_clear_error(no_system_ffmpeg, monkeypatch):
    monkeypatch.setattr(ff, "_pip_ffmpeg", lambda: None)
    ff._locate.cache_clear()
    try:
        with pytest.raises(ff.FFmpegError, match="no ffmpeg found.*pip install imageio-ffmpeg"):
            ff.locate()
        monkeypatch.setenv("VQ3D_FFMPEG", str(no_system_ffmpeg / "nope"))
        with pytest.raises(ff.FFmpegError, match="VQ3D_FFMPEG=.*nope: no such file"):
            ff.locate()
    finally:
        ff._locate.cache_clear()


@pytest.fixture(scope="module")
def probe_videos(tmp_path_factory):
    """Containers and rates ffmpeg-only probing must get right (made with the located ffmpeg)."""
    d = tmp_path_factory.mktemp("probe")
    exe = ff.ffmpeg_exe()
    specs = {  # name: (rate, duration, extra encoder args)
        "ntsc.mp4": ("30000/1001", 4.1, ["-bf", "2"]),
        "pal.mkv": ("25", 3.3, ["-bf", "0"]),
        "film.mp4": ("24", 2.5, ["-bf", "3"]),
        "offset.mp4": ("30", 2.0, ["-output_ts_offset", "1.5"]),
        "slow.mov": ("15", 3.0, []),
    }
    out = {}
    for name, (rate, dur, extra) in specs.items():
        path = d / name
        # a longer audio track: the container's duration is not the video's
        subprocess.run([exe, "-v", "error", "-y", "-f", "lavfi", "-i",
                        f"testsrc2=size=160x120:rate={rate}:duration={dur}", "-f", "lavfi",
                        "-i", f"sine=duration={dur + 1}", "-c:v", "libx264", "-pix_fmt", "yuv420p",
                        *extra, "-c:a", "aac", str(path)], check=True, stdin=subprocess.DEVNULL)
        out[name] = (path, float(Fraction(rate)), dur)
    return out


@pytest.mark.parametrize("name", ["ntsc.mp4", "pal.mkv", "film.mp4", "offset.mp4", "slow.mov"])
def test_probe_without_ffprobe_matches_ground_truth(probe_videos, name, monkeypatch):
    path, rate, dur = probe_videos[name]
    data = probe_mod._ffmpeg_streams(path, ff._pip_ffmpeg())
    s = data["streams"][0]
    assert s["codec_name"] == "h264" and (s["width"], s["height"]) == (160, 120)
    assert abs(float(probe_mod.Fraction(s["avg_frame_rate"])) - rate) < 1e-9
    n = math.ceil(dur * rate - 1e-9)  # frames testsrc2 made
    assert abs(float(s["duration"]) - n / rate) < 2e-3  # mkv stores ms timestamps
    ffprobe = shutil.which("ffprobe")
    if ffprobe:  # and agrees with ffprobe wherever ffprobe reports the field
        ref = probe_mod._ffprobe_streams(path, ffprobe)["streams"][0]
        assert probe_mod.Fraction(ref["avg_frame_rate"]) == probe_mod.Fraction(s["avg_frame_rate"])
        assert probe_mod.Fraction(ref["r_frame_rate"]) == probe_mod.Fraction(s["r_frame_rate"])
        assert abs(float(ref["start_time"]) - float(s["start_time"])) < 1e-6
        if "duration" in ref:
            assert abs(float(ref["duration"]) - float(s["duration"])) < 1e-6


def test_probe_errors_without_ffprobe(no_system_ffmpeg, tmp_path):
    junk = tmp_path / "junk.mp4"
    junk.write_bytes(b"\x00not a video" * 100)
    with pytest.raises(InputError, match="junk.mp4: not a readable video, truncated or corrupt \\(ffmpeg: "):
        probe_mod.probe(junk)
    audio = tmp_path / "audio.m4a"
    subprocess.run([ff.ffmpeg_exe(), "-v", "error", "-f", "lavfi", "-i", "sine=duration=1", str(audio)],
                   check=True, stdin=subprocess.DEVNULL)
    with pytest.raises(InputError, match="audio.m4a: has no video stream"):
        probe_mod.probe(audio)


def test_frames_stage_on_the_pip_binary(no_system_ffmpeg, tmp_path, caplog):
    video = make_video(tmp_path / "v2997.mp4", 300, "30000/1001")
    caplog.set_level("INFO")
    out, summary = run(tmp_path, video, (1.23, 8.0))
    check_truth(out, 34, 1.23, 30000 / 1001)
    meta = json.loads((out / "frames.json").read_text())
    assert meta["ffmpeg"]["source"] == "pip" and "imageio_ffmpeg" in meta["ffmpeg"]["path"]
    assert meta["decoder"] == "cpu"
    assert any("pip ffmpeg" in r.getMessage() for r in caplog.records)


def test_frames_json_records_the_system_binary(tmp_path, monkeypatch):
    monkeypatch.delenv("VQ3D_FFMPEG", raising=False)
    if shutil.which("ffmpeg") is None:
        pytest.skip("no system ffmpeg on the PATH")
    video = make_video(tmp_path / "v.mp4", 60, "30")
    out, summary = run(tmp_path, video, (0.0, 1.0))
    assert summary["ffmpeg"]["source"] == "system"
    assert summary["ffmpeg"]["path"] == shutil.which("ffmpeg")
