"""What a video file holds (size, frame rate, duration, start time), read with ffprobe.

A missing, truncated or non-video file becomes an InputError naming the file, so the frames stage
fails with one line instead of an ffmpeg error halfway through a clip."""

from __future__ import annotations

import json
import logging
import subprocess
from dataclasses import dataclass
from fractions import Fraction
from pathlib import Path

from ..errors import InputError

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class VideoInfo:
    path: str
    width: int
    height: int
    fps: float           # nominal frame rate (avg_frame_rate, else r_frame_rate)
    duration: float      # seconds, of the video stream (else of the container)
    start_time: float    # pts of the first frame in seconds; ffmpeg's -ss is relative to it
    codec: str

    @property
    def last_frame_time(self) -> float:
        """Time of the last frame relative to the stream start (a frame lasts 1/fps)."""
        return self.duration - 1.0 / self.fps


def _rate(text: str | None) -> float | None:
    try:
        value = Fraction(text)
    except (TypeError, ValueError, ZeroDivisionError):
        return None
    return float(value) if value > 0 else None


def _float(value) -> float | None:
    try:
        out = float(value)
    except (TypeError, ValueError):
        return None
    return out if out == out else None


def probe(path: str | Path) -> VideoInfo:
    path = Path(path)
    if path.is_dir():
        raise InputError(path, "is a folder, expected a video file")
    if not path.is_file():
        raise InputError(path, "video file does not exist")
    if path.stat().st_size == 0:
        raise InputError(path, "video file is empty (an interrupted download?)")
    cmd = ["ffprobe", "-v", "error", "-select_streams", "v:0", "-print_format", "json",
           "-show_entries",
           "stream=codec_name,width,height,avg_frame_rate,r_frame_rate,duration,start_time"
           ":format=duration,start_time",
           str(path)]
    try:
        proc = subprocess.run(cmd, capture_output=True, text=True)
    except FileNotFoundError:
        from .ffmpeg import FFmpegError
        raise FFmpegError(cmd, 127, "ffprobe is not installed or not on the PATH "
                                    "(apt-get install ffmpeg, or run with --use-conda)") from None
    if proc.returncode != 0:
        why = proc.stderr.strip().splitlines()[-1] if proc.stderr.strip() else f"exit {proc.returncode}"
        why = why.replace(f"{path}: ", "")  # ffprobe repeats the file name
        raise InputError(path, f"not a readable video, truncated or corrupt (ffprobe: {why})")
    try:
        data = json.loads(proc.stdout or "{}")
    except json.JSONDecodeError:
        raise InputError(path, "not a readable video (ffprobe printed no stream description)") from None
    streams = data.get("streams") or []
    if not streams:
        raise InputError(path, "has no video stream")
    s, fmt = streams[0], data.get("format", {})
    fps = _rate(s.get("avg_frame_rate")) or _rate(s.get("r_frame_rate"))
    duration = _float(s.get("duration")) or _float(fmt.get("duration"))
    width, height = s.get("width"), s.get("height")
    if not fps:
        raise InputError(path, "video stream has no frame rate (avg_frame_rate/r_frame_rate)")
    if not duration or duration <= 0:
        raise InputError(path, "video has no duration (truncated or corrupt?)")
    if not width or not height:
        raise InputError(path, "video stream has no frame size")
    start = _float(s.get("start_time"))
    if start is None:
        start = _float(fmt.get("start_time")) or 0.0
    info = VideoInfo(str(path), int(width), int(height), fps, duration, start, s.get("codec_name", "?"))
    log.debug("probed %s: %s", path, info)
    return info
