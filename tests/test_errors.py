"""Every exception class vq3d defines survives pickling (stages fan work out to process pools),
and a worker's expected failure reaches the user as its one line, not as BrokenProcessPool."""

from __future__ import annotations

import importlib
import inspect
import logging
import os
import pickle
import pkgutil
import stat
import subprocess
import sys
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

import pytest

import vq3d
from vq3d import stage_runner
from vq3d.errors import InputError, VQ3DError
from vq3d.video.ffmpeg import FFmpegError

# Optional third-party packages a vq3d module may need at import; anything else failing to import
# is a failure of this test (it would hide that module's exception classes).
OPTIONAL = {"torch", "detectron2", "detectron2_extensions", "vq2d"}


def vq3d_modules():
    mods = []
    for info in pkgutil.walk_packages(vq3d.__path__, "vq3d."):
        if info.name.endswith("__main__"):  # runs the CLI on import
            continue
        try:
            mods.append(importlib.import_module(info.name))
        except ImportError as exc:
            if (exc.name or "").split(".")[0] not in OPTIONAL:
                raise
    return mods


def exception_classes():
    seen = {}
    for mod in vq3d_modules():
        for _, obj in inspect.getmembers(mod, inspect.isclass):
            if issubclass(obj, BaseException) and obj.__module__.startswith("vq3d"):
                seen[f"{obj.__module__}.{obj.__qualname__}"] = obj
    return seen


CLASSES = exception_classes()


def sample(cls):
    """An instance built from its constructor's signature: strings for text, 3 for numbers."""
    args = []
    for p in list(inspect.signature(cls.__init__).parameters.values())[1:]:
        if p.kind in (p.VAR_POSITIONAL, p.VAR_KEYWORD) or p.default is not p.empty:
            continue
        ann = str(p.annotation)
        args.append(3 if "int" in ann or "float" in ann else
                    ["ffmpeg", "-i", "x.mp4"] if "list" in ann else f"data/{p.name}.json")
    if not args:
        args = ["data/clip.json: field 'x' is wrong"]
    return cls(*args)


def test_the_walk_finds_the_known_classes():
    names = {c.__name__ for c in CLASSES.values()}
    assert {"InputError", "FFmpegError", "UnsafeIdError", "ConfigError", "DownloadError",
            "DependencyError"} <= names, names


@pytest.mark.parametrize("name", sorted(CLASSES))
def test_every_stage_error_is_a_vq3d_error_with_a_kind(name):
    """The stage runner reports any VQ3DError by its kind, without importing the modules' classes."""
    cls = CLASSES[name]
    assert issubclass(cls, VQ3DError), name
    exc = sample(cls)
    assert stage_runner.expected_failure(exc) == (cls.kind, stage_runner.one_line(str(exc)))
    assert cls.kind != VQ3DError.kind or cls is VQ3DError


@pytest.mark.parametrize("name", sorted(CLASSES))
def test_every_exception_pickles_with_its_message(name):
    exc = sample(CLASSES[name])
    back = pickle.loads(pickle.dumps(exc))
    assert type(back) is type(exc)
    assert str(back) == str(exc) and str(exc)
    assert back.args == exc.args
    assert vars(back) == vars(exc)


def test_ffmpeg_error_keeps_its_details():
    exc = FFmpegError.failed(["ffmpeg", "-i", "v.mp4"], 1, "a\nb\nUnknown encoder 'libx264'\n")
    back = pickle.loads(pickle.dumps(exc))
    assert str(back) == "ffmpeg exited with 1: a\nb\nUnknown encoder 'libx264'"
    assert (back.cmd, back.returncode, back.stderr) == (exc.cmd, 1, exc.stderr)
    err = InputError("clips/a.mp4", "has no video stream")
    assert pickle.loads(pickle.dumps(err)).path == "clips/a.mp4"


def _raise_in_worker(kind: str):
    if kind == "input":
        raise InputError("data/vq_val.json", "clip c1: field 'video_end_sec' is missing")
    raise FFmpegError.failed(["ffmpeg", "-i", "v.mp4"], 1, "Unknown encoder 'libx264'")


def pool_stage(kind: str):
    """A stage that fans out to a process pool, like synth and pose."""
    with ProcessPoolExecutor(2) as pool:
        return list(pool.map(_raise_in_worker, [kind, kind]))


@pytest.mark.parametrize("kind,line", [
    ("input", "bad input: data/vq_val.json: clip c1: field 'video_end_sec' is missing"),
    ("ffmpeg", "ffmpeg failed: ffmpeg exited with 1: Unknown encoder 'libx264'"),
])
def test_worker_failure_crosses_the_pool_as_one_line(kind, line, caplog):
    caplog.set_level(logging.ERROR, logger="vq3d")
    with pytest.raises(SystemExit):
        stage_runner.call_stage(f"{__name__}:pool_stage", {"kind": kind}, inputs={})
    messages = [r.getMessage() for r in caplog.records]
    assert messages == [line]
    assert not any("unexpected" in m or "BrokenProcessPool" in m for m in messages)


def test_synth_with_a_failing_ffmpeg_reports_its_line(tmp_path):
    # The case for real: `vq3d synth` renders scenes in 2 worker processes; their ffmpeg
    # cannot encode. The user sees ffmpeg's reason, not a pickling TypeError in BrokenProcessPool.
    fake = tmp_path / "ffmpeg"
    fake.write_text("#!/bin/sh\ncase \"$*\" in *-version*) echo 'ffmpeg version 0.0-fake'; exit 0;; esac\n"
                    "echo \"Unknown encoder 'libx264'\" >&2\nexit 1\n")
    fake.chmod(fake.stat().st_mode | stat.S_IXUSR)
    env = {**os.environ, "VQ3D_FFMPEG": str(fake), "PYTHONPATH": os.pathsep.join(sys.path)}
    res = subprocess.run([sys.executable, "-m", "vq3d", "synth", "--out", str(tmp_path / "synth"),
                          "--scenes", "2", "--clips-per-scene", "1", "--width", "64", "--height", "48",
                          "--clip-seconds", "1", "--workers", "2"],
                         capture_output=True, text=True, env=env, timeout=300)
    assert res.returncode == 1, res.stderr
    assert "Unknown encoder 'libx264'" in res.stderr
    assert "BrokenProcessPool" not in res.stderr and "Traceback" not in res.stderr
    assert "TypeError" not in res.stderr
    assert not (tmp_path / "synth").exists()
