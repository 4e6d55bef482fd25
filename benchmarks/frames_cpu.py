"""Frame extraction on the CPU: our stage vs the plain ffmpeg command vs decoding alone.

Makes a synthetic 60 s, 30 fps H.264 video (ffmpeg testsrc2, cached under --work), then times, on
the same 30 s window, alternating the three, `--repeats` times each, and prints the medians:
  (a) vq3d.frames.main (decoder cpu),
  (b) ffmpeg -ss S -to E -i video -vf fps=5 color_%07d.jpg (as given, and with -q:v 2 = our quality),
  (c) ffmpeg -ss S -to E -i video -f null -   (decode only: the floor for any extractor).

    python benchmarks/frames_cpu.py [--size 1920x1080] [--repeats 3] [--binaries system,pip]

With several --binaries (system: the ffmpeg on the PATH; pip: imageio-ffmpeg's static build), every
case runs on each, interleaved, so the binaries are compared under the same load.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from vq3d import frames
from vq3d.formats.queries import ClipTiming, QueryFile, write_queries
from vq3d.video import ffmpeg as ff

BINARY = {"exe": "ffmpeg"}  # the binary the cases run (switched per --binaries entry)


def make_video(path: Path, size: str, seconds: int) -> None:
    if path.exists():
        return
    print(f"making {path} ({size}, {seconds} s, 30 fps) ...", flush=True)
    tmp = path.with_suffix(".part.mp4")
    subprocess.run([ff.ffmpeg_exe(), "-v", "error", "-y", "-f", "lavfi",
                    "-i", f"testsrc2=size={size}:rate=30:duration={seconds}",
                    "-c:v", "libx264", "-preset", "veryfast", "-g", "30", "-bf", "2",
                    "-pix_fmt", "yuv420p", str(tmp)], check=True)
    tmp.rename(path)


def timed(fn) -> float:
    t0 = time.perf_counter()
    fn()
    return time.perf_counter() - t0


def ffmpeg(*args: str) -> None:
    subprocess.run([BINARY["exe"], "-v", "error", "-y", "-nostdin", *args], check=True)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--size", default="1920x1080")
    ap.add_argument("--start", type=float, default=15.0)
    ap.add_argument("--length", type=float, default=30.0)
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--binaries", default="default",
                    help="comma list of system, pip, or default (what vq3d picks here)")
    ap.add_argument("--work", default=str(Path(tempfile.gettempdir()) / "vq3d_bench_frames"))
    args = ap.parse_args()
    work = Path(args.work)
    work.mkdir(parents=True, exist_ok=True)
    video = work / f"testsrc2_{args.size}_60s.mp4"
    make_video(video, args.size, 60)
    s, e = args.start, args.start + args.length
    queries = work / "queries.json"
    write_queries(queries, QueryFile(clips={"bench": ClipTiming(
        clip_uid="bench", video_uid="v", video_start_sec=s, video_end_sec=e, clip_fps=5.0,
        clip_start_sec=0.0, clip_end_sec=e - s)}, queries=[]))
    conf = {"fps": 5, "decoder": "cpu", "max_side": None, "jpeg_quality": 2}

    def ours():
        frames.main(str(video), str(queries), str(work / "ours"), "bench", False, conf)

    def plain(quality: bool):
        out = work / ("plain_q2" if quality else "plain")
        shutil.rmtree(out, ignore_errors=True)
        out.mkdir()
        q = ["-q:v", "2"] if quality else []
        ffmpeg("-ss", str(s), "-to", str(e), "-i", str(video), "-vf", "fps=5", *q,
               str(out / "color_%07d.jpg"))

    def decode():
        ffmpeg("-ss", str(s), "-to", str(e), "-i", str(video), "-f", "null", "-")

    base = {"(a) vq3d frames": ours, "(b) plain ffmpeg fps=5": lambda: plain(False),
            "(b') plain ffmpeg fps=5 -q:v 2": lambda: plain(True), "(c) decode only": decode}
    binaries = {}
    for name in args.binaries.split(","):
        if name != "default":
            os.environ["VQ3D_FFMPEG"] = name
        binaries[name] = ff.locate()
        os.environ.pop("VQ3D_FFMPEG", None)
    times = {(b, k): [] for b in binaries for k in base}
    for _ in range(args.repeats):
        for b, binary in binaries.items():
            BINARY["exe"] = binary.path
            os.environ["VQ3D_FFMPEG"] = binary.path
            for name, fn in base.items():
                times[b, name].append(timed(fn))
            os.environ.pop("VQ3D_FFMPEG", None)
    med = {k: statistics.median(v) for k, v in times.items()}
    print(f"video {args.size} 30 fps, window [{s}, {e}) s, {args.repeats} repeats, median seconds:")
    for b, binary in binaries.items():
        print(f"{b}: {binary.path} ({binary.version}), {ff.cpu_count()} threads")
        for k in base:
            v = times[b, k]
            print(f"  {k:34s} {med[b, k]:7.2f}   (runs: {', '.join(f'{t:.2f}' for t in v)})")
        a = med[b, "(a) vq3d frames"]
        print(f"  (a)/(b) = {a / med[b, '(b) plain ffmpeg fps=5']:.2f}, "
              f"(a)/(b') = {a / med[b, chr(40) + 'b' + chr(39) + ') plain ffmpeg fps=5 -q:v 2']:.2f}, "
              f"(a)/(c) = {a / med[b, '(c) decode only']:.2f}")
    n_ours = json.loads((work / "ours" / "frames.json").read_text())["count"]
    n_plain = len(list((work / "plain").glob("*.jpg")))
    print(f"  frames: ours {n_ours}, plain {n_plain}")


if __name__ == "__main__":
    sys.exit(main())
