"""A real single-node Slurm (munge + slurmctld + slurmd) on this machine, for tests and CI.

Everything lives under one directory (default /tmp/vq3d-slurm, or $VQ3D_SLURM_DIR); clients find
it through SLURM_CONF, which `up()` returns. Needs root and the Debian packages slurmctld, slurmd,
slurm-client and munge. The node advertises one GPU (a gres with a count and no device file) so
GPU requests are really scheduled, and more memory/CPUs than the machine has
(`SlurmdParameters=config_overrides`) so the workflow's real resource requests fit.
"""

from __future__ import annotations

import argparse
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

DEFAULT_DIR = Path(os.environ.get("VQ3D_SLURM_DIR", "/tmp/vq3d-slurm"))
PARTITION = "debug"
ETC_SLURM = Path("/etc/slurm")
NEEDED = ("munged", "slurmctld", "slurmd", "sbatch", "squeue", "sinfo", "scontrol")
BAD_NODE_STATES = ("down", "drain", "fail", "unk", "not_responding", "inval")


class ClusterError(RuntimeError):
    """The local cluster cannot be started (the message says why)."""


def search_path() -> str:
    """The PATH, plus /usr/sbin (where Debian puts slurmctld and munged) when it has no sbin entry
    (a root shell started without one); a PATH that lists its own sbin folders is taken as is, so
    a test can hide Slurm by giving one without it (.ci/bare-path)."""
    path = os.environ.get("PATH", "")
    if any(p.rstrip("/").endswith("sbin") for p in path.split(os.pathsep) if p):
        return path
    return path + os.pathsep + "/usr/sbin"


def unavailable_reason() -> str | None:
    """Why a local cluster cannot run here, or None when it can."""
    missing = [b for b in NEEDED if not shutil.which(b, path=search_path())]
    if missing:
        return f"Slurm/munge binaries not found: {', '.join(missing)}"
    if os.geteuid() != 0:
        return "starting a local Slurm cluster needs root"
    return None


def cluster_env(base: Path = DEFAULT_DIR) -> dict[str, str]:
    """Environment variables a Slurm client needs to talk to the local cluster."""
    return {"SLURM_CONF": str(base / "slurm.conf")}


def _node_name() -> str:
    return socket.gethostname().split(".")[0]


def write_config(base: Path, cpus: int, mem_mb: int, gpus: int) -> Path:
    node = _node_name()
    for sub in ("state", "spool", "log"):
        (base / sub).mkdir(parents=True, exist_ok=True)
    gres = f" Gres=gpu:{gpus}" if gpus else ""
    conf = f"""\
ClusterName=vq3dlocal
SlurmctldHost={node}
AuthType=auth/munge
CredType=cred/munge
SlurmUser=root
SlurmdUser=root
StateSaveLocation={base}/state
SlurmdSpoolDir={base}/spool
SlurmctldPidFile={base}/slurmctld.pid
SlurmdPidFile={base}/slurmd.pid
SlurmctldLogFile={base}/log/slurmctld.log
SlurmdLogFile={base}/log/slurmd.log
ProctrackType=proctrack/linuxproc
TaskPlugin=task/none
SelectType=select/cons_tres
SelectTypeParameters=CR_Core_Memory
AccountingStorageType=accounting_storage/none
JobAcctGatherType=jobacct_gather/none
JobCompType=jobcomp/none
MpiDefault=none
SchedulerType=sched/backfill
# Schedule every few seconds (default 60 s) and let a requeued job start again after 20 s (the
# credential lifetime, default 120 s): tests of requeue and retries stay short.
SchedulerParameters=sched_interval=5,bf_interval=5
AuthInfo=cred_expire=20
# Finished jobs stay visible to squeue for an hour: the Snakemake plugin polls with squeue here.
MinJobAge=3600
ReturnToService=2
KillWait=5
# Advertise the configured CPUs/memory even where the machine has fewer (test cluster only).
SlurmdParameters=config_overrides
MailProg=/bin/true
GresTypes=gpu
NodeName={node} CPUs={cpus} RealMemory={mem_mb}{gres} State=UNKNOWN
PartitionName={PARTITION} Nodes={node} Default=YES MaxTime=INFINITE State=UP
"""
    (base / "gres.conf").write_text(f"NodeName={node} Name=gpu File=/dev/null Count={gpus}\n" if gpus else "")
    path = base / "slurm.conf"
    tmp = path.with_suffix(".tmp")
    tmp.write_text(conf)
    tmp.replace(path)
    return path


def link_system_conf(base: Path, etc: Path = ETC_SLURM) -> None:
    """Point /etc/slurm/{slurm,gres}.conf at this cluster's files.

    SLURM_CONF alone is not enough: the plugin's job step strips every SLURM_* variable before its
    nested `srun`, which then only finds the default path. A real config there is never replaced.
    """
    etc.mkdir(parents=True, exist_ok=True)
    for name in ("slurm.conf", "gres.conf"):
        link, target = etc / name, base / name
        if link.is_symlink() or not link.exists():
            if link.is_symlink() and Path(os.readlink(link)) == target:
                continue
            if link.is_symlink() and not str(os.readlink(link)).startswith(str(base.parent)):
                raise ClusterError(f"{link} links to {os.readlink(link)}, not a vq3d test cluster")
            link.unlink(missing_ok=True)
            link.symlink_to(target)
        else:
            raise ClusterError(f"{link} exists (a real Slurm config?); not replacing it")


def _run(cmd: list[str], env: dict | None = None, check: bool = True) -> subprocess.CompletedProcess:
    return subprocess.run(cmd, env={**os.environ, **(env or {})}, capture_output=True, text=True,
                          check=check, timeout=60)


def munge_ok() -> bool:
    try:
        cred = _run(["munge", "-n"], check=True).stdout
        return subprocess.run(["unmunge"], input=cred, capture_output=True, text=True).returncode == 0
    except (subprocess.CalledProcessError, FileNotFoundError, subprocess.TimeoutExpired):
        return False


def start_munge() -> None:
    if munge_ok():
        return
    rundir = Path("/run/munge")
    rundir.mkdir(parents=True, exist_ok=True)
    shutil.chown(rundir, "munge", "munge")
    # munged refuses to run as root; it daemonizes itself.
    _run(["runuser", "-u", "munge", "--", "/usr/sbin/munged"])
    _wait(munge_ok, 20, "munged did not answer (see /var/log/munge/munged.log)")


def node_state(base: Path = DEFAULT_DIR) -> str | None:
    """The node's state as sinfo prints it (e.g. 'idle', 'mixed'), or None if slurmctld is not answering."""
    try:
        out = _run(["sinfo", "-h", "-N", "-o", "%T"], env=cluster_env(base), check=True).stdout
    except (subprocess.CalledProcessError, subprocess.TimeoutExpired):
        return None
    return out.strip().splitlines()[0].lower() if out.strip() else None


def is_up(base: Path = DEFAULT_DIR) -> bool:
    state = node_state(base) if (base / "slurm.conf").exists() else None
    return bool(state) and not any(bad in state for bad in BAD_NODE_STATES)


def _wait(pred, timeout: float, message: str) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if pred():
            return
        time.sleep(0.5)
    raise ClusterError(message)


def up(base: Path = DEFAULT_DIR, cpus: int = 8, mem_mb: int = 64000, gpus: int = 1,
       timeout: float = 60) -> dict[str, str]:
    """Start the cluster if it is not running; return the client environment (SLURM_CONF)."""
    reason = unavailable_reason()
    if reason:
        raise ClusterError(reason)
    base = Path(base)
    if is_up(base):
        link_system_conf(base)
        return cluster_env(base)
    down(base)  # a half-started cluster (stale pids, drained node) is restarted from scratch
    write_config(base, max(cpus, os.cpu_count() or 1), mem_mb, gpus)
    link_system_conf(base)
    start_munge()
    env = cluster_env(base)
    # -c: forget jobs from an earlier life of this directory.
    _run(["slurmctld", "-c"], env=env)
    _wait(lambda: _run(["scontrol", "ping"], env=env, check=False).returncode == 0, timeout,
          f"slurmctld did not start; see {base}/log/slurmctld.log")
    _run(["slurmd"], env=env)
    try:
        _wait(lambda: is_up(base), timeout, "")
    except ClusterError:
        raise ClusterError(f"node not idle after {timeout:.0f}s (state {node_state(base)!r}); "
                           f"see {base}/log/slurmd.log") from None
    return env


def _kill_pidfile(pidfile: Path, timeout: float = 15) -> None:
    try:
        pid = int(pidfile.read_text().strip())
        os.kill(pid, signal.SIGTERM)
    except (FileNotFoundError, ValueError, ProcessLookupError):
        return
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            os.kill(pid, 0)
        except ProcessLookupError:
            return
        time.sleep(0.2)
    os.kill(pid, signal.SIGKILL)


def down(base: Path = DEFAULT_DIR) -> None:
    """Stop slurmd and slurmctld started from this directory (munged is shared; it stays)."""
    base = Path(base)
    _kill_pidfile(base / "slurmd.pid")
    _kill_pidfile(base / "slurmctld.pid")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="Start/stop a local single-node Slurm cluster.")
    parser.add_argument("action", choices=["up", "down", "status"])
    parser.add_argument("--dir", type=Path, default=DEFAULT_DIR)
    args = parser.parse_args(argv)
    try:
        if args.action == "up":
            env = up(args.dir)
            for key, value in env.items():
                print(f"export {key}={value}")
        elif args.action == "down":
            down(args.dir)
        else:
            print(node_state(args.dir) or "not running")
            return 0 if is_up(args.dir) else 1
    except ClusterError as exc:
        print(f"local slurm: {exc}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
