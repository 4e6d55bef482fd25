"""The workflow on a real single-node Slurm cluster started on this machine (tests/localcluster.py)
through profiles/slurm: fault injection on the tiny stand-in workflow of tests/slurm_fixtures.py
(seconds per job), and the real Snakefile on a tiny synthetic dataset (two clips).

Skipped where Slurm/munge binaries or root are missing; where they are present the fixture starts
the cluster itself. Overrides of the profile for the local cluster: partition by $VQ3D_PARTITION,
first status check after 2 s, 5 s latency wait.
"""

from __future__ import annotations

import base64
import json
import os
import re
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import yaml

from slurm_fixtures import make_tiny_workflow
import localcluster  # tests/localcluster.py: the single-node cluster (test infrastructure)
from vq3d import resources
from vq3d.config import load_config
from vq3d.slurm import launch, status

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
        snakefile: Path | None = None, **popen) -> subprocess.CompletedProcess | subprocess.Popen:
    cmd = ["snakemake", "--configfile", "config.yaml", *args]
    if snakefile:
        cmd[1:1] = ["-s", str(snakefile)]
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


def completed_clip(workdir: Path, clips) -> str | None:
    """A clip whose predict job Slurm reports COMPLETED and whose output is finished on disk.

    Complete on disk and unmarked is not enough while the job is still alive: a job cancelled in
    its last second (after its output and metadata are written, before it exits) has its output
    deleted by Snakemake's cleanup in the job, so it is redone, by design."""
    done = {r["comment"].rsplit("_", 1)[-1] for r in jobs_of(workdir, ("COMPLETED",))
            if r["comment"].startswith("rule_predict_wildcards_")}
    return next((c for c in clips if c in done and finished(workdir, f"results/predict/{c}.txt")), None)


def clip_outputs(workdir: Path, clip: str) -> list[Path]:
    return [workdir / f"results/{rel}" for rel in
            (f"frames/{clip}.txt", f"detect/{clip}.txt", f"pose/{clip}/sfm.txt", f"predict/{clip}.txt")]


@pytest.mark.slurm
def test_controller_sigkill_then_rerun_keeps_finished_clips(cluster, tmp_path):
    clips = ("c0", "c1", "c2")
    wd = make_tiny_workflow(tmp_path / "wf", clips=clips, nap=6)
    proc = smk(wd, popen=True)
    try:
        # One GPU: the clips' group jobs go one after another, so one clip is through while the
        # others still run or wait.
        first = wait_for(lambda: jobs_of(wd) and completed_clip(wd, clips), 300,
                         "a clip to finish while others run")
    finally:
        os.killpg(proc.pid, signal.SIGKILL)
        proc.wait()
    # The controller is gone; its Slurm jobs are not. Cancel them as `vq3d launch` does.
    assert launch.cancel_orphans(wd)
    done = {p: p.stat().st_mtime_ns for p in clip_outputs(wd, first)}
    assert all(finished(wd, p.relative_to(wd)) for p in done)
    assert subprocess.run(["snakemake", "--unlock", "--configfile", "config.yaml"], cwd=wd).returncode == 0
    res = smk(wd)
    assert res.returncode == 0, res.stdout + res.stderr
    assert all(complete(p) for p in outputs(wd)), "a half-written output survived the rerun"
    assert len(outputs(wd)) == 4 * len(clips) + 1
    assert {p: p.stat().st_mtime_ns for p in done} == done, "a finished output was recomputed"
    assert f"clip={first}" not in res.stdout + res.stderr
    assert "Nothing to be done" in smk(wd, "-n", profile=False).stdout


@pytest.mark.slurm
def test_cancel_orphans_waits_for_jobs_that_finish_after_sigterm(cluster, tmp_path):
    # A job's Snakemake takes scancel's SIGTERM as "finish the running rule": an orphan can still
    # write its output seconds after scancel. The next controller must not start before it is gone.
    # (CI caught this: the requeued controller took a half-written predict output as done.)
    out = tmp_path / "late.txt"
    script = tmp_path / "orphan.sh"
    script.write_text("#!/bin/bash\ntrap 'sleep 3; echo done > late.txt; exit 0' TERM\n"
                      "touch started\nwhile true; do sleep 0.2; done\n")
    res = subprocess.run(["sbatch", "--parsable", "-D", str(tmp_path), "-p", localcluster.PARTITION,
                          "-o", "/dev/null", str(script)], capture_output=True, text=True, check=True)
    jobid = res.stdout.strip().split(";")[0]
    try:
        wait_for(lambda: (tmp_path / "started").exists(), 120, "the orphan to start")
        assert launch.cancel_orphans(tmp_path) == [jobid]
        assert out.is_file() and out.read_text() == "done\n", "returned while the orphan still ran"
        assert not jobs_of(tmp_path, ("RUNNING", "PENDING", "COMPLETING"))
    finally:
        subprocess.run(["scancel", jobid], check=False)


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
    # slurmctld checks signal times on a 30 s tick and sends a signal that falls due before the next
    # tick at once: with --time 2 and --signal-delay 30, SIGUSR2 reaches each life 60-90 s in, 30 s
    # or more before the limit. Every predict job waits for a gate file, created once the second
    # life has started, so the first life cannot finish the run, however fast the machine.
    wd = make_tiny_workflow(tmp_path / "wf", clips=("c0", "c1"), nap=1, gate="data/gate")
    proc = subprocess.Popen(
        [sys.executable, "-m", "vq3d.slurm.launch", "-d", str(wd), "--time", "2",
         "--signal-delay", "30", "--wait", "--", "--configfile", "config.yaml", *FAST],
        stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, start_new_session=True)
    jobid = None
    try:
        jobid = wait_for(lambda: next((p.name for p in (wd / ".snakemake" / "launch").glob("*")
                                       if p.name.isdigit()), None), 60, "the controller job")
        life_log = wd / ".snakemake" / "launch" / jobid / f"{jobid}_0_log.out"
        # Open the gate once the second life's Snakemake runs (its orphans cancelled before).
        wait_for(lambda: life_log.is_file() and "controller life 2" in (t := life_log.read_text())
                 and t.count("vq3d launch: starting snakemake") >= 2, 300,
                 "the controller to be requeued")
        (wd / "data" / "gate").touch()
        out, _ = proc.communicate(timeout=300)
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
            if jobid:
                subprocess.run(["scancel", jobid], check=False)
    text = life_log.read_text()
    assert proc.returncode == 0, out + text
    assert f"submitted as Slurm job {jobid}" in out
    lives = re.findall(r"controller life (\d+) in job (\d+)", text)
    assert len(lives) >= 2 and {j for _, j in lives} == {jobid}, text
    assert "time limit near; stopping snakemake to requeue" in text and f"Requeued job {jobid}" in text
    assert "Job completed successfully" in text
    # The first life's Snakemake was interrupted: it cancelled its own jobs (gated predicts).
    smk_logs = "".join(p.read_text() for p in (wd / ".snakemake" / "log").glob("*.log"))
    assert "Terminating processes on user request" in smk_logs
    assert complete(wd / "results/submission.txt") and all(complete(p) for p in outputs(wd))
    dry = smk(wd, "-n", profile=False)
    assert "Nothing to be done" in dry.stdout + dry.stderr


# --- the real workflow ---------------------------------------------------------------------------

SNAKEFILE = REPO / "Snakefile"
# Two scenes with one clip each: the corrupt-video run breaks one scene's video, not the other's.
REAL = {"synth": {"seed": 3, "scenes": 2, "clips_per_scene": 1, "queries_per_clip": 1,
                  "width": 320, "height": 240, "clip_seconds": 8}}
GOOD, BAD = "synthclip-3-00-00", "synthclip-3-01-00"
BAD_VIDEO = "data/synth/videos/synthvid-3-01.mp4"


@pytest.fixture(scope="module")
def synth_dataset(cluster, tmp_path_factory):
    """One synthetic dataset for every real-workflow test (its synth rule run here, not on Slurm)."""
    base = tmp_path_factory.mktemp("synth")
    (base / "config.yaml").write_text(yaml.safe_dump(REAL))
    res = smk(base, "--cores", "1", "--until", "synth", profile=False, snakefile=SNAKEFILE)
    assert res.returncode == 0, res.stdout[-3000:] + res.stderr[-3000:]
    return base


@pytest.fixture(scope="module")
def real_runs(synth_dataset, tmp_path_factory):
    """Two runs of the real workflow through Slurm, side by side (they share only the cluster):
    "clean", and "corrupt", where one scene's video was truncated after the synth rule ran."""
    root = tmp_path_factory.mktemp("real")
    runs = {}
    for name in ("clean", "corrupt"):
        wd = root / name
        shutil.copytree(synth_dataset, wd)  # metadata and mtimes too: synth is not rerun
        extra = ()
        if name == "corrupt":
            video = wd / BAD_VIDEO
            os.truncate(video, video.stat().st_size // 4)
            extra = ("--retries", "0")  # a corrupt input fails the same way on every attempt
        runs[name] = (wd, smk(wd, *extra, snakefile=SNAKEFILE, popen=True))
    yield runs
    for wd, proc in runs.values():
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGTERM)
            proc.wait(timeout=120)


def finish(run, timeout: float = 900) -> tuple[Path, int, str]:
    wd, proc = run
    try:
        code = proc.wait(timeout=timeout)
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGTERM)
        raise
    return wd, code, (wd / "run.log").read_text()


@pytest.mark.slurm
@pytest.mark.slow
def test_real_workflow_runs_through_slurm(real_runs):
    wd, code, log = finish(real_runs["clean"])
    assert code == 0, log[-6000:]
    jobs = {j: show_job(j) for j in JOBID.findall(log)}
    gpu = [j for j in jobs.values() if "clip_gpu" in j["Comment"]]
    cpu = [j for j in jobs.values() if "clip_cpu" in j["Comment"]]
    # Two sbatch per clip; synth was done before, the global rules run in the controller.
    assert len(gpu) == 2 and len(cpu) == 2 and len(jobs) == 4, {j: v["Comment"] for j, v in jobs.items()}
    # frames -> detect || pose_sfm: one GPU, memory of the widest layer, each rule's request
    # following the clip (vq3d.resources); Snakemake sums a layer's jobs and takes the widest.
    config = load_config(overrides=REAL)
    size = resources.clip_sizes(config, {}, [GOOD])[GOOD]
    mem = {r: resources.mem_mb(r, size, config, 1) for r in ("frames", "detect", "pose_sfm")}
    widest = max(mem["frames"], mem["detect"] + mem["pose_sfm"])
    assert widest < 24000  # the clip-scaled request, not the old one size for all
    for job in gpu:
        assert job["TresPerNode"] == "gres:gpu:1" and job["MinMemoryNode"] == f"{widest}M", job
        assert job["Partition"] == "debug" and job["JobState"] == "COMPLETED"
    for job in cpu:
        assert "TresPerNode" not in job and job["JobState"] == "COMPLETED", job
    metrics = json.loads((wd / "results" / "metrics.json").read_text())
    assert metrics["n_queries"] == 2
    for clip in (GOOD, BAD):
        assert (wd / f"results/report/trajectory/{clip}.png").is_file()
    dry = smk(wd, "-n", profile=False, snakefile=SNAKEFILE)
    assert dry.returncode == 0 and "Nothing to be done" in dry.stdout + dry.stderr


@pytest.mark.slurm
@pytest.mark.slow
def test_real_workflow_corrupt_video_fails_its_clip_alone(real_runs):
    wd, code, log = finish(real_runs["corrupt"])
    assert code != 0
    # The clip with the broken video fails in frames with one line naming the file ...
    reason = f"bad input: {BAD_VIDEO}: not a readable video, truncated or corrupt"
    assert reason in (wd / f"results/logs/frames/{BAD}.log").read_text()
    assert not (wd / f"results/clips_frames/{BAD}").exists()
    # ... the other clip goes to the end of its per-clip stages (the global ones need both) ...
    assert (wd / f"results/predict/{GOOD}.json").is_file()
    assert (wd / f"results/report/trajectory/{GOOD}.png").is_file()
    assert not (wd / "results/metrics.json").exists()
    # ... and the run ends naming the failure, its reason and its log.
    end = log[log.rindex("vq3d: failed in this run"):]
    assert f"results/logs/frames/{BAD}.log: {reason}" in end
    assert "Exiting because a job execution failed" in log
    states = status.collect(wd, ["-s", str(SNAKEFILE), "--configfile", "config.yaml"])
    assert states[BAD]["frames"] == {"state": "failed", "log": f"results/logs/frames/{BAD}.log"}
    assert all(s["state"] == "done" for s in states[GOOD].values()), states[GOOD]
    table = subprocess.run([sys.executable, "-m", "vq3d", "status", "-d", str(wd), "--",
                            "-s", str(SNAKEFILE), "--configfile", "config.yaml"],
                           capture_output=True, text=True)
    assert table.returncode == 1
    assert f"{BAD} frames: see results/logs/frames/{BAD}.log" in table.stdout


# --- without a cluster -------------------------------------------------------------------------

def parse_profile(monkeypatch, **env) -> dict:
    from snakemake.profiles import ProfileConfigFileParser

    for key in ("VQ3D_PARTITION", "VQ3D_ACCOUNT", "VQ3D_GPU_PARTITION", "VQ3D_GRES", "VQ3D_RENDER_GRES"):
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
    # Runtime and memory come from the rules (per clip, vq3d.resources), not the profile.
    assert not any("runtime" in r or "mem_mb" in r for r in bare["set-resources"] + bare["default-resources"])
    site = parse_profile(monkeypatch, VQ3D_PARTITION="long", VQ3D_ACCOUNT="proj",
                         VQ3D_GPU_PARTITION="gpu", VQ3D_GRES="gpu:a100:1")
    assert {"slurm_partition=long", "slurm_account=proj"} <= set(site["default-resources"])
    assert {"detect:slurm_partition=gpu", "detect:gres='gpu:a100:1'"} <= set(site["set-resources"])
    assert site["slurm-status-command"] == "squeue" and site["rerun-incomplete"] == "True"
    # the per-scan renders run on CPU nodes unless a GPU is asked for them
    assert not any(r.startswith("scan_refs:gres") for r in bare["set-resources"])
    render = parse_profile(monkeypatch, VQ3D_RENDER_GRES="gpu:1")
    assert "scan_refs:gres='gpu:1'" in render["set-resources"]


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
