"""Stage `frames`: cut one clip from its video and write its frames at the clip frame rate.

Ego4D's rule (episodic-memory VQ2D/convert_videos_to_clips.py `frames_to_select`, which EgoLoc's
2d_retrieval/extract_clips_from_videos.py copies): the clip is cut by frame number, not time.
Clip frame i (`color_%07d.jpg`, from 0, EgoLoc layout) is source frame
`video_start_frame + step·i`, step = src_fps / clip_fps (6 for 30 → 5 fps), for every i with
`step·i <= video_end_frame − video_start_frame`: the end frame is included, so a 480 s clip has
2401 frames, not 2400. Every box of the anchors' query files obeys it (`video_frame_number =
video_start_frame + 6·frame_number`). `video_start_sec` is not used when the frame numbers are
there, so the clips that start "before" their video (`video_start_sec ≈ −0.0123`,
`video_start_frame = 0`) are cut from frame 0. A record without frame numbers gets them from its
times, `round(sec · src_fps)`. For `source: clips` (the Ego4D canonical clip, which starts at
the clip's first frame) the same frames are steps·i of the clip file.

The frame numbers count frames of the video itself, as Ego4D's script uses them; they must agree
with the record's times within a clip frame (else the record and the video disagree and the clip
is refused). Where src_fps / clip_fps is not whole (Ego4D's script asserts it is), frame i is the
source frame nearest to time video_start_frame / src_fps + i / clip_fps, with a warning.

ffmpeg decodes the window once (`-ss` before `-i`: seek to the keyframe, decode, drop frames before
the seek point) and a `select` filter keeps exactly those frames, chosen by timestamp (frame k is
at k / src_fps). We do not use the `fps` filter: it starts its grid at whatever frame comes first
after the seek, so a window start that is not on the source grid can shift every frame by one.

End of the video: Ego4D's own script stops at the first frame past the video's end. Frames past
the end by at most one clip frame (Ego4D's `video_end_frame` is often the frame just past a video
that is exactly the clip's length) are dropped with a warning and `dropped_at_end` in frames.json;
past that, the clip is refused with an InputError.
"""

from __future__ import annotations

import argparse
import logging
import math
import time
from dataclasses import dataclass
from pathlib import Path

import cv2

from .atomic import atomic_dir
from .errors import InputError
from .formats.clip_frames import GLOB, PATTERN, count_frames, frame_name, write_frames_info
from .formats.queries import ClipTiming, read_queries
from .video.ffmpeg import FFmpegError, choose_decoder, cpu_count, decoder_args, locate, run_ffmpeg
from .video.probe import VideoInfo, probe

log = logging.getLogger(__name__)

# Tolerance in units of clip frames, so that targets exactly on a tie are decided the same way
# in every run however the timestamps round (ties go to the later source frame).
_EPS = 1e-6


@dataclass(frozen=True)
class ClipFrames:
    """Which source frames make the clip: `first` (the video's frame number of clip frame 0),
    `count`, `step` (source frames per clip frame), and the window start in the file's time."""

    first: int
    count: int
    step: float
    start: float


def ego4d_count(first: int, last: int, step: float) -> int:
    """Clip frames of source frames first..last, end included: i >= 0 with step·i <= last − first."""
    return math.floor((last - first) / step + _EPS) + 1


def clip_frames(timing: ClipTiming, src_fps: float, fps: float, video_is_clip: bool,
                where=None) -> ClipFrames:
    """Ego4D's frames of the clip (module doc). `where` names the query file in errors."""
    derived = timing.video_start_frame is None
    vsf = math.floor(timing.video_start_sec * src_fps + 0.5) if derived else timing.video_start_frame
    vef = math.floor(timing.video_end_sec * src_fps + 0.5) if derived else timing.video_end_frame
    uid = timing.clip_uid
    if vsf < 0 or vef < vsf:
        raise InputError(where, f"clip {uid}: empty or negative window video_start_sec="
                                f"{timing.video_start_sec}, video_end_sec={timing.video_end_sec}")
    if not derived:
        for sec, frame, name in ((timing.video_start_sec, vsf, "start"),
                                 (timing.video_end_sec, vef, "end")):
            if abs(frame / src_fps - sec) > 1.0 / fps:
                raise InputError(where, f"clip {uid}: video_{name}_frame {frame} is "
                                        f"{frame / src_fps:.3f} s at the video's {src_fps:g} fps "
                                        f"but video_{name}_sec is {sec}: the record is not for a "
                                        f"{src_fps:g} fps video")
    step = src_fps / fps
    count = ego4d_count(vsf, vef, step)
    return ClipFrames(first=vsf, count=count, step=step,
                      start=0.0 if video_is_clip else vsf / src_fps)


def source_frame(start: float, i: int, fps: float, src_fps: float) -> int:
    """Index of the source frame that clip frame i shows (the rule the select filter implements)."""
    return math.floor((start + i / fps) * src_fps + 0.5)


def output_size(width: int, height: int, max_side: int | None) -> tuple[int, int]:
    """Size after an optional downscale so the longest side is max_side (even, for 4:2:0 JPEG)."""
    if not max_side or max(width, height) <= max_side:
        return width, height
    scale = max_side / max(width, height)
    return max(2, 2 * round(width * scale / 2)), max(2, 2 * round(height * scale / 2))


def _available_count(info: VideoInfo, start: float, fps: float, count: int) -> int:
    """How many of the `count` targets lie within the video (<= half a source frame after its last)."""
    last_ok = info.last_frame_time + 0.5 / info.fps
    if start + (count - 1) / fps <= last_ok:
        return count
    return max(0, math.floor((last_ok - start) * fps + _EPS) + 1)


def _filter_graph(margin: float, fps: float, src_fps: float, count: int,
                  size: tuple[int, int] | None) -> str:
    """select: keep the frame at t (seconds after the seek point, which is `margin` before the clip
    start) iff some clip frame i in [0, count) has i / fps in [t - margin - d/2, t - margin + d/2),
    d = 1 / src_fps: the source frames' half-open intervals partition time, so every target
    gets exactly one frame."""
    lo = f"(t-{margin!r}-{0.5 / src_fps!r})*{fps!r}"
    hi = f"(t-{margin!r}+{0.5 / src_fps!r})*{fps!r}"
    i = f"ceil({lo}-{_EPS!r})"
    graph = f"select='between({i},0,{count - 1})*lt({i},{hi}-{_EPS!r})'"
    if size:
        graph += f",scale={size[0]}:{size[1]}:flags=area"
    return graph


def extract(video: str | Path, out_dir: str | Path, start: float, count: int, info: VideoInfo,
            *, fps: float, decoder: str, size: tuple[int, int] | None, jpeg_quality: int,
            what: str, threads: int = -1) -> None:
    """Write clip frames 0..count-1 of the window starting at `start` into out_dir (not atomic).
    `threads` caps the decoder, the filters and the JPEG encoder alike (-1: every CPU we may
    use); the frames are the same for any count."""
    threads = threads if threads > 0 else cpu_count()
    # Seek one source frame early: the nearest frame to the clip start may precede it.
    margin = min(start, 1.0 / info.fps)
    seek = start - margin
    read_for = margin + (count - 1) / fps + 2.0 / info.fps
    args = ["-filter_threads", str(threads), *decoder_args(decoder, threads),
            "-ss", f"{seek:.6f}", "-t", f"{read_for:.6f}", "-i", str(video),
            "-an", "-sn", "-dn",
            "-vf", _filter_graph(margin, fps, info.fps, count, size),
            "-fps_mode", "passthrough", "-c:v", "mjpeg", "-q:v", str(jpeg_quality),
            "-threads", str(threads),
            "-f", "image2", "-start_number", "0", str(Path(out_dir) / PATTERN)]
    stderr = run_ffmpeg(args, total_frames=count, what=what)
    for line in stderr.strip().splitlines()[-5:]:
        log.warning("ffmpeg: %s", line)


def main(video, queries, out_dir, clip_uid, video_is_clip, conf, threads: int = -1) -> dict:
    """Extract the clip's frames; `conf`: the validated frames section (config_slice);
    `threads`: the job's (the rule's `threads`; -1: every CPU this process may use)."""
    t0 = time.perf_counter()
    clips = read_queries(queries).clips
    if clip_uid not in clips:
        raise InputError(queries, f"clip_uid {clip_uid} is not in this query file "
                                  f"({len(clips)} clips)")
    timing = clips[clip_uid]
    fps = float(conf["fps"])
    if abs(fps - timing.clip_fps) > 1e-6:
        log.warning("%s: extracting at %g fps but the annotations use clip_fps %g: query frame "
                    "numbers will not match the frame files", clip_uid, fps, timing.clip_fps)
    info = probe(video)
    if fps > info.fps + 1e-6:
        raise InputError(video, f"clip {clip_uid}: asked for {fps:g} fps from a {info.fps:g} fps "
                                "video; frames would repeat")
    cf = clip_frames(timing, info.fps, fps, bool(video_is_clip), where=queries)
    if abs(cf.step - round(cf.step)) > 1e-6:
        log.warning("%s: %g fps is not a whole multiple of %g fps (Ego4D's script asserts it is): "
                    "frame i is the source frame nearest to %.4f s + i/%g", clip_uid, info.fps,
                    fps, cf.start, fps)
    start, count = cf.start, cf.count
    end = start + (count - 1) / fps  # time of the last clip frame
    available = _available_count(info, start, fps, count)
    dropped = count - available
    if dropped:
        over = end - info.last_frame_time
        if over > 1.0 / fps + 1e-6 or available == 0:
            raise InputError(video, f"clip {clip_uid}: window [{start:.3f}, {end:.3f}] s (source "
                                    f"frames {cf.first}..{cf.first + round((count - 1) * cf.step)}"
                                    f", end included) ends {over:.3f} s after the video's last "
                                    f"frame ({info.duration:.3f} s long); only {available} of "
                                    f"{count} frames exist (is "
                                    f"video_is_clip={bool(video_is_clip)} right? is the file "
                                    "truncated?)")
        log.warning("%s: the last %d frame(s) lie past the video's end (%.3f s), as in Ego4D's own "
                    "cut; dropped", clip_uid, dropped, info.duration)
    size = output_size(info.width, info.height, conf["max_side"])
    decoder = choose_decoder(conf["decoder"], video)
    binary = locate()
    log.info("%s: %d frames at %g fps, source frames %d + %g·i (%.3f–%.3f s) of %s (%dx%d, "
             "%.3f fps), decoder %s, %s ffmpeg %s (%s), %d thread(s)", clip_uid, available, fps,
             cf.first, cf.step, start, end, video, info.width, info.height, info.fps, decoder,
             binary.source, binary.path, binary.version, threads if threads > 0 else cpu_count())
    scale = size if size != (info.width, info.height) else None
    with atomic_dir(out_dir) as tmp:
        kwargs = dict(fps=fps, size=scale, jpeg_quality=conf["jpeg_quality"], what=clip_uid,
                      threads=threads)
        try:
            extract(video, tmp, start, available, info, decoder=decoder, **kwargs)
        except FFmpegError as exc:
            if decoder != "cuda":
                raise InputError(video, f"clip {clip_uid}: decoding failed, corrupt video? ({exc})") from None
            log.warning("%s: NVDEC decode failed (%s); retrying on the CPU", clip_uid, exc)
            for f in Path(tmp).glob(GLOB):
                f.unlink()
            decoder = "cpu"
            try:
                extract(video, tmp, start, available, info, decoder=decoder, **kwargs)
            except FFmpegError as exc2:
                raise InputError(video, f"clip {clip_uid}: decoding failed, corrupt video? ({exc2})") from None
        written = count_frames(tmp)
        if written != available:
            raise InputError(video, f"clip {clip_uid}: decoded {written} of {available} frames; "
                                    "the video is truncated or corrupt inside the window")
        if available:
            first = cv2.imread(str(Path(tmp) / frame_name(0)), cv2.IMREAD_UNCHANGED)
            if first is None:
                raise InputError(video, f"clip {clip_uid}: first extracted frame is unreadable")
            size = (int(first.shape[1]), int(first.shape[0]))  # after any display rotation
        summary = {
            "clip_uid": clip_uid,
            "count": available,
            "fps": fps,
            "size": list(size),
            "pattern": PATTERN,
            "frame_rule": "frame i = source frame video_start_frame + i*src_fps/fps, end frame "
                          "included (Ego4D convert_videos_to_clips.py)",
            "first_source_frame": cf.first,
            "step": cf.step,
            "expected_count": count,
            "dropped_at_end": dropped,
            "decoder": decoder,
            "ffmpeg": binary.record(),
            "jpeg_quality": conf["jpeg_quality"],
            "source": {
                "video": str(video),
                "video_uid": timing.video_uid,
                "video_is_clip": bool(video_is_clip),
                "window_sec": [start, end],
                "video_start_frame": timing.video_start_frame,
                "video_end_frame": timing.video_end_frame,
                "video_start_sec": timing.video_start_sec,
                "video_end_sec": timing.video_end_sec,
                "clip_fps": timing.clip_fps,
                "src_fps": info.fps,
                "src_size": [info.width, info.height],
                "src_duration": info.duration,
                "src_codec": info.codec,
            },
            "elapsed_s": round(time.perf_counter() - t0, 3),
        }
        write_frames_info(tmp, summary)
    log.info("%s: wrote %d frames to %s in %.1f s", clip_uid, available, out_dir,
             time.perf_counter() - t0)
    return summary


def add_arguments(parser: argparse.ArgumentParser) -> None:
    from .config import defaults

    default = defaults("frames")
    parser.add_argument("--video", required=True, help="the clip's mp4 (or its full-scale video)")
    parser.add_argument("--queries", required=True, help="VQ2D-style query file with the clip timing")
    parser.add_argument("--clip-uid", required=True)
    parser.add_argument("--out", required=True, help="output folder (replaced whole)")
    parser.add_argument("--video-is-clip", action="store_true",
                        help="the video is the Ego4D canonical clip (starts at the clip start)")
    parser.add_argument("--fps", type=float, default=default["fps"])
    parser.add_argument("--decoder", choices=["auto", "cpu", "cuda"], default=default["decoder"])
    parser.add_argument("--max-side", type=int, default=None, help="downscale: longest side in px")
    parser.add_argument("--jpeg-quality", type=int, default=default["jpeg_quality"],
                        help="ffmpeg -q:v, 1 (best) .. 31")
    parser.add_argument("--threads", type=int, default=-1,
                        help="ffmpeg threads (decoder, filters, encoder); -1: every CPU we may use")


def run(args: argparse.Namespace) -> int:
    conf = {"fps": args.fps, "decoder": args.decoder, "max_side": args.max_side,
            "jpeg_quality": args.jpeg_quality}
    summary = main(args.video, args.queries, args.out, args.clip_uid, args.video_is_clip, conf,
                   threads=args.threads)
    print(f"{summary['count']} frames -> {args.out}")
    return 0
