"""The whole workflow on a tiny synthetic dataset: runs end to end, resumes, recomputes nothing."""

import json
import subprocess
import sys

import pytest
import yaml

TINY = {
    "synth": {"seed": 3, "scenes": 1, "clips_per_scene": 2, "queries_per_clip": 2,
              "width": 320, "height": 240, "clip_seconds": 8},
}


def snakemake(repo, workdir, *args, timeout=1500):
    cmd = [sys.executable, "-m", "snakemake", "-s", str(repo / "Snakefile"), "-d", str(workdir),
           "--cores", "2", "--configfile", str(workdir / "config.yaml"), *args]
    return subprocess.run(cmd, capture_output=True, text=True, timeout=timeout)


@pytest.fixture(scope="module")
def finished_run(repo, tmp_path_factory):
    workdir = tmp_path_factory.mktemp("demo")
    (workdir / "config.yaml").write_text(yaml.safe_dump(TINY))
    run = snakemake(repo, workdir)
    assert run.returncode == 0, run.stdout[-4000:] + run.stderr[-4000:]
    return workdir


@pytest.mark.slow
def test_demo_runs_end_to_end_and_scores(finished_run):
    metrics = json.loads((finished_run / "results" / "metrics.json").read_text())
    assert set(metrics) >= {"l2", "angle", "succ", "succ_star", "qwp", "n_queries"}
    assert metrics["n_queries"] == 4
    submission = json.loads((finished_run / "results" / "submission.json").read_text())
    assert submission["videos"], "submission has no videos"
    frames = sorted((finished_run / "results" / "clips_frames" / "synthclip-3-00-00").glob("color_*.jpg"))
    assert len(frames) == 40  # 8 s at 5 fps
    assert frames[0].name == "color_0000000.jpg"


@pytest.mark.slow
def test_rerun_has_nothing_to_do_and_resumes_only_what_is_missing(repo, finished_run):
    dry = snakemake(repo, finished_run, "-n")
    assert dry.returncode == 0
    assert "Nothing to be done" in dry.stdout + dry.stderr
    # Lose one clip's prediction: only it and what depends on it are redone.
    (finished_run / "results" / "predict" / "synthclip-3-00-01.json").unlink()
    dry = snakemake(repo, finished_run, "-n")
    out = dry.stdout
    assert "predict" in out and "synthclip-3-00-01" in out
    for upstream in ("rule frames", "rule pose_sfm", "rule detect", "rule synth"):
        assert upstream not in out, upstream
