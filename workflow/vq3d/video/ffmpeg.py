"""Running ffmpeg: which binary, choosing the decoder (NVDEC or CPU) and following progress.

Which ffmpeg (`locate()`): the one on the PATH when there is one (clusters and the conda envs
provide it, built with NVDEC), else the static build that the `imageio-ffmpeg` wheel ships, so a
plain `pip install` needs no system package. `VQ3D_FFMPEG` overrides: a path to an ffmpeg, or
`pip` / `system` to insist on one of the two. The choice is logged and recorded in frames.json.

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
from dataclasses import dataclass
from pathlib import Path

from ..errors import VQ3DError
from ..progress import Progress

log = logging.getLogger(__name__)

# ffmpeg's messages when -hwaccel cuda could not be used (it then decodes in software).
_HWACCEL_FAILED = ("Failed setup for format cuda", "hwaccel initialisation returned error",
                   "Could not dynamically load CUDA", "Cannot load libcuda", "No device available")


INSTALL_HINT = ("pip install imageio-ffmpeg (a dependency of vq3d), apt-get install ffmpeg, "
                "or run with --use-conda")


class FFmpegError(VQ3DError, RuntimeError):
    """ffmpeg (or ffprobe) could not be run or refused its input. Pickles (it crosses process
    pools): the message is the only constructor argument, cmd/returncode/stderr ride along."""

    kind = "ffmpeg failed"

    def __init__(self, message: str, cmd: list[str] | None = None, returncode: int | None = None,
                 stderr: str = ""):
        super().__init__(message)
        self.cmd, self.returncode, self.stderr = list(cmd or []), returncode, stderr

    @classmethod
    def failed(cls, cmd: list[str], returncode: int, stderr: str) -> "FFmpegError":
        tail = "\n".join(stderr.strip().splitlines()[-5:])
        return cls(f"ffmpeg exited with {returncode}: {tail}", cmd, returncode, stderr)

    def __reduce__(self):
        return (type(self), (str(self), self.cmd, self.returncode, self.stderr), self.__dict__)


@dataclass(frozen=True)
class FFmpegBinary:
    path: str           # absolute path of the ffmpeg executable
    source: str         # "system" (on the PATH), "pip" (imageio-ffmpeg's static build), "env" (VQ3D_FFMPEG)
    version: str        # first line of `ffmpeg -version`, e.g. "ffmpeg version 5.1.6-0+deb12u1"
    ffprobe: str | None  # an ffprobe to go with it, or None (imageio-ffmpeg ships none)

    def record(self) -> dict:
        """What frames.json keeps about the binary that ran."""
        return {"path": self.path, "source": self.source, "version": self.version}


def _pip_ffmpeg() -> str | None:
    try:
        import imageio_ffmpeg
    except ImportError:
        return None
    # The wheel's own binary, not imageio-ffmpeg's further fallbacks (env var, conda, PATH).
    from imageio_ffmpeg._definitions import FNAME_PER_PLATFORM, get_platform
    exe = Path(imageio_ffmpeg.__file__).parent / "binaries" / FNAME_PER_PLATFORM.get(get_platform(), "?")
    if exe.is_file():
        return str(exe)
    try:  # other layouts (a conda-forge imageio-ffmpeg has no binaries/ and finds conda's)
        return imageio_ffmpeg.get_ffmpeg_exe()
    except RuntimeError:
        return None


def _version(exe: str) -> str:
    try:
        out = subprocess.run([exe, "-hide_banner", "-version"], capture_output=True, text=True,
                             timeout=30)
    except (OSError, subprocess.TimeoutExpired) as exc:
        raise FFmpegError(f"{exe} cannot be run ({exc}); {INSTALL_HINT}", [exe, "-version"], 126) from None
    first = out.stdout.strip().splitlines()[0] if out.stdout.strip() else ""
    if out.returncode != 0 or not first.startswith("ffmpeg version"):
        raise FFmpegError(f"{exe} is not a working ffmpeg (`-version` exited {out.returncode}); "
                          f"{INSTALL_HINT}", [exe, "-version"], out.returncode)
    return " ".join(first.split()[:3])


def _ffprobe_for(exe: str, source: str) -> str | None:
    if source == "pip":
        return shutil.which("ffprobe")
    beside = Path(exe).with_name("ffprobe")
    if beside.is_file() and os.access(beside, os.X_OK):
        return str(beside)
    return shutil.which("ffprobe")


@functools.lru_cache(maxsize=8)
def _locate(path_env: str | None, override: str | None) -> FFmpegBinary:
    want = (override or "").strip()
    if want and want not in ("pip", "system"):
        exe, source = shutil.which(want) or want, "env"
        if not Path(exe).is_file():
            raise FFmpegError(f"VQ3D_FFMPEG={want}: no such file", [want], 127)
    else:
        system = shutil.which("ffmpeg", path=path_env) if want != "pip" else None
        pip = _pip_ffmpeg() if want != "system" and not system else None
        exe, source = (system, "system") if system else (pip, "pip")
        if not exe:
            if want == "system":
                raise FFmpegError("VQ3D_FFMPEG=system but no ffmpeg is on the PATH", ["ffmpeg"], 127)
            raise FFmpegError(f"no ffmpeg found: none on the PATH and imageio-ffmpeg is not "
                              f"installed; {INSTALL_HINT}", ["ffmpeg"], 127)
    exe = str(Path(exe).resolve()) if source != "system" else exe
    binary = FFmpegBinary(exe, source, _version(exe), _ffprobe_for(exe, source))
    log.info("ffmpeg: %s (%s, %s)%s", binary.path, binary.source, binary.version,
             "" if binary.ffprobe else "; no ffprobe, probing with ffmpeg itself")
    return binary


def locate() -> FFmpegBinary:
    """The ffmpeg to run (see the module doc); raises FFmpegError naming the fix when there is none."""
    return _locate(os.environ.get("PATH"), os.environ.get("VQ3D_FFMPEG"))


def ffmpeg_exe() -> str:
    return locate().path


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
        hw = subprocess.run([ffmpeg_exe(), "-hide_banner", "-hwaccels"], capture_output=True,
                            text=True, timeout=20)
    except (OSError, subprocess.TimeoutExpired, FFmpegError):
        return False
    return smi.returncode == 0 and "GPU" in smi.stdout and "cuda" in hw.stdout.split()


def cuda_decodes(video: str | Path) -> bool:
    """One-frame NVDEC decode of `video`: the codec/profile is supported and no software fallback."""
    cmd = [ffmpeg_exe(), "-hide_banner", "-nostdin", "-v", "warning", "-hwaccel", "cuda",
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
        return "cuda"  # asked for explicitly: a failed NVDEC decode is retried on the CPU (vq3d.frames)
    if cuda_available() and cuda_decodes(video):
        return "cuda"
    return "cpu"


def decoder_args(decoder: str, threads: int = -1) -> list[str]:
    """Input options of the decoder; `threads` for a CPU decode (-1: every CPU we may use)."""
    if decoder == "cuda":
        # Frames come back to system memory so the CPU filters (select, scale) apply unchanged.
        return ["-hwaccel", "cuda"]
    return ["-threads", str(threads if threads > 0 else cpu_count())]


def run_ffmpeg(args: list[str], *, total_frames: int | None = None, what: str = "",
               log_every_s: float | None = None) -> str:
    """Run `ffmpeg <args>` with -progress on stdout; log "<what>: frames <done>/<total>" every
    `log_every_s` seconds (default: vq3d.progress.interval(), 10 s) and once at the end.

    Returns ffmpeg's stderr (warnings/errors only); raises FFmpegError on a non-zero exit."""
    cmd = [ffmpeg_exe(), "-hide_banner", "-nostdin", "-y", "-v", "error", "-nostats",
           "-progress", "pipe:1", *args]
    log.debug("running %s", " ".join(cmd))
    progress = Progress(log, "frames", total_frames, prefix=what, every_s=log_every_s)
    # stderr goes to a file: reading two pipes from one thread can deadlock.
    with tempfile.TemporaryFile(mode="w+") as err:
        try:
            proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=err, text=True)
        except OSError as exc:
            raise FFmpegError(f"{cmd[0]} cannot be run ({exc}); {INSTALL_HINT}", cmd, 127) from None
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
        raise FFmpegError.failed(cmd, proc.returncode, stderr)
    return stderr
