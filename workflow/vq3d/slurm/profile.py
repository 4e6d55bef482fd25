"""Helpers the Slurm profile (profiles/slurm/profile.yaml, a yte template) calls when it is read."""

from __future__ import annotations

import os
import shutil
import subprocess


def status_command() -> str:
    """'sacct' where Slurm keeps accounting (slurmdbd), else 'squeue'.

    Without slurmdbd, sacct only answers "accounting storage is disabled" and the plugin would poll
    forever; squeue works there as long as MinJobAge keeps finished jobs listed (>= 3 x the first
    status-check delay). $VQ3D_SLURM_STATUS_COMMAND overrides the probe.
    """
    forced = os.environ.get("VQ3D_SLURM_STATUS_COMMAND")
    if forced:
        return forced
    if shutil.which("sacct") is None:
        return "squeue"
    try:
        probe = subprocess.run(["sacct", "-n", "-X", "-S", "now", "-o", "JobIdRaw"],
                               capture_output=True, text=True, timeout=30)
    except (OSError, subprocess.TimeoutExpired):
        return "squeue"
    return "sacct" if probe.returncode == 0 else "squeue"


def env_int(name: str, default: int) -> int:
    """An integer from the environment, for profile values a site tunes without editing the file."""
    value = os.environ.get(name)
    return int(value) if value else default
