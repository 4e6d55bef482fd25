"""The whole workflow on a tiny synthetic dataset: runs end to end, resumes, recomputes nothing."""

import json
import re
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
    assert len(frames) == 41  # 8 s at 5 fps, end frame included (Ego4D)
    assert frames[0].name == "color_0000000.jpg"


@pytest.mark.slow
def test_report_holds_the_figures(repo, finished_run):
    report = finished_run / "report.html"
    cmd = [sys.executable, "-m", "snakemake", "-s", str(repo / "Snakefile"), "-d", str(finished_run),
           "--configfile", str(finished_run / "config.yaml"), "--report", str(report)]
    run = subprocess.run(cmd, capture_output=True, text=True, timeout=600)
    assert run.returncode == 0, run.stdout[-3000:] + run.stderr[-3000:]
    html = report.read_text()
    for name in ("pose_coverage.png", "synthclip-3-00-00.png", "metrics.html", "metrics.json"):
        assert name in html, name


@pytest.mark.slow
def test_rerun_has_nothing_to_do_and_resumes_only_what_is_missing(repo, finished_run):
    dry = snakemake(repo, finished_run, "-n")
    assert dry.returncode == 0
    assert "Nothing to be done" in dry.stdout + dry.stderr
    # A run that died after one clip's posing: that clip's prediction and everything after it are
    # missing. Only those are redone, nothing upstream of them.
    results = finished_run / "results"
    for lost in ["predict/synthclip-3-00-01.json", "submission.json", "metrics.json", "per_query.csv"]:
        (results / lost).unlink()
    dry = snakemake(repo, finished_run, "-n")
    out = dry.stdout
    table = out.split("Job stats:")[1].split("total")[0]
    counts = {m[1]: int(m[2]) for m in re.finditer(r"^(\w+)\s+(\d+)$", table, re.M)}
    assert counts["predict"] == 1 and counts["submission"] == counts["evaluate"] == 1, counts
    for upstream in ("synth", "frames", "detect", "pose_sfm", "pose_pnp", "pose_merge"):
        assert upstream not in counts, (upstream, counts)
    assert "wildcards: clip=synthclip-3-00-01" in out
    assert "wildcards: clip=synthclip-3-00-00" not in out  # the other clip is complete


@pytest.mark.slow
def test_changing_a_merge_key_reruns_merge_not_sfm(repo, finished_run):
    """Issue #12: on the finished run, a merge-only threshold reruns pose_merge (and what reads its
    output), never pose_sfm; Snakemake's own params trigger decides (a real dry-run)."""
    changed = finished_run / "changed.yaml"
    changed.write_text(yaml.safe_dump({**TINY, "pose": {"max_disagreement_m": 0.5}}))
    cmd = [sys.executable, "-m", "snakemake", "-s", str(repo / "Snakefile"), "-d", str(finished_run),
           "--configfile", str(changed), "-n", "--rerun-triggers", "params"]
    dry = subprocess.run(cmd, capture_output=True, text=True, timeout=600)
    assert dry.returncode == 0, dry.stderr[-3000:]
    blocks = re.findall(r"rule (\w+):\n(.*?)(?=\n\s*\n|\Z)", dry.stdout, re.S)
    params_changed = {rule for rule, body in blocks if re.search(r"reason:.*[Pp]arams", body)}
    assert params_changed == {"pose_merge"}, dry.stdout[-3000:]
    assert "pose_sfm" not in {rule for rule, _ in blocks}
