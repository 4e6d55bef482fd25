"""The workflow on a real single-node Slurm cluster started on this machine (vq3d.slurm.localcluster)
through profiles/slurm, with the tiny stand-in workflow of tests/slurm_fixtures.py.

Skipped where Slurm/munge binaries or root are missing; where they are present the fixture starts
the cluster itself. Overrides of the profile for the local cluster: partition by $VQ3D_PARTITION,
first status check after 2 s, 5 s latency wait.
"""

from __future__ import annotations

import base64
import os
import re
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from slurm_fixtures import make_tiny_workflow
from vq3d.slurm import launch, localcluster, status

REPO = Path(__file__).resolve().parents[1]
PROFILE = REPO / "profiles" / "slurm"
FAST = ["--slurm-init-seconds-before-status-checks", "2", "--latency-wait", "5"]
JOBID = re.compile(r"submitted with SLURM jobid (\d+)")


@pytest.fixture(scope="session")
def cluster():
    reason = localcluster.unavailable_reason()
    if reason:
        pytest.skip(reason)
    env = localcluster.up()
    os.environ.update(env)
    os.environ["VQ3D_PARTITION"] = localcluster.PARTITION
    return env


def smk(workdir: Path, *args: str, profile: bool = True, timeout: float = 400,
        **popen) -> subprocess.CompletedProcess | subprocess.Popen:
    cmd = ["snakemake", "--configfile", "config.yaml", *args]
    if profile:
        cmd[1:1] = ["--profile", str(PROFILE), *FAST]
    if popen:
        return subprocess.Popen(cmd, cwd=workdir, stdout=open(workdir / "run.log", "w"),
                                stderr=subprocess.STDOUT, start_new_session=True)
    return subprocess.run(cmd, cwd=workdir, capture_output=True, text=True, timeout=timeout)


def show_job(jobid: str) -> dict[str, str]:
    out = subprocess.run(["scontrol", "show", "job", "-o", jobid], capture_output=True,
                         text=True, check=True).stdout
    return dict(kv.split("=", 1) for kv in out.split() if "=" in kv)


def jobs_of(workdir: Path, states=("RUNNING",)) -> list[dict[str, str]]:
    out = subprocess.run(["squeue", "-h", "--states=all", "-o", "%i|%T|%Z|%k"],
                         capture_output=True, text=True, check=True).stdout
    rows = [dict(zip(("id", "state", "workdir", "comment"), ln.split("|", 3)))
            for ln in out.splitlines()]
    return [r for r in rows if Path(r["workdir"]) == workdir and r["state"] in states]


def wait_for(pred, timeout: float, what: str):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = pred()
        if value:
            return value
        time.sleep(0.5)
    raise AssertionError(f"timed out waiting for {what}")


def complete(path: Path) -> bool:
    return path.is_file() and path.read_text().endswith("complete\n")


def finished(workdir: Path, rel) -> bool:
    return complete(workdir / rel) and str(rel) not in status.incomplete_markers(workdir)


def outputs(workdir: Path) -> list[Path]:
    return sorted(p for p in (workdir / "results").rglob("*.txt") if "logs" not in p.parts)


@pytest.mark.slurm
def test_profile_runs_one_gpu_job_per_clip(cluster, tmp_path):
    wd = make_tiny_workflow(tmp_path / "wf", clips=("c0", "c1"))
    res = smk(wd)
    assert res.returncode == 0, res.stdout + res.stderr
    jobs = {j: show_job(j) for j in JOBID.findall(res.stdout + res.stderr)}
    groups = [j for j in jobs.values() if "clip_gpu" in j["Comment"]]
    predicts = [j for j in jobs.values() if j["Comment"].startswith("rule_predict")]
    # frames+detect+pose_sfm of a clip: one sbatch, one GPU, memory of detect+pose_sfm side by side.
    assert len(groups) == 2 and len(predicts) == 2 and len(jobs) == 4
    for job in groups:
        assert job["TresPerNode"] == "gres:gpu:1"
        assert job["MinMemoryNode"] == "24000M" and job["Partition"] == "debug"
        assert job["TimeLimit"] == "09:00:00"  # frames 60 + pose_sfm 480 minutes
    for job in predicts:
        assert "TresPerNode" not in job and job["MinMemoryNode"] == "4000M"
    assert all(complete(p) for p in outputs(wd))
    # Slurm logs are kept after success.
    assert len(list((wd / ".snakemake" / "slurm_logs").rglob("*.log"))) == 4
    dry = smk(wd, "-n", profile=False)
    assert dry.returncode == 0 and "Nothing to be done" in dry.stdout + dry.stderr


@pytest.mark.slurm
def test_controller_sigkill_then_rerun_keeps_finished_clips(cluster, tmp_path):
    wd = make_tiny_workflow(tmp_path / "wf", clips=("c0", "c1", "c2"), nap=6)
    proc = smk(wd, popen=True)
    try:
        # One GPU: clips go one after another, so one finishes while the others still wait.
        # Finished = complete on disk and seen finished by the controller (no incomplete marker);
        # a job that ended after the controller's last status check is redone, by design.
        first = wait_for(lambda: jobs_of(wd) and next(
            (c for c in ("c0", "c1", "c2") if finished(wd, f"results/predict/{c}.txt")), None),
            300, "a clip to finish while others run")
    finally:
        os.killpg(proc.pid, signal.SIGKILL)
        proc.wait()
    # The controller is gone; its Slurm jobs are not. Cancel them as `vq3d launch` does.
    assert launch.cancel_orphans(wd)
    done = {p: p.stat().st_mtime_ns for p in outputs(wd) if finished(wd, p.relative_to(wd))}
    assert wd / f"results/predict/{first}.txt" in done
    assert subprocess.run(["snakemake", "--unlock", "--configfile", "config.yaml"], cwd=wd).returncode == 0
    res = smk(wd)
    assert res.returncode == 0, res.stdout + res.stderr
    assert all(complete(p) for p in outputs(wd)), "a half-written output survived the rerun"
    assert {p: p.stat().st_mtime_ns for p in done} == done, "a finished output was recomputed"
    assert "Nothing to be done" in smk(wd, "-n", profile=False).stdout


@pytest.mark.slurm
def test_scancelled_job_is_retried(cluster, tmp_path):
    wd = make_tiny_workflow(tmp_path / "wf", clips=("c0",), nap=8)
    proc = smk(wd, popen=True)
    try:
        victim = wait_for(lambda: jobs_of(wd), 120, "a running Slurm job")[0]["id"]
        subprocess.run(["scancel", victim], check=True)
        assert proc.wait(timeout=400) == 0, (wd / "run.log").read_text()
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
    log = (wd / "run.log").read_text()
    assert f"JOB {victim} ON" in log and "CANCELLED" in log  # the job's Slurm log, shown
    assert "Trying to restart job" in log
    assert all(complete(p) for p in outputs(wd))


@pytest.mark.slurm
def test_corrupt_clip_fails_alone_and_is_named(cluster, tmp_path):
    wd = make_tiny_workflow(tmp_path / "wf", clips=("c0", "c1"), corrupt=("c1",))
    res = smk(wd, "--retries", "0")  # a corrupt input fails the same way on every attempt
    out = res.stdout + res.stderr
    assert res.returncode != 0
    assert complete(wd / "results/predict/c0.txt")
    assert not (wd / "results/frames/c1.txt").exists() and not (wd / "results/predict/c1.txt").exists()
    assert "bad input: data/c1.txt: not a video" in out
    assert re.search(r"Error in rule frames:.*?wildcards: clip=c1|Error in rule frames:(?s:.*)data/c1.txt", out)
    # `vq3d status` names the failure and its log.
    states = status.collect(wd, ["--configfile", "config.yaml"])
    assert states["c1"]["frames"] == {"state": "failed", "log": "results/logs/frames/c1.log"}
    assert all(s["state"] == "done" for s in states["c0"].values())


@pytest.mark.slurm
@pytest.mark.slow
def test_launch_requeues_controller_at_time_limit(cluster, tmp_path):
    # Lives of ~15-45 s (Slurm checks the signal time every ~30 s) on a run of a few minutes.
    wd = make_tiny_workflow(tmp_path / "wf", clips=("c0", "c1"), nap=2)
    res = subprocess.run(
        [sys.executable, "-m", "vq3d.slurm.launch", "-d", str(wd), "--time", "1",
         "--signal-delay", "30", "--wait", "--", "--configfile", "config.yaml", *FAST],
        capture_output=True, text=True, timeout=590)
    assert res.returncode == 0, res.stdout + res.stderr
    jobid = re.search(r"submitted as Slurm job (\d+)", res.stdout).group(1)
    life_log = (wd / ".snakemake" / "launch" / jobid / f"{jobid}_0_log.out").read_text()
    lives = re.findall(r"controller life (\d+) in job (\d+)", life_log)
    assert len(lives) >= 2 and {j for _, j in lives} == {jobid}, life_log
    assert complete(wd / "results/submission.txt")


# --- without a cluster -------------------------------------------------------------------------

def parse_profile(monkeypatch, **env) -> dict:
    from snakemake.profiles import ProfileConfigFileParser

    for key in ("VQ3D_PARTITION", "VQ3D_ACCOUNT", "VQ3D_GPU_PARTITION", "VQ3D_GRES"):
        monkeypatch.delenv(key, raising=False)
    for key, value in env.items():
        monkeypatch.setenv(key, value)
    monkeypatch.setenv("VQ3D_SLURM_STATUS_COMMAND", "squeue")
    with open(PROFILE / "profile.yaml") as stream:
        return ProfileConfigFileParser().parse(stream)


def test_profile_takes_site_settings_from_the_environment(monkeypatch):
    bare = parse_profile(monkeypatch)
    assert not any("slurm_partition" in r or "slurm_account" in r for r in bare["default-resources"])
    assert "frames:gres='gpu:1'" in bare["set-resources"]
    assert "pose_sfm:mem_mb=16000 * attempt" in bare["set-resources"]
    site = parse_profile(monkeypatch, VQ3D_PARTITION="long", VQ3D_ACCOUNT="proj",
                         VQ3D_GPU_PARTITION="gpu", VQ3D_GRES="gpu:a100:1")
    assert {"slurm_partition=long", "slurm_account=proj"} <= set(site["default-resources"])
    assert {"detect:slurm_partition=gpu", "detect:gres='gpu:a100:1'"} <= set(site["set-resources"])
    assert site["slurm-status-command"] == "squeue" and site["rerun-incomplete"] == "True"


def test_status_reports_done_failed_and_interrupted_stages(tmp_path):
    wd = make_tiny_workflow(tmp_path / "wf", clips=("c0", "c1", "c2"), nap=0, corrupt=("c1",))
    res = subprocess.run(["snakemake", "--profile", str(REPO / "profiles" / "local"), "--cores", "1",
                          "--configfile", "config.yaml"], cwd=wd, capture_output=True, text=True)
    assert res.returncode != 0 and "bad input: data/c1.txt" in res.stdout + res.stderr
    # c2's predict was interrupted: its output half-written and marked incomplete, as Snakemake
    # leaves it when the job is killed.
    key = base64.urlsafe_b64encode(b"results/predict/c2.txt").decode()
    (wd / ".snakemake" / "incomplete" / key).write_text('{"external_jobid": "999999"}')
    (wd / "results/predict/c2.txt").write_text("partial\n")
    states = status.collect(wd, ["--configfile", "config.yaml"])
    assert {r: s["state"] for r, s in states["c0"].items()} == dict.fromkeys(
        ("frames", "detect", "pose_sfm", "predict"), "done")
    assert states["c1"]["frames"] == {"state": "failed", "log": "results/logs/frames/c1.log"}
    assert states["c2"]["predict"]["state"] == "failed"
    assert states["c2"]["pose_sfm"]["state"] == "done"
    table = status.format_table(states)
    assert "c1 frames: see results/logs/frames/c1.log" in table
    assert status.main(["-d", str(wd), "--", "--configfile", "config.yaml"]) == 1
