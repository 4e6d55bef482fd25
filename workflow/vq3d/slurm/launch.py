"""`vq3d launch`: run the Snakemake controller itself as a Slurm job that requeues itself.

A multi-day run outlives any partition's time limit. submitit submits the controller; Slurm sends
it SIGUSR2 `--signal-delay` seconds before its limit; `Controller.checkpoint` then interrupts
Snakemake (SIGINT: it scancels its running jobs, whose partial outputs stay marked incomplete; a
SIGTERM would make it wait for them to finish) and hands submitit the same controller to requeue (`scontrol requeue`, same job id). The next life
unlocks the directory (a previous life may have died without cleaning up) and reruns
`snakemake --profile profiles/slurm --rerun-incomplete`, which skips everything finished.
One launcher per working directory: the unlock assumes no other controller runs there.
"""

from __future__ import annotations

import argparse
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import submitit
from submitit.helpers import Checkpointable, DelayedSubmission

REPO_PROFILE = Path(__file__).resolve().parents[3] / "profiles" / "slurm"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("-d", "--directory", type=Path, default=Path("."),
                        help="working directory of the run (default: .)")
    parser.add_argument("--profile", type=Path, default=REPO_PROFILE,
                        help=f"Snakemake profile (default: {REPO_PROFILE})")
    parser.add_argument("--time", type=int, default=3 * 24 * 60,
                        help="controller time limit per life, minutes (default: 3 days)")
    parser.add_argument("--signal-delay", type=int, default=120,
                        help="seconds before the limit at which the controller stops and requeues")
    parser.add_argument("--max-restarts", type=int, default=50,
                        help="most requeues after a time limit (default: 50)")
    parser.add_argument("--partition", default=os.environ.get("VQ3D_PARTITION"),
                        help="partition of the controller job (default: $VQ3D_PARTITION)")
    parser.add_argument("--account", default=os.environ.get("VQ3D_ACCOUNT"),
                        help="account of the controller job (default: $VQ3D_ACCOUNT)")
    parser.add_argument("--mem-gb", type=int, default=4)
    parser.add_argument("--cpus", type=int, default=2)
    parser.add_argument("--log-dir", type=Path, default=None,
                        help="submitit logs (default: <directory>/.snakemake/launch/)")
    parser.add_argument("--wait", action="store_true", help="block until the run ends")
    parser.add_argument("snakemake_args", nargs=argparse.REMAINDER,
                        help="extra snakemake arguments after --, e.g. -- --configfile my.yaml")


def _ignore_warning_signal() -> None:
    """In the Snakemake child: ignore SIGUSR2, the time-limit warning. Slurm sends it to every
    process of the job step (a new session does not escape it), and its default action would kill
    Snakemake on the spot, leaving its jobs running; checkpoint() stops it with SIGINT instead."""
    signal.signal(signal.SIGUSR2, signal.SIG_IGN)


class Controller(Checkpointable):
    """The Snakemake controller process; picklable, so submitit can requeue it."""

    def __init__(self, workdir: str, command: list[str], stop_timeout: float = 60):
        self.workdir = workdir
        self.command = command
        self.stop_timeout = stop_timeout
        self.lives = 0
        self._proc: subprocess.Popen | None = None

    def __getstate__(self):
        return {k: v for k, v in self.__dict__.items() if k != "_proc"}

    def __setstate__(self, state):
        self.__dict__.update(state, _proc=None)

    def _env(self) -> dict[str, str]:
        # The controller's own allocation must not leak into the jobs it submits (sbatch and srun
        # read SLURM_*/SBATCH_* defaults from the environment).
        return {k: v for k, v in os.environ.items()
                if k == "SLURM_CONF" or not k.startswith(("SLURM_", "SBATCH_", "SRUN_"))}

    def __call__(self) -> int:
        self.lives += 1
        env = self._env()
        print(f"vq3d launch: controller life {self.lives} in job "
              f"{os.environ.get('SLURM_JOB_ID', '?')}", flush=True)
        cancelled = cancel_orphans(self.workdir)
        if cancelled:
            print(f"vq3d launch: cancelled jobs left by a dead controller: {cancelled}", flush=True)
        subprocess.run(["snakemake", "--unlock", *self._extra_args()], cwd=self.workdir, env=env,
                       check=False)
        # Own session, SIGUSR2 ignored: the time-limit signal Slurm sends to the job step must not
        # stop Snakemake; checkpoint() does.
        print(f"vq3d launch: starting {' '.join(self.command)}", flush=True)
        self._proc = subprocess.Popen(self.command, cwd=self.workdir, env=env,
                                      start_new_session=True, preexec_fn=_ignore_warning_signal)
        # Poll rather than wait(): wait() holds a lock that would make poll() in checkpoint() (a
        # signal handler running in this same thread) always answer "still running".
        while (code := self._proc.poll()) is None:
            time.sleep(1)
        if code != 0:
            raise RuntimeError(f"snakemake exited with {code}; see the run's log above")
        return code

    def _extra_args(self) -> list[str]:
        """Arguments that pick the workflow (config, snakefile), needed by --unlock too."""
        keep, out, args = ("--snakefile", "-s", "--configfile", "--configfiles", "--config"), [], self.command
        for i, arg in enumerate(args):
            if arg in keep:
                out += [arg] + [a for a in args[i + 1:i + 2]]
        return out

    def checkpoint(self, *args, **kwargs) -> DelayedSubmission:
        proc = self._proc
        if proc is not None and proc.poll() is None:
            print("vq3d launch: time limit near; stopping snakemake to requeue", flush=True)
            # SIGINT: Snakemake cancels its running Slurm jobs and exits. (SIGTERM means "exit
            # after the running jobs finish", which the time limit does not leave time for.)
            proc.send_signal(signal.SIGINT)
            deadline = time.monotonic() + self.stop_timeout
            while proc.poll() is None and time.monotonic() < deadline:
                time.sleep(0.5)
            if proc.poll() is None:
                proc.kill()
        return DelayedSubmission(self, *args, **kwargs)


def _queued(ids: set[str]) -> set[str]:
    """Those of ids that squeue still lists (running, pending or completing)."""
    out = subprocess.run(["squeue", "-h", "-o", "%i"], capture_output=True, text=True)
    return ids & set(out.stdout.split())


def cancel_orphans(workdir: Path | str, wait_s: float = 600) -> list[str]:
    """scancel the jobs an earlier, hard-killed controller left running in this directory, and
    wait until they have left the queue (at most wait_s).

    The wait matters: scancel only sends SIGTERM, on which a job's Snakemake lets its rule run on
    until Slurm's KillWait. An orphan still writing when the next Snakemake builds its DAG can
    finish its output (and clear its incomplete marker) after the DAG took the half-written file
    as done. Once the orphans are gone, each output is either finished or still marked incomplete,
    and the rerun redoes the latter."""
    own = os.environ.get("SLURM_JOB_ID")
    out = subprocess.run(["squeue", "-h", "-o", "%i|%Z|%j"], capture_output=True, text=True)
    ids = [jid for jid, wd, name in (ln.split("|", 2) for ln in out.stdout.splitlines() if ln)
           if Path(wd) == Path(workdir) and jid != own and name != "vq3d-controller"]
    if not ids:
        return ids
    subprocess.run(["scancel", *ids], check=False)
    deadline = time.monotonic() + wait_s
    while (left := _queued(set(ids))) and time.monotonic() < deadline:
        time.sleep(1)
    if left:
        print(f"vq3d launch: warning: cancelled jobs {sorted(left)} still in the queue after "
              f"{wait_s:.0f} s; starting snakemake anyway", file=sys.stderr, flush=True)
    return ids


def snakemake_command(profile: Path, extra: list[str]) -> list[str]:
    return ["snakemake", "--profile", str(profile), "--rerun-incomplete", *extra]


def submit(args: argparse.Namespace) -> submitit.Job:
    workdir = args.directory.resolve()
    if not args.profile.is_dir():
        raise SystemExit(f"vq3d launch: profile folder not found: {args.profile}")
    extra = [a for a in args.snakemake_args if a != "--"]
    log_dir = args.log_dir or workdir / ".snakemake" / "launch"
    executor = submitit.AutoExecutor(folder=log_dir / "%j", cluster="slurm",
                                     slurm_max_num_timeout=args.max_restarts)
    params = dict(timeout_min=args.time, cpus_per_task=args.cpus, mem_gb=args.mem_gb,
                  name="vq3d-controller", slurm_signal_delay_s=args.signal_delay)
    if args.partition:
        params["slurm_partition"] = args.partition
    if args.account:
        params["slurm_account"] = args.account
    executor.update_parameters(**params)
    # Snakemake gets half the warning time to stop; the rest is for submitit's requeue.
    controller = Controller(str(workdir), snakemake_command(args.profile.resolve(), extra),
                            stop_timeout=max(5, args.signal_delay // 2))
    return executor.submit(controller)


def run(args: argparse.Namespace) -> int:
    job = submit(args)
    print(f"vq3d launch: controller submitted as Slurm job {job.job_id}; "
          f"logs in {job.paths.stdout.parent}")
    if not args.wait:
        return 0
    # Poll squeue + the result file, not submitit's sacct-based state (absent without slurmdbd).
    while not job.paths.result_pickle.exists():
        alive = subprocess.run(["squeue", "-h", "-j", str(job.job_id)], capture_output=True,
                               text=True).stdout.strip()
        if not alive and not job.paths.result_pickle.exists():
            time.sleep(5)  # the result file can land just after the job leaves the queue
            if not job.paths.result_pickle.exists():
                print(f"vq3d launch: job {job.job_id} ended without a result; see "
                      f"{job.paths.stderr}", file=sys.stderr)
                return 1
        time.sleep(5)
    try:
        job.result()
    except Exception as exc:  # submitit re-raises the controller's failure here
        print(f"vq3d launch: run failed: {exc}", file=sys.stderr)
        return 1
    return 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="vq3d launch", description=__doc__.splitlines()[0])
    add_arguments(parser)
    return run(parser.parse_args(argv))


if __name__ == "__main__":
    sys.exit(main())
