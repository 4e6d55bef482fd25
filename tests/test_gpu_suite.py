"""benchmarks/gpu_suite.sh on a machine without a GPU (issue 17.5): it runs, the CPU parts report
their figures in the one JSON file, and every GPU part is recorded as skipped with the reason."""

import json
import subprocess

import pytest


@pytest.mark.slow
def test_gpu_suite_runs_on_cpu_with_gpu_parts_skipped(repo, tmp_path):
    out = tmp_path / "suite.json"
    run = subprocess.run(["bash", str(repo / "benchmarks" / "gpu_suite.sh"), "--tiny", "--cpu-only",
                          "--no-install", "--out", str(out), "--work", str(tmp_path / "work"),
                          "--budget", "400"], capture_output=True, text=True, timeout=600)
    assert run.returncode == 0, run.stdout[-3000:] + run.stderr[-3000:]
    report = json.loads(out.read_text())
    parts = report["parts"]
    for gpu_part in ("decode_cuda", "sfm_features_matching_gpu"):
        assert parts[gpu_part] == {"skipped": "no NVIDIA GPU"}, gpu_part
    assert parts["decode_cpu"]["frames"] == 20 and parts["decode_cpu"]["frames_per_s"] > 0
    cpu = parts["sfm_features_matching_cpu"]  # a 4 s clip: 20 or 21 frames by the end-frame rule
    assert parts["frames"]["count"] == cpu["frames"] in (20, 21)
    assert cpu["device"] == "cpu" and cpu["features_s"] > 0
    assert parts["detect"]["queries"] >= 1 and parts["detect"]["frames_per_s"] > 0
    assert parts["sfm_complete"]["device"] == "cpu" and parts["sfm_complete"]["registered"] >= 3
    assert all(p.get("peak_rss_mb", 1) > 0 for p in parts.values())
    assert 0 < report["wall_s"] < 400
    assert "skipped" in run.stdout  # the printed summary says what did not run


def test_gpu_suite_rejects_unknown_options(repo):
    run = subprocess.run(["bash", str(repo / "benchmarks" / "gpu_suite.sh"), "--bogus"],
                         capture_output=True, text=True, timeout=60)
    assert run.returncode == 2 and "unknown option --bogus" in run.stderr
