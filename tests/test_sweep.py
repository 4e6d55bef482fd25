"""Configuration sweep (issue 16): synthetic configurations the other tests do not use — seeds,
resolutions, source frame rates, query counts, presets — each run must complete and report its
metrics. Detect slices (synth → frames → detect) for most, one full workflow run; the grid is
benchmarks/sweep.py's `ci` grid (its `large` grid is the benchmark in docs/benchmarks.md)."""

import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "benchmarks"))
import sweep  # noqa: E402

RUNS = sweep.ci_grid()


@pytest.fixture(scope="module")
def work(tmp_path_factory):
    return tmp_path_factory.mktemp("sweep")


@pytest.mark.parametrize("run", [pytest.param(r, marks=[pytest.mark.slow] if r.kind == "full" else [])
                                 for r in RUNS], ids=[r.name for r in RUNS])
def test_run_completes_and_reports_metrics(run, work):
    result = sweep.execute(run, work)
    assert result["status"] == "ok", (result["error"], (work / run.name / "crash.txt").read_text())
    m = result["metrics"]
    assert m["queries"] >= 1 and m["clips"] == run.scenes * run.clips_per_scene
    # Every query is accounted for: a peak, or no peak with the reason (checked in the metrics).
    assert m["with_peak"] + len(m["no_peak"]) == m["queries"]
    if run.kind == "full":
        assert m["n_queries"] == m["queries"]
        for key in ("succ", "qwp", "succ_star", "l2", "angle"):
            assert key in m
        assert m["qwp"] is not None


def test_issue16_configuration_gives_every_boxed_query_a_peak(work):
    # Seed 0, 192×144, 10 fps, 3 queries per clip: detect crashed on clip synthclip-0-00-00 (a
    # peak on frame 2, between boxes on 0, 1, 3, 4), and queries with a few boxes got no peak.
    run = RUNS[0]
    assert (run.seed, run.width, run.height, run.source_fps, run.queries_per_clip) == (0, 192, 144, 10, 3)
    from vq3d.formats.clip_detections import read_clip_detections

    if not (work / run.name / "detect").is_dir():  # run alone (-k): the sweep test did not run it
        assert sweep.execute(run, work)["status"] == "ok"
    det = read_clip_detections(work / run.name / "detect" / "synthclip-0-00-00.json")
    for q in det.queries:
        boxed = {f for f, boxes in q.frames if boxes}
        assert bool(q.peaks) == bool(boxed), q.key
        assert all(p.frame in boxed for p in q.peaks), q.key
        assert q.reason is None if q.peaks else "no frame" in q.reason
