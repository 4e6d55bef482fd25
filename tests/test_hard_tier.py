"""The whole workflow on a CI-sized hard-tier dataset (synth.preset: hard, scale: ci; 1 scene,
1 clip, 2 queries at 10 fps): it completes, accounts for every query and every frame, and reaches
at least the figures measured on it (benchmarks/tiers.py gives the full table, docs/benchmarks.md).

The floors below were measured with the default config on seeds 3 (this test) and 4 (a seed the
test does not run): frames posed 77 / 57 of 81 (SfM 52 / 39), 108 / 118 s wall on the shared
2-core machine under load; with `detect.features.colour: auto` (plain crops get the colour cue)
and the scan-surface depth fallback, Succ 50 / 50 %, QwP 50 / 50 % (one of the two queries each;
posed 77 / 54, SfM 54 / 38 of 81). Before those two, Succ and QwP were 0 on both seeds. With
predict.crop_anchor_m and pose_merge's Sim(3) check: Succ 50 / 100 %, QwP 50 / 100 %,
posed 78 / 76 of 81 (SfM 54 / 38). With the synthetic scans' reference views planned as scan_refs
plans a real scan's (round 4): Succ 100 / 100 %, QwP 100 / 100 %, posed 81 / 81 (SfM 54 / 38)."""

import json
import subprocess
import sys

import pytest
import yaml

SEED = 3
SYNTH = {"preset": "hard", "scale": "ci", "scenes": 1, "clips_per_scene": 1, "queries_per_clip": 2,
         "source_fps": 10}


def run_hard(repo, workdir, seed: int) -> dict:
    """Run the workflow on the CI-sized hard tier; the figures this test checks."""
    (workdir / "config.yaml").write_text(yaml.safe_dump({"synth": {**SYNTH, "seed": seed}}))
    cmd = [sys.executable, "-m", "snakemake", "-s", str(repo / "Snakefile"), "-d", str(workdir),
           "--cores", "2", "--configfile", str(workdir / "config.yaml")]
    run = subprocess.run(cmd, capture_output=True, text=True, timeout=900)
    assert run.returncode == 0, run.stdout[-4000:] + run.stderr[-4000:]
    data, results = workdir / "data" / "synth", workdir / "results"
    metrics = json.loads((results / "metrics.json").read_text())
    gt_q = json.loads((data / "gt" / "queries.json").read_text())
    (clip, info), = json.loads((data / "gt" / "clips.json").read_text()).items()
    summary = json.loads((results / "pose" / clip / "summary.json").read_text())
    det = json.loads((results / "peaks" / f"{clip}.json").read_text())
    return {"metrics": metrics, "gt_queries": gt_q, "n_frames": info["n_frames"], "posed": summary["posed"],
            "summary": summary, "detections": det}


@pytest.fixture(scope="module")
def hard_run(repo, tmp_path_factory):
    return run_hard(repo, tmp_path_factory.mktemp("hard_tier"), SEED)


# Measured (default config): seed 3 / seed 4. Floors: the lower of the two, frames minus ~10 %;
# Succ and QwP as measured: they move in steps of 50 (two queries), and both seeds reach 100.
FIGURES = {"posed_frames_min": 72,   # 81 / 81 of 81 (78 / 76 with the old 24 reference views)
           "sfm_frames_min": 30,     # 54 / 38
           "succ_min": 100.0,        # 100 / 100 % (50 / 100 with the old views)
           "qwp_min": 100.0}         # 100 / 100 %


def test_hard_tier_runs_and_accounts_for_every_query_and_frame(hard_run):
    m, posed = hard_run["metrics"], hard_run["posed"]
    assert len(hard_run["gt_queries"]) >= 1
    assert m["n_queries"] == len(hard_run["gt_queries"])
    assert sum(posed.values()) == hard_run["n_frames"]
    assert set(posed) == {"sfm", "pnp", "interpolated", "none"}
    for key in ("succ", "succ_star", "qwp", "l2", "angle"):
        assert key in m
    # every query has a peak or a reason (predict then lifts the visual crop)
    for q in hard_run["detections"]["queries"]:
        assert q["peaks"] or q.get("reason"), q


def test_hard_tier_reaches_the_measured_figures(hard_run):
    posed = hard_run["posed"]
    assert hard_run["n_frames"] - posed["none"] >= FIGURES["posed_frames_min"], posed
    assert posed["sfm"] >= FIGURES["sfm_frames_min"], posed
    m = hard_run["metrics"]
    assert m["succ"] >= FIGURES["succ_min"] and m["qwp"] >= FIGURES["qwp_min"], m
