"""The real-data path, end to end: `dataset.kind: ego4d` on the Ego4D-shaped replica, val and test.

The real ego4d CLI downloads the annotations, the 3d scans and (in the workflow's own download
rule) every canonical clip from a local S3; every stage runs — frames, detection, SfM,
registration through EgoLoc-style geo_register renders, PnP against renders of the scan's mesh,
merge, prediction — and the submission (and, on val, the metrics) are written. The replica's
ground truth is the synthetic world's, so its val metrics must be within the synthetic demo's
bounds (Succ and QwP >= 95 %). CI-sized: two scenes of one 12 s clip each at 1/4 of Ego4D's
resolutions (480x270 and 360x270), 30 fps."""

from __future__ import annotations

import importlib.util
import json

import pytest

pytest.importorskip("moto.server")
pytest.importorskip("ego4d")

CONF = {"seed": 0, "scenes": 2, "clips_per_scene": 1, "queries_per_clip": 2, "clip_seconds": 12, "scale": 4}
# CI-sized reference renders of the scans (the defaults render 150 views at 640x480)
EXTRA = {"scan_refs": {"width": 320, "height": 240, "max_views": 40, "geo": 12}}
STAGES = ("download", "frames", "detect", "pose_sfm", "pose_register", "pose_pnp", "pose_merge", "predict")


def _harness(repo):
    spec = importlib.util.spec_from_file_location("replica_e2e", repo / "benchmarks" / "replica_e2e.py")
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


@pytest.fixture(scope="module")
def replica_run(repo, tmp_path_factory):
    work = tmp_path_factory.mktemp("replica_e2e")
    report = _harness(repo).run(work, CONF, extra=EXTRA, corrupt=True)
    return work, report


@pytest.mark.slow
def test_replica_e2e_val_and_test(replica_run):
    work, report = replica_run
    for split, r in report["runs"].items():
        assert r["returncode"] == 0, f"{split}: {r['log_tail']}"
    clips = report["clips"]
    replica = work / "replica" / "ego4d" / "v2" / "clips"
    for cuid in clips:  # fetched by the workflow's download rule through the real CLI
        assert (work / "data/ego4d/clips" / f"{cuid}.mp4").read_bytes() == (replica / f"{cuid}.mp4").read_bytes()
    for split in ("val", "test"):
        results = work / f"results_{split}"
        for stage in STAGES:
            if stage == "download" and split == "test":
                continue  # the test run shares the data folder: its clips are already there
            for cuid in clips:
                assert (results / "logs" / stage / f"{cuid}.log").is_file(), (split, stage, cuid)
        for cuid in clips:
            reg = json.loads((results / "pose" / cuid / "registration.json").read_text())
            ok = [m for m in reg["models"] if m["status"] == "ok"]
            assert ok and ok[0]["renders_inliers"] >= 3, (split, cuid, reg)
            pnp = json.loads((results / "pose" / cuid / "pnp.json").read_text())
            assert pnp["posed"], (split, cuid, "PnP against the mesh renders posed no frame", pnp["failed"][:3])
        assert (results / "submission.json").is_file()


@pytest.mark.slow
def test_replica_val_metrics_within_the_demo_bounds(replica_run):
    _, report = replica_run
    m = report["runs"]["val"]["metrics"]
    assert m["n_queries"] >= 3
    assert m["succ"] >= 95 and m["qwp"] >= 95, m


@pytest.mark.slow
def test_replica_test_submission_is_valid(replica_run):
    from vq3d.formats.submission import validate_file

    work, _ = replica_run
    template = work / "replica/episodic-memory/VQ3D/data/vq3d_test_unannotated_template.json"
    check = validate_file(work / "results_test" / "submission.json", template)
    assert check.ok, check.problems
    assert check.n_world == check.n_queries and check.n_pose == check.n_queries


@pytest.mark.slow
def test_replica_corrupted_clip_fails_alone_then_finalize(replica_run):
    """One clip's video damaged at the source: the --keep-going run ends naming that clip as
    failed (its frames job), the other clip finishes, and `vq3d finalize` writes a valid
    submission and the metrics over all the split's queries."""
    from vq3d.formats.submission import validate_file

    work, report = replica_run
    c = report["corrupt"]
    bad = c["clip"]
    good = [u for u in report["clips"] if u != bad]
    assert c["returncode"] != 0
    assert bad in c["log_tail"] and "frames" in c["log_tail"], c["log_tail"][-3000:]
    results = work / "results_corrupt"
    assert not (results / "predict" / f"{bad}.json").exists()
    assert all((results / "predict" / f"{u}.json").is_file() for u in good)
    assert c["finalize_returncode"] == 0, c["finalize_out"]
    assert f"failed clip {bad}: frames:" in c["finalize_out"]
    final = results / "final"
    failed = (final / "failed_clips.tsv").read_text().splitlines()
    assert len(failed) == 2 and failed[1].split("\t")[:2] == [bad, "frames"]
    ann = work / "data/ego4d/v2/annotations/vq3d_val.json"
    check = validate_file(final / "submission.json", ann)
    assert check.ok, check.problems
    metrics = json.loads((final / "metrics.json").read_text())
    assert metrics["n_queries"] == report["runs"]["val"]["metrics"]["n_queries"]  # all queries
    assert 0 < metrics["qwp"] < 100 and check.n_world < check.n_queries
