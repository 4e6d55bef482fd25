"""Running ffmpeg: choosing the decoder (NVDEC or CPU) and following progress.

`decoder: auto` uses NVDEC (`-hwaccel cuda`) only when nvidia-smi sees a GPU, this ffmpeg lists the
cuda hwaccel, and a one-frame probe decode of the actual file succeeds on it. ffmpeg silently
decodes on the CPU when hwaccel setup fails, so the probe also reads its log for that warning."""

from __future__ import annotations

import functools
import logging
import os
import shutil
import subprocess
import tempfile
from pathlib import Path

from ..progress import Progress

log = logging.getLogger(__name__)

# ffmpeg's messages when -hwaccel cuda could not be used (it then decodes in software).
_HWACCEL_FAILED = ("Failed setup for format cuda", "hwaccel initialisation returned error",
                   "Could not dynamically load CUDA", "Cannot load libcuda", "No device available")


def cpu_count() -> int:
    """CPUs this process may use (Slurm's cpuset, not the node's core count)."""
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except AttributeError:  # not Linux
        return os.cpu_count() or 1


@functools.lru_cache(maxsize=1)
def cuda_available() -> bool:
    """A GPU is visible and this ffmpeg was built with the cuda hwaccel."""
    if shutil.which("nvidia-smi") is None:
        return False
    try:
        smi = subprocess.run(["nvidia-smi", "-L"], capture_output=True, text=True, timeout=20)
        hw = subprocess.run(["ffmpeg", "-hide_banner", "-hwaccels"], capture_output=True,
                            text=True, timeout=20)
    except (OSError, subprocess.TimeoutExpired):
        return False
    return smi.returncode == 0 and "GPU" in smi.stdout and "cuda" in hw.stdout.split()


def cuda_decodes(video: str | Path) -> bool:
    """One-frame NVDEC decode of `video`: the codec/profile is supported and no software fallback."""
    cmd = ["ffmpeg", "-hide_banner", "-nostdin", "-v", "warning", "-hwaccel", "cuda",
           "-i", str(video), "-frames:v", "1", "-f", "null", "-"]
    try:
        proc = subprocess.run(cmd, capture_output=True, text=True, timeout=60)
    except (OSError, subprocess.TimeoutExpired):
        return False
    return proc.returncode == 0 and not any(m in proc.stderr for m in _HWACCEL_FAILED)


def choose_decoder(requested: str, video: str | Path) -> str:
    """'cpu' or 'cuda' for `requested` in auto|cpu|cuda."""
    if requested == "cpu":
        return "cpu"
    if requested == "cuda":
        return "cuda"  # asked for explicitly: a failure is still caught by run_with_fallback
    if cuda_available() and cuda_decodes(video):
        return "cuda"
    return "cpu"


def decoder_args(decoder: str) -> list[str]:
    if decoder == "cuda":
        # Frames come back to system memory so the CPU filters (select, scale) apply unchanged.
        return ["-hwaccel", "cuda"]
    return ["-threads", str(cpu_count())]


class FFmpegError(RuntimeError):
    def __init__(self, cmd: list[str], returncode: int, stderr: str):
        self.cmd, self.returncode, self.stderr = cmd, returncode, stderr
        tail = "\n".join(stderr.strip().splitlines()[-5:])
        super().__init__(f"ffmpeg exited with {returncode}: {tail}")


def run_ffmpeg(args: list[str], *, total_frames: int | None = None, what: str = "",
               log_every_s: float | None = None) -> str:
    """Run `ffmpeg <args>` with -progress on stdout; log "<what>: frames <done>/<total>" every
    `log_every_s` seconds (default: vq3d.progress.interval(), 10 s) and once at the end.

    Returns ffmpeg's stderr (warnings/errors only); raises FFmpegError on a non-zero exit."""
    cmd = ["ffmpeg", "-hide_banner", "-nostdin", "-y", "-v", "error", "-nostats",
           "-progress", "pipe:1", *args]
    log.debug("running %s", " ".join(cmd))
    progress = Progress(log, "frames", total_frames, prefix=what, every_s=log_every_s)
    # stderr goes to a file: reading two pipes from one thread can deadlock.
    with tempfile.TemporaryFile(mode="w+") as err:
        try:
            proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=err, text=True)
        except FileNotFoundError:
            raise FFmpegError(cmd, 127, "ffmpeg is not installed or not on the PATH "
                                        "(apt-get install ffmpeg, or run with --use-conda)") from None
        try:
            for line in proc.stdout:
                key, _, value = line.strip().partition("=")
                if key == "frame" and value.isdigit():
                    progress.set(int(value))
                elif key == "progress" and value == "end":
                    progress.done()
            proc.wait()
        except BaseException:
            proc.kill()
            proc.wait()
            raise
        err.seek(0)
        stderr = err.read()
    if proc.returncode != 0:
        raise FFmpegError(cmd, proc.returncode, stderr)
    return stderr
