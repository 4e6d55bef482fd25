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
    # Memory of a windowed SfM follows a window's SIFT pixels, not the clip: compare at one size.
    long_median = ClipSize(LONGEST.frames, MEDIAN.width, MEDIAN.height, MEDIAN.queries)
    for fn in (resources.runtime_minutes, resources.mem_mb):
        short, median, longest = (fn(rule, s, config, 1) for s in (SHORT, MEDIAN, long_median))
        assert short <= median <= longest, (fn.__name__, rule)
        assert fn(rule, MEDIAN, config, 2) > fn(rule, MEDIAN, config, 1)
        assert fn(rule, MEDIAN, config, 3) > fn(rule, MEDIAN, config, 2)
    # The others stay at the minimum (frames: 43 s measured for 2,401 frames of 1440×1080).
    if rule in ("detect", "pose_sfm", "pose_pnp"):
        assert resources.runtime_minutes(rule, SHORT, config, 1) < \
            resources.runtime_minutes(rule, LONGEST, config, 1)


def test_sfm_request_is_not_one_size_for_all():
    config = defaults()
    # The old profile asked 480 min for every SfM; a demo clip needs minutes, a median real clip
    # most of an hour (twice its measured 1440×1080 cost).
    assert resources.runtime_minutes("pose_sfm", SHORT, config, 1) <= 15
    assert 30 <= resources.runtime_minutes("pose_sfm", MEDIAN, config, 1) <= 60
    assert resources.mem_mb("pose_sfm", MEDIAN, config, 1) <= 8000  # issue #17's memory goal


# One `benchmarks/scaling.py` run on the quiet 2-core machine, default configuration, 1440×1080,
# 4 queries (docs/benchmarks.md, "The cost model behind the Slurm requests"): wall seconds per
# stage and peak MB (the stage's process plus ffmpeg for frames).
MEASURED = {
    601: {"frames": (10.9, 156), "detect": (59.2, 468), "pose_sfm": (239.9, 401),
          "pose_register": (8.1, 342), "pose_pnp": (93.4, 431)},
    2401: {"frames": (43.2, 190), "detect": (226.6, 503), "pose_sfm": (892.8, 433),
           "pose_register": (25.3, 392), "pose_pnp": (298.7, 441)},
}
WHOLE_601_SFM = 426.1  # one mapping of the 601 frames, exhaustive loop pairs ("before")


@pytest.mark.parametrize("frames", sorted(MEASURED))
def test_predictions_follow_the_measured_stages(frames):
    """The cost model predicts what the stages measured, from above and not by much: the dry-run's
    hours are a forecast, and the requests (×SAFETY) cover the job with room to spare."""
    config = defaults()
    size = ClipSize(frames, 1440, 1080, 4)
    for rule, (secs, peak_mb) in MEASURED[frames].items():
        ratio = resources.predicted_seconds(rule, size, config) / secs
        # PnP's share of frames is a guess at DAG time (SfM's misses are unknown): wider bound.
        assert 0.9 <= ratio <= (2.0 if rule == "pose_pnp" else 1.5), (rule, ratio)
        assert resources.runtime_minutes(rule, size, config, 1) * 60 >= 1.8 * secs, rule
        assert resources.mem_mb(rule, size, config, 1) >= 3 * peak_mb, rule


def test_predicted_sfm_covers_one_mapping_of_a_whole_clip():
    """Without windows incremental mapping grows with the square of the clip: the quadratic term
    fits the one mapping of 601 frames as well as the windowed runs."""
    config = defaults()
    config["pose"]["sfm_window_frames"] = 0
    ratio = resources.predicted_seconds("pose_sfm", ClipSize(601, 1440, 1080), config) / WHOLE_601_SFM
    assert 0.8 <= ratio <= 1.5
    long_whole = resources.predicted_seconds("pose_sfm", MEDIAN, config)
    assert long_whole > 2 * resources.predicted_seconds("pose_sfm", MEDIAN, defaults())


def test_detection_is_one_pass_for_all_queries():
    config = defaults()
    one, four = (resources.predicted_seconds("detect", ClipSize(2401, 1440, 1080, q), config)
                 for q in (1, 4))
    assert four < 1.3 * one  # measured: each query after the first adds 5–7 % (features backend)
    config["detect"]["backend"] = "siamrcnn"  # the model runs per query and frame
    one, four = (resources.predicted_seconds("detect", ClipSize(2401, 1440, 1080, q), config)
                 for q in (1, 4))
    assert four > 3.5 * one


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
