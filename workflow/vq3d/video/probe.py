"""What a video file holds (size, frame rate, duration, start time), read with ffprobe, or where
there is none (imageio-ffmpeg ships ffmpeg alone) with ffmpeg itself (`_ffmpeg_streams`).

A missing, truncated or non-video file becomes an InputError naming the file, so the frames stage
fails with one line instead of an ffmpeg error halfway through a clip."""

from __future__ import annotations

import json
import logging
import re
import statistics
import subprocess
from dataclasses import dataclass
from fractions import Fraction
from pathlib import Path

from ..errors import InputError
from .ffmpeg import FFmpegError, locate

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
    binary = locate()
    if binary.ffprobe:
        data = _ffprobe_streams(path, binary.ffprobe)
    else:
        data = _ffmpeg_streams(path, binary.path)
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


def _unreadable(path: Path, tool: str, stderr: str, returncode: int) -> InputError:
    lines = [ln for ln in stderr.strip().splitlines() if ln.strip()]
    why = lines[-1] if lines else f"exit {returncode}"
    why = why.replace(f"{path}: ", "")  # ffmpeg/ffprobe repeat the file name
    return InputError(path, f"not a readable video, truncated or corrupt ({tool}: {why})")


def _ffprobe_streams(path: Path, ffprobe: str) -> dict:
    cmd = [ffprobe, "-v", "error", "-select_streams", "v:0", "-print_format", "json",
           "-show_entries",
           "stream=codec_name,width,height,avg_frame_rate,r_frame_rate,duration,start_time"
           ":format=duration,start_time",
           str(path)]
    try:
        proc = subprocess.run(cmd, capture_output=True, text=True)
    except OSError as exc:
        raise FFmpegError(f"{ffprobe} cannot be run ({exc})", cmd, 127) from None
    if proc.returncode != 0:
        raise _unreadable(path, "ffprobe", proc.stderr, proc.returncode)
    try:
        return json.loads(proc.stdout or "{}")
    except json.JSONDecodeError:
        raise InputError(path, "not a readable video (ffprobe printed no stream description)") from None


# `ffmpeg -i` header: "Stream #0:0[0x1](und): Video: h264 (High) (...), ..., 29.97 fps, 29.97 tbr, ..."
_VIDEO_LINE = re.compile(r"^\s*Stream #\d+:\d+\S*: Video: (.*)$", re.M)
_RATE = re.compile(r"([\d.]+)(k?) (fps|tbr)\b")
_FORMAT_LINE = re.compile(r"Duration: (N/A|(\d+):(\d\d):(\d\d(?:\.\d+)?)), start: (-?[\d.]+)")
# framecrc: "#tb 0: 1/30000", "#codec_id 0: h264", "#dimensions 0: 640x480", packets
# "stream, dts, pts, duration, size, crc[, flags]"
_HEAD = re.compile(r"^#(tb|codec_id|dimensions) 0: (\S+)$", re.M)
_PACKET = re.compile(r"^0,\s*(-?\d+),\s*(-?\d+),\s*(\d+),", re.M)


def _packets(exe: str, path: Path, before_input: list[str], after_input: list[str]):
    """Header fields and (pts, duration) of the video packets ffmpeg copies, in stream ticks."""
    cmd = [exe, "-hide_banner", "-nostdin", "-v", "error", "-copyts", *before_input,
           "-i", str(path), "-map", "0:v:0", "-c", "copy", *after_input, "-f", "framecrc", "-"]
    proc = subprocess.run(cmd, capture_output=True, text=True)
    head = dict(_HEAD.findall(proc.stdout))
    packets = [(int(pts), int(dur)) for _dts, pts, dur in _PACKET.findall(proc.stdout)]
    if proc.returncode != 0 and not packets:
        raise _unreadable(path, "ffmpeg", proc.stderr, proc.returncode)
    return head, packets


def _snap_rate(printed: float, exact: Fraction | None) -> Fraction:
    """The frame rate ffmpeg printed (2 decimals) as the exact rational it stands for."""
    if exact is not None and abs(float(exact) - printed) <= 0.006:
        return exact
    for den in (1, 1001):  # integer and NTSC (N*1000/1001) rates
        num = round(printed * den / (1000 if den == 1001 else 1)) * (1000 if den == 1001 else 1)
        if num and abs(num / den - printed) <= 0.006:
            return Fraction(num, den)
    return Fraction(printed).limit_denominator(100000)


def _ffmpeg_streams(path: Path, exe: str) -> dict:
    """ffprobe's answer (the fields probe() reads) from ffmpeg alone: the header of `ffmpeg -i` for
    the frame rates, and the video packets' timestamps (copied, not decoded) from the first and
    the last seconds of the file for the start time and the stream's duration (last pts + its
    duration - first pts, which is what ffprobe reports for MP4), all in exact stream ticks."""
    try:
        info = subprocess.run([exe, "-hide_banner", "-nostdin", "-i", str(path)],
                              capture_output=True, text=True)
    except OSError as exc:
        raise FFmpegError(f"{exe} cannot be run ({exc})", [exe], 127) from None
    err = info.stderr  # without an output file ffmpeg prints the header and exits 1
    fmt = _FORMAT_LINE.search(err)
    video = _VIDEO_LINE.search(err)
    if "Input #0" not in err or fmt is None:
        raise _unreadable(path, "ffmpeg", err.replace("At least one output file must be specified", ""),
                          info.returncode)
    format_ = {"start_time": fmt.group(5)}
    if fmt.group(1) != "N/A":
        format_["duration"] = str(int(fmt.group(2)) * 3600 + int(fmt.group(3)) * 60 + float(fmt.group(4)))
    if video is None:
        return {"streams": [], "format": format_}
    rates = {kind: float(v) * (1000 if k else 1) for v, k, kind in _RATE.findall(video.group(1))}
    head, first = _packets(exe, path, [], ["-frames:v", "64"])
    _, last = _packets(exe, path, ["-sseof", "-10"], [])
    stream = {"codec_name": head.get("codec_id", video.group(1).split()[0].rstrip(",")),
              "width": None, "height": None}
    if "dimensions" in head:
        stream["width"], stream["height"] = (int(v) for v in head["dimensions"].split("x"))
    tb = Fraction(head["tb"]) if "tb" in head else None
    packets = first + last
    if tb and packets:
        start = min(p for p, _ in first) if first else min(p for p, _ in packets)
        end = max(p + d for p, d in packets)
        stream["start_time"] = str(float(start * tb))
        if end > start:
            stream["duration"] = repr(float((end - start) * tb))
        durations = [d for _, d in first if d > 0]
        exact = 1 / (statistics.median_low(durations) * tb) if durations else None
        for key, kind in (("avg_frame_rate", "fps"), ("r_frame_rate", "tbr")):
            if kind in rates:
                stream[key] = str(_snap_rate(rates[kind], exact))
    log.debug("probed %s without ffprobe: %s %s", path, stream, format_)
    return {"streams": [stream], "format": format_}
