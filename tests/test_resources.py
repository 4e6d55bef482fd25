"""Resources that follow the clip (issue #17.4): per-clip runtime and memory from the clip's frame
count and resolution, grown with the attempt; the dry-run prints the predicted hours; the stages
get the rule's threads."""

from __future__ import annotations

import inspect
import subprocess
import sys

import pytest

from vq3d import resources
from vq3d.config import defaults
from vq3d.resources import ClipSize
from vq3d.stages import STAGES

from test_config_slices import Workflow

CLIP_RULES = ["frames", "detect", "pose_sfm", "pose_register", "pose_pnp", "pose_merge", "predict",
              "report_trajectory", "report_detections"]
SHORT = ClipSize(121, 640, 480, 2)          # the demo's clips
MEDIAN = ClipSize(2401, 1440, 1080, 4)      # Ego4D's median VQ3D clip (480 s at 5 fps)
LONGEST = ClipSize(4801, 1920, 1080, 4)     # its longest (960 s)


@pytest.mark.parametrize("rule", CLIP_RULES)
def test_longer_clips_and_retries_get_more(rule):
    config = defaults()
    secs = [resources.predicted_seconds(rule, s, config) for s in (SHORT, MEDIAN, LONGEST)]
    assert secs[0] < secs[1] < secs[2]
    for fn in (resources.runtime_minutes, resources.mem_mb):
        short, median, longest = (fn(rule, s, config, 1) for s in (SHORT, MEDIAN, LONGEST))
        assert short <= median <= longest, (fn.__name__, rule)
        assert fn(rule, MEDIAN, config, 2) > fn(rule, MEDIAN, config, 1)
        assert fn(rule, MEDIAN, config, 3) > fn(rule, MEDIAN, config, 2)
    if rule in ("frames", "detect", "pose_sfm", "pose_pnp"):  # the others stay at the minimum
        assert resources.runtime_minutes(rule, SHORT, config, 1) < \
            resources.runtime_minutes(rule, LONGEST, config, 1)


def test_sfm_request_is_not_one_size_for_all():
    config = defaults()
    # The old profile asked 480 min for every SfM; a demo clip needs minutes, a median real clip
    # (1440×1080: 2.56× the SIFT pixels of the 640×480 measurements) most of an hour.
    assert resources.runtime_minutes("pose_sfm", SHORT, config, 1) <= 15
    assert resources.predicted_seconds("pose_sfm", MEDIAN, config) > 1800
    assert resources.mem_mb("pose_sfm", MEDIAN, config, 1) <= 8000  # issue #17's memory goal


def test_predicted_sfm_matches_the_measured_figures():
    """The cost model passes through the measurements it was fitted to (640×480, 2 cores, one
    mapping of the whole clip), and does not under-ask for windowed SfM at 2,400 frames."""
    config = defaults()
    windowed = resources.predicted_seconds("pose_sfm", ClipSize(2400, 640, 480), config)
    assert windowed > 401.6  # SfM + registration, 300-frame windows (docs/benchmarks.md, scaling)
    config["pose"]["sfm_window_frames"] = 0
    config["pose"]["pnp_check_stride"] = 1  # the measurements ran PnP on every frame
    assert resources.predicted_seconds("pose_sfm", ClipSize(120, 640, 480), config) == \
        pytest.approx(60, rel=0.05)    # SfM 50–91 s at 120 frames (docs/benchmarks.md)
    assert resources.predicted_seconds("pose_sfm", ClipSize(960, 640, 480), config) == \
        pytest.approx(1020, rel=0.05)  # mapping ≈ 17 min of 21 at 960 frames (issue #17)
    assert resources.predicted_seconds("pose_pnp", ClipSize(960, 640, 480), config) == \
        pytest.approx(135 + 80, rel=0.35)  # PnP 135 s at 960 frames


@pytest.mark.anchors
def test_jobs_of_the_real_annotations_get_their_clip_resources(repo, tmp_path, anchors):
    from test_workflow import ego4d_config

    jobs = Workflow(repo, tmp_path).map_jobs(
        ego4d_config(anchors), lambda job, wf: (dict(job.resources), len(job.wildcards_dict)))
    sfm = {w: r for (rule, w), (r, _) in jobs.items() if rule == "pose_sfm"}
    assert len(sfm) == 44
    runtimes = sorted(r["runtime"] for r in sfm.values())
    assert runtimes[0] < runtimes[-1]  # clips of different lengths, different requests
    assert all(r["mem_mb"] <= 16000 for r in sfm.values())


def test_dry_run_prints_predicted_hours(repo, tmp_path):
    run = subprocess.run([sys.executable, "-m", "snakemake", "-s", str(repo / "Snakefile"), "-d",
                          str(tmp_path), "-n", "--configfile", str(repo / "config.yaml")],
                         capture_output=True, text=True, timeout=300)
    assert run.returncode == 0, run.stderr
    out = run.stdout + run.stderr
    assert "vq3d: predicted hours for 4 clip(s)" in out
    rows = [ln.split() for ln in out.splitlines() if ln.strip().startswith("synthclip-")]
    assert len(rows) == 4 and all(float(r[-1]) > 0 and float(r[-2]) > 0 for r in rows)
    assert any(ln.strip().startswith("total") for ln in out.splitlines())


@pytest.mark.parametrize("rule", ["synth", "frames", "detect", "pose_sfm", "pose_register", "pose_pnp"])
def test_multithreaded_stages_take_the_rules_threads(rule):
    """Stages that run pools get the rule's threads (vq3d.stage_runner passes `threads`)."""
    module, func = STAGES[rule].func.split(":")
    import importlib

    sig = inspect.signature(getattr(importlib.import_module(module), func)).parameters
    assert "threads" in sig and rule in resources.THREADS


def test_pnp_check_stride_shrinks_the_pnp_request():
    config = defaults()
    config["pose"]["pnp_check_stride"] = 1
    every = resources.predicted_seconds("pose_pnp", MEDIAN, config)
    config["pose"]["pnp_check_stride"] = 5
    checks = resources.predicted_seconds("pose_pnp", MEDIAN, config)
    assert 0.3 * every < checks < 0.6 * every  # 1/5 plus the frames SfM may leave


def test_windowed_sfm_request_grows_linearly_with_the_clip():
    """pose.sfm_window_frames bounds each mapping: the SfM request then grows with the frames, not
    their square (and a clip shorter than a window is asked exactly what it was before)."""
    config = defaults()
    config["pose"]["sfm_window_frames"] = 0
    whole = [resources.predicted_seconds("pose_sfm", s, config) for s in (MEDIAN, LONGEST)]
    config["pose"]["sfm_window_frames"] = 300
    assert resources.predicted_seconds("pose_sfm", SHORT, config) == \
        resources.predicted_seconds("pose_sfm", SHORT, defaults())
    windowed = [resources.predicted_seconds("pose_sfm", s, config) for s in (MEDIAN, LONGEST)]
    assert windowed[0] < whole[0] / 2 and windowed[1] < whole[1] / 3.5
    twice = ClipSize(2 * MEDIAN.frames - 1, MEDIAN.width, MEDIAN.height, MEDIAN.queries)
    doubled = resources.predicted_seconds("pose_sfm", twice, config)
    assert doubled / windowed[0] == pytest.approx(2, rel=0.05)  # twice the frames, twice the cost
    config["pose"]["sfm_window_overlap"] = 300
    with pytest.raises(ValueError, match="sfm_window_overlap"):
        resources.predicted_seconds("pose_sfm", MEDIAN, config)
