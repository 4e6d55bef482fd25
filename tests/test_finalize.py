"""A split that survives a failed clip: a small synthetic run with one clip's video corrupted fails
that clip's jobs alone; `vq3d finalize` then writes a valid submission (the failed clip's queries
null), metrics over all queries and the list of failed clips with their reasons."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest
import yaml

from vq3d.formats.failures import read_failed_clips

TWO_VIDEOS = {
    "synth": {"seed": 5, "scenes": 2, "clips_per_scene": 1, "queries_per_clip": 2,
              "width": 320, "height": 240, "clip_seconds": 6},
}


def snakemake(repo, workdir, *args, timeout=1200):
    # targets first: --configfile takes every word after it
    cmd = [sys.executable, "-m", "snakemake", *args, "-s", str(repo / "Snakefile"), "-d", str(workdir),
           "--cores", "2", "--configfile", str(workdir / "config.yaml")]
    return subprocess.run(cmd, capture_output=True, text=True, timeout=timeout)


@pytest.mark.slow
def test_corrupt_clip_fails_alone_and_finalize_writes_submission_and_metrics(repo, tmp_path):
    (tmp_path / "config.yaml").write_text(yaml.safe_dump(TWO_VIDEOS))
    run = snakemake(repo, tmp_path, "synth")
    assert run.returncode == 0, run.stderr[-3000:]
    videos = sorted((tmp_path / "data" / "synth").rglob("*.mp4"))
    assert len(videos) == 2
    videos[1].write_bytes(b"not a video any more\n" * 64)

    run = snakemake(repo, tmp_path, "--keep-going")
    assert run.returncode != 0
    results = tmp_path / "results"
    predicted = sorted(p.stem for p in (results / "predict").glob("*.json"))
    assert len(predicted) == 1  # the healthy clip went all the way
    assert not (results / "submission.json").exists()

    fin = subprocess.run([sys.executable, "-m", "vq3d", "finalize", "--configfile", "config.yaml"],
                         cwd=tmp_path, capture_output=True, text=True, timeout=300)
    assert fin.returncode == 0, fin.stderr[-3000:]
    failed = read_failed_clips(results / "final" / "failed_clips.tsv")
    assert len(failed) == 1 and failed[0].clip_uid not in predicted
    assert failed[0].stage == "frames" and failed[0].log.endswith(f"frames/{failed[0].clip_uid}.log")
    assert str(videos[1].name) in failed[0].reason or "ffmpeg" in failed[0].reason.lower()
    assert f"failed clip {failed[0].clip_uid}: frames:" in fin.stderr

    # the submission validates against the template; the failed clip's queries are null
    from vq3d.dataset import dataset_files
    from vq3d.config import load_config
    from vq3d.formats.submission import validate
    files = dataset_files(load_config(tmp_path / "config.yaml"))
    template = json.loads((tmp_path / files["template"]).read_text())
    sub = json.loads((results / "final" / "submission.json").read_text())
    assert validate(sub, template).ok
    by_clip = {c["clip_uid"]: c for v in sub["videos"] for c in v["clips"]}

    def submitted(clip):
        return [q.get("pred_3d_vec_world") for a in by_clip[clip]["annotations"] for q in a["query_sets"].values()]

    assert submitted(failed[0].clip_uid) and all(p is None for p in submitted(failed[0].clip_uid))
    # the healthy clip's predictions are carried over as its predict stage wrote them
    own = json.loads((results / "predict" / f"{predicted[0]}.json").read_text())["queries"]
    assert sorted(map(str, submitted(predicted[0]))) == sorted(str(q["pred_3d_vec_world"]) for q in own)
    gt = json.loads((tmp_path / files["annotations"]).read_text())
    per_clip = {c["clip_uid"]: sum(len(a["query_sets"]) for a in c["annotations"])
                for v in gt["videos"] for c in v["clips"]}
    metrics = json.loads((results / "final" / "metrics.json").read_text())
    # over all queries of the split, the failed clip's included (as queries without prediction)
    assert metrics["n_queries"] == sum(per_clip.values())
    with_pose = sum(q["query_frame_pose"] is not None for q in own)
    assert metrics["qwp"] == pytest.approx(100 * with_pose / sum(per_clip.values()))


def test_sfm_that_registers_nothing_is_a_result_with_reasons(tmp_path):
    """Data outcomes are not errors: on frames with nothing to match (a lens cap on), SfM, the
    registration, PnP and the merge each write their output, with the reason, and exit cleanly."""
    import numpy as np
    import cv2
    from conftest import REPO
    from vq3d.config import validate_config
    from vq3d.pose import merge, pnp, register, sfm
    sys.path.insert(0, str(REPO / "benchmarks"))
    from pose_minisynth import make_clip
    info = make_clip(tmp_path / "clip", seed=2, frames=3, width=320, geo_renders=4, refs=4)
    frames = tmp_path / "blank"
    frames.mkdir()
    for i in range(8):
        cv2.imwrite(str(frames / f"color_{i:07d}.jpg"), np.full((180, 320, 3), 90, np.uint8))
    conf = validate_config({})["pose"]
    scan, intr = tmp_path / "clip" / "scan", tmp_path / "clip" / "intrinsics.json"
    sfm.main(frames_dir=frames, intrinsics=intr, out_dir=tmp_path / "sfm", scan_uid=info["scan_uid"], conf=conf)
    assert json.loads((tmp_path / "sfm" / "sfm.json").read_text())["models"] == []
    register.main(sfm_dir=tmp_path / "sfm", out=tmp_path / "reg.json", scan_dir=scan, conf=conf)
    assert json.loads((tmp_path / "reg.json").read_text())["models"] == []
    pnp.main(frames_dir=frames, intrinsics=intr, out=tmp_path / "pnp.json", scan_dir=scan,
             scan_uid=info["scan_uid"], conf=conf)
    res = json.loads((tmp_path / "pnp.json").read_text())
    assert res["posed"] == [] and len(res["failed"]) == 8 and all(f["reason"] for f in res["failed"])
    merge.main(frames_dir=frames, sfm_dir=tmp_path / "sfm", registration=tmp_path / "reg.json",
               pnp=tmp_path / "pnp.json", poses=tmp_path / "poses.json", summary=tmp_path / "summary.json",
               scan_from_model=tmp_path / "scan_from_model.json",
               clip_uid="blank", conf=conf)
    poses = json.loads((tmp_path / "poses.json").read_text())["blank"]
    assert poses["good_poses"] == [False] * 8
    summary = json.loads((tmp_path / "summary.json").read_text())
    assert summary["posed"]["none"] == 8 if "none" in summary["posed"] else sum(summary["posed"].values()) == 0


def test_failure_reason_is_the_first_failed_stage_of_the_clip(tmp_path):
    """The clip's first failed stage in pipeline order, the shared per-scan render job included."""
    from vq3d.finalize import failure_reason
    logs = tmp_path / "logs"
    for rel, text in {"scan_refs/scan_001.log": "t ERROR vq3d: bad input: /s/scan_001: scan mesh holds no triangles\n",
                      "pose_pnp/clip-a.log": "t ERROR vq3d: bad input: later, and caused by the first\n",
                      "frames/clip-b.log": "t INFO vq3d: fine\n"}.items():
        (logs / rel).parent.mkdir(parents=True, exist_ok=True)
        (logs / rel).write_text(text)
    stage, reason, log = failure_reason(logs, "clip-a", "vid-a", "scan_001")
    assert (stage, reason) == ("scan_refs", "bad input: /s/scan_001: scan mesh holds no triangles")
    assert log.endswith("scan_refs/scan_001.log")
    stage, reason, log = failure_reason(logs, "clip-b", "vid-b", "scan_002")
    assert stage == "" and "not run yet" in reason and log == ""
