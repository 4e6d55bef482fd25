"""The measuring half of benchmarks/gpu_suite.sh (which installs what it needs and calls this).

Parts, each in its own process with what is left of the time budget (a part that runs out is
recorded as such, the others still run), every figure into one JSON file (`--out`):
1. decode: the frames stage's extraction (vq3d.frames.extract, 5 fps JPEG frames) of a 1440×1080
   30 fps H.264 video made here with ffmpeg's testsrc2, on the CPU and with NVDEC (`-hwaccel
   cuda`) — skipped without a GPU or without an ffmpeg that lists the cuda hwaccel;
2. synth + frames: a `--frames`-frame synthetic clip (640×480, the real scan's fisheye scaled);
3. SfM features + matching with the same pycolmap build on the CPU (its CUDA path switched off)
   and on the GPU (pycolmap-cuda12) — the GPU run skipped where pycolmap has no CUDA;
4. detect: the detect stage (default `features` backend; its SIFT is OpenCV's, on the CPU);
5. SfM complete (features, matching, incremental mapping) on the best device, with whatever time
   is left: mapping is pycolmap's CPU code in both builds.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import shutil
import subprocess
import sys
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
import scaling  # noqa: E402  (stage functions and the child-process runner)


def stage_decode(spec: dict) -> dict:
    from vq3d.frames import extract
    from vq3d.video.probe import probe

    out = Path(spec["out"])
    out.mkdir(parents=True, exist_ok=True)
    info = probe(spec["video"])
    t0 = time.perf_counter()
    extract(spec["video"], out, 0.0, int(spec["count"]), info, fps=5.0, decoder=spec["decoder"],
            size=None, jpeg_quality=2, what=f"decode-{spec['decoder']}")
    seconds = time.perf_counter() - t0
    n = len(list(out.glob("color_*.jpg")))
    return {"frames": n, "seconds": seconds, "frames_per_s": n / seconds,
            "source": f"{info.width}x{info.height} {info.fps:g} fps {info.codec}"}


def stage_sfm_front(spec: dict) -> dict:
    """SfM features + matching only, on spec["device"] (cpu forces pycolmap's CUDA path off)."""
    import pycolmap

    from vq3d.pose import colmap_io, sfm

    if spec["device"] == "cpu":
        pycolmap.has_cuda = False  # every vq3d call site reads this flag: CPU SIFT and matching
    elif not pycolmap.has_cuda:
        raise RuntimeError("this pycolmap has no CUDA")
    names = colmap_io.list_frames(spec["frames"])
    width, height = colmap_io.image_size(Path(spec["frames"]) / names[0])
    camera = colmap_io.fisheye_camera(colmap_io.read_fisheye(spec["intrinsics"], spec["scan_uid"],
                                                             width, height), width, height)
    work = Path(spec["out"])
    shutil.rmtree(work, ignore_errors=True)
    work.mkdir(parents=True)
    t0 = time.perf_counter()
    sfm.extract(work / "database.db", Path(spec["frames"]), names, camera, spec["pose"])
    features = time.perf_counter() - t0
    t0 = time.perf_counter()
    loops = sfm.match(work / "database.db", names, work, spec["pose"])
    return {"device": colmap_io.device().name, "frames": len(names), "features_s": features,
            "matching_s": time.perf_counter() - t0, "loop_pairs": loops}


def stage_sfm_on(spec: dict) -> dict:
    """The complete SfM stage; on the CPU when spec["device"] is cpu."""
    import pycolmap

    if spec["device"] == "cpu":
        pycolmap.has_cuda = False
    return {**scaling.stage_sfm(spec), "device": "cuda" if pycolmap.has_cuda else "cpu"}


STAGES = {**scaling.STAGES, "decode": stage_decode, "sfm_front": stage_sfm_front, "sfm_on": stage_sfm_on}
scaling.MODULES.update(decode="vq3d.frames", sfm_front="vq3d.pose.sfm", sfm_on="vq3d.pose.sfm")


def child(name: str, spec_file: str) -> None:
    scaling.STAGES.update(STAGES)
    scaling.child(name, spec_file)


# ------------------------------------------------------------------------------ driver

def environment(gpu: bool) -> dict:
    env = {"host": platform.node(), "cpus": os.cpu_count(), "python": platform.python_version()}
    try:
        import pycolmap
        env["pycolmap"] = f"{getattr(pycolmap, '__version__', '?')} (CUDA: {bool(pycolmap.has_cuda)})"
    except ImportError as exc:
        env["pycolmap"] = f"not importable: {exc}"
    if gpu:
        smi = subprocess.run(["nvidia-smi", "--query-gpu=name,driver_version,memory.total",
                              "--format=csv,noheader"], capture_output=True, text=True)
        env["gpu"] = smi.stdout.strip() or smi.stderr.strip()
    from vq3d.video.ffmpeg import locate
    b = locate()
    hw = subprocess.run([b.path, "-hide_banner", "-hwaccels"], capture_output=True, text=True)
    env["ffmpeg"] = f"{b.path} ({b.source}, {b.version})"
    env["ffmpeg_cuda_hwaccel"] = "cuda" in hw.stdout.split()
    return env


def make_video(path: Path, size: tuple[int, int], seconds: float) -> None:
    from vq3d.video.ffmpeg import locate
    cmd = [locate().path, "-hide_banner", "-loglevel", "error", "-y", "-f", "lavfi", "-i",
           f"testsrc2=size={size[0]}x{size[1]}:rate=30", "-t", f"{seconds:g}", "-c:v", "libx264",
           "-preset", "ultrafast", "-pix_fmt", "yuv420p", str(path)]
    subprocess.run(cmd, check=True)


def main(argv=None) -> int:
    if argv is None and len(sys.argv) > 1 and sys.argv[1] == "--stage":
        child(sys.argv[2], sys.argv[3])
        return 0
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--out", required=True)
    ap.add_argument("--work", required=True)
    ap.add_argument("--frames", type=int, default=600)
    ap.add_argument("--tiny", action="store_true", help="20 frames at 320×240 (tests)")
    ap.add_argument("--gpu", type=int, choices=(0, 1), default=0)
    ap.add_argument("--deadline", type=float, help="epoch seconds by which everything must end")
    ap.add_argument("--install-note", default="")
    ap.add_argument("--t0", type=float, help="epoch seconds the suite started (install included)")
    args = ap.parse_args(argv)
    t_start = time.time()
    import logging
    logging.basicConfig(level=logging.WARNING)
    from vq3d.config import validate_config

    work = Path(args.work)
    work.mkdir(parents=True, exist_ok=True)
    deadline = args.deadline or time.time() + 450
    n = 20 if args.tiny else args.frames
    decode_size, clip_size = ((320, 240), (320, 240)) if args.tiny else ((1440, 1080), (640, 480))
    report = {"suite": "vq3d gpu_suite", "started": time.strftime("%Y-%m-%d %H:%M:%S %Z"),
              "tiny": args.tiny, "install": args.install_note, "environment": environment(bool(args.gpu)),
              "parts": {}}
    parts = report["parts"]
    gpu = bool(args.gpu)
    try:
        import pycolmap
        colmap_cuda = bool(pycolmap.has_cuda)
    except ImportError:
        colmap_cuda = False

    def left() -> float:
        return deadline - time.time() - 10  # 10 s to write the report

    def part(name: str, stage: str, spec: dict, skip: str | None = None) -> dict:
        if skip:
            parts[name] = {"skipped": skip}
        elif left() < 5:
            parts[name] = {"skipped": "out of time budget"}
        else:
            try:
                parts[name] = scaling.run_stage(stage, spec, work, timeout=left(), script=__file__)
            except RuntimeError as exc:
                parts[name] = {"failed": str(exc)[-2000:]}
        Path(args.out).write_text(json.dumps(report, indent=1))
        return parts[name]

    video = work / "decode.mp4"
    make_video(video, decode_size, n / 5)
    no_nvdec = ("no NVIDIA GPU" if not gpu else None) or (
        None if report["environment"]["ffmpeg_cuda_hwaccel"] else "this ffmpeg has no cuda hwaccel")
    for dec, skip in (("cpu", None), ("cuda", no_nvdec)):
        part(f"decode_{dec}", "decode", {"video": str(video), "count": n, "decoder": dec,
                                         "out": str(work / f"decode-{dec}")}, skip)

    synth = {"seed": 0, "scenes": 1, "clips_per_scene": 1, "queries_per_clip": 2 if args.tiny else 4,
             "width": clip_size[0], "height": clip_size[1], "source_fps": scaling.SOURCE_FPS,
             "clip_seconds": n / 5}
    conf = validate_config({"synth": synth})
    data = work / "data"
    if not (data / "gt" / "clips.json").is_file():
        part("synth", "synth", {"synth": synth, "data": str(data)})
    clips = json.loads((data / "gt" / "clips.json").read_text()) if (data / "gt" / "clips.json").is_file() else {}
    if not clips:
        parts["synth"] = parts.get("synth") or {"failed": "no dataset"}
    else:
        clip, ref = next(iter(clips.items()))
        common = {"clip": clip, "queries": str(data / "vq_val_vq3d.json"), "conf": conf, "pose": conf["pose"],
                  "intrinsics": str(data / "scan_to_intrinsics.json"), "scan_uid": ref["scan_uid"],
                  "frames": str(work / "frames")}
        part("frames", "frames", {**common, "video": str(data / "videos" / f"{ref['video_uid']}.mp4"),
                                  "conf": {**conf, "frames": {**conf["frames"], "decoder": "cpu"}}})
        part("sfm_features_matching_cpu", "sfm_front", {**common, "device": "cpu", "out": str(work / "front-cpu")})
        part("sfm_features_matching_gpu", "sfm_front", {**common, "device": "cuda", "out": str(work / "front-gpu")},
             "no NVIDIA GPU" if not gpu else None if colmap_cuda else "this pycolmap has no CUDA")
        d = part("detect", "detect", {**common, "out": str(work / "detect.json")})
        if "wall_s" in d:
            d["frames_per_s"] = d["frames_read"] / d["wall_s"]
        part("sfm_complete", "sfm_on", {**common, "out": str(work / "sfm"),
                                        "device": "cuda" if gpu and colmap_cuda else "cpu"})
    report["wall_s"] = round(time.time() - (args.t0 or t_start), 1)
    Path(args.out).write_text(json.dumps(report, indent=1))
    print(summary(report))
    return 0


def _f(v, spec=".1f"):
    return "—" if v is None else format(v, spec)


def summary(report: dict) -> str:
    lines = [f"environment: {json.dumps(report['environment'])}"]
    for name, r in report["parts"].items():
        if "skipped" in r or "failed" in r or "timeout_s" in r:
            why = f"skipped: {r['skipped']}" if "skipped" in r else (f"failed: {r['failed'][-300:]}" if "failed" in r else
                                       f"out of time after {r['timeout_s']:.0f} s")
            lines.append(f"{name}: {why}")
            continue
        extra = {k: (round(v, 2) if isinstance(v, float) else v) for k, v in r.items()
                 if k not in ("peak_rss_mb",)}
        lines.append(f"{name}: {json.dumps(extra)}, peak RSS {r['peak_rss_mb']:.0f} MB")
    return "\n".join(lines)


if __name__ == "__main__":
    sys.exit(main())
