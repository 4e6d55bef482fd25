"""Slurm resources that follow the clip: each per-clip rule's runtime and memory from the clip's
frame count and resolution (known from the annotations when the DAG is built), scaled by attempt,
and the run's predicted GPU and CPU hours (printed when the workflow is loaded, `snakemake -n`
included).

The per-frame costs are measured on this project's 2-core machine with CPU SIFT, 640×480 frames
(docs/benchmarks.md, issue #17): pose stages 0.33 s/frame at 120 frames and 1.30 s/frame at 960
frames, incremental mapping ≈ 17 of those 21 min, PnP linear (135 s at 960 frames), SfM 50–90 s
and PnP 17–31 s at 120 frames, detection 21–26 frames/s per query, frame extraction ≈ 0.01 s per
1080p frame. The SfM fit `a·n + b·n²` passes through the 120- and 960-frame figures of one
mapping of the whole clip; with SfM windows (pose.sfm_window_frames, the default for clips over
~450 frames) the quadratic term is per window (vq3d.pose.windows), so the request grows linearly
(measured: 2,400 frames at 640×480, SfM + registration 402 s, docs/benchmarks.md "scaling:
windowed and hierarchical mapping"; the model asks more: its fit comes from a loaded machine). Work on the
frames' pixels scales with the pixels a stage really processes (SIFT images are capped at
pose.sift_max_side, detection at detect.features.max_side): that scaling is pixel-proportional by
assumption, not measured. Requests are the prediction times SAFETY (shared nodes, slower CPUs)
times the attempt, never less than MIN_MINUTES."""

from __future__ import annotations

import math
from dataclasses import dataclass

from .pose.windows import clip_windows

REF_PIXELS = 640 * 480
SAFETY = 2.0
MIN_MINUTES = 10
PNP_UNREGISTERED = 0.25  # share of frames SfM may leave to PnP, for pnp_check_stride > 1
# Rules whose Slurm job holds a GPU (group clip_gpu in the rules).
GPU_RULES = ("frames", "detect", "pose_sfm", "report_detections")


@dataclass(frozen=True)
class ClipSize:
    frames: int
    width: int
    height: int
    queries: int = 1


def _capped_pixels(size: ClipSize, max_side: int | None) -> float:
    """Pixels of a frame after a stage's longest-side cap, relative to 640×480."""
    w, h = size.width, size.height
    if max_side and max(w, h) > max_side:
        s = max_side / max(w, h)
        w, h = w * s, h * s
    return w * h / REF_PIXELS


def predicted_seconds(rule: str, size: ClipSize, config: dict) -> float:
    """Predicted wall seconds of one per-clip job of `rule` on 2 cores."""
    n = size.frames
    sift = _capped_pixels(size, config["pose"]["sift_max_side"])
    if rule == "frames":
        return 5 + 0.01 * n * _capped_pixels(size, None)
    if rule == "detect":
        det = _capped_pixels(size, config["detect"]["features"]["max_side"])
        # One pass over the frames; every query's crop is matched on the frames before it.
        return 10 + n * det * (0.01 + 0.045 * size.queries)
    if rule == "pose_sfm":
        # The quadratic term is incremental mapping's, per mapped window (vq3d.pose.windows).
        spans = clip_windows(n, config["pose"])
        return 0.42 * n * sift + 6.7e-4 * sum((b - a) ** 2 for a, b in spans)
    if rule == "pose_register":
        return 15 + 0.02 * n
    if rule == "pose_pnp":
        # pnp_check_stride k > 1: every k-th frame plus what SfM missed (unknown at DAG time:
        # PNP_UNREGISTERED, generous). Measured: 120 of 600 frames run in 0.22x the time
        # (docs/benchmarks.md, scaling after #17.2).
        k = int(config["pose"]["pnp_check_stride"])
        share = 1.0 if k <= 1 else min(1.0, 1.0 / k + PNP_UNREGISTERED)
        return 10 + 0.2 * n * sift * share
    if rule == "peaks":
        return 2 + 0.001 * n * size.queries
    if rule in ("pose_merge", "pose_import"):
        return 2 + 0.005 * n
    if rule == "predict":
        return 10 + 0.01 * n
    if rule in ("report_trajectory", "report_detections"):
        return 10 + 0.005 * n
    raise KeyError(f"no cost model for rule {rule!r}")


def runtime_minutes(rule: str, size: ClipSize, config: dict, attempt: int) -> int:
    return int(max(MIN_MINUTES, math.ceil(SAFETY * predicted_seconds(rule, size, config) / 60))
               * attempt)


# Memory: a base per rule plus what grows with the clip (SfM's database and bundle adjustment,
# PnP's and detection's per-frame features), in MB.
def mem_mb(rule: str, size: ClipSize, config: dict, attempt: int) -> int:
    n = size.frames
    px = _capped_pixels(size, None)
    base = {
        "frames": 2000 + 0.5 * n * px,
        "detect": 4000 + 600 * px,
        "pose_sfm": 4000 + 1.5 * n,
        "pose_register": 3000 + 0.5 * n,
        "pose_pnp": 3000 + 0.5 * n,
        "predict": 2000 + 0.5 * n,
    }.get(rule, 2000)
    return int(math.ceil(base / 100) * 100) * attempt


def clip_sizes(config: dict, files: dict, clips) -> dict[str, ClipSize]:
    """{clip_uid: ClipSize} for the configured dataset, without running any job."""
    fps = float(config["frames"]["fps"])
    if config["dataset"]["kind"] == "synth":
        s = config["synth"]
        # Ego4D's frame rule (vq3d.frames): clip start and end frames included.
        size = ClipSize(int(math.floor(s["clip_seconds"] * fps + 1e-6)) + 1, s["width"],
                        s["height"], s["queries_per_clip"])
        return {clip: size for clip in clips}
    from .formats.queries import read_queries

    qf = read_queries(files["queries"])
    per_clip: dict[str, list] = {}
    for q in qf.queries:
        per_clip.setdefault(q.clip_uid, []).append(q)
    out = {}
    for clip in clips:
        timing = qf.clips.get(clip)
        seconds = (timing.clip_end_sec - timing.clip_start_sec) if timing else 480.0
        crops = [q.visual_crop for q in per_clip.get(clip, []) if q.visual_crop is not None]
        w = next((c.original_width for c in crops if c.original_width), 1920)
        h = next((c.original_height for c in crops if c.original_height), 1440)
        out[clip] = ClipSize(int(math.floor(seconds * fps + 1e-6)) + 1, w, h,
                             max(1, len(per_clip.get(clip, []))))
    return out


def run_prediction(sizes: dict[str, ClipSize], config: dict, rules: list[str],
                   threads: dict[str, int]) -> str:
    """Predicted hours of the run, per clip and in total: GPU-job hours (the rules whose Slurm
    job holds a GPU, predicted from CPU figures: an upper bound) and CPU core-hours."""
    lines = [f"vq3d: predicted hours for {len(sizes)} clip(s) ({', '.join(rules)}; CPU "
             f"figures of docs/benchmarks.md, vq3d.resources):",
             f"  {'clip':<40} {'frames':>7} {'size':>10} {'GPU h':>7} {'CPU h':>7}"]
    tot_gpu = tot_cpu = 0.0
    for clip, size in sorted(sizes.items()):
        secs = {r: predicted_seconds(r, size, config) for r in rules}
        gpu = sum(s for r, s in secs.items() if r in GPU_RULES) / 3600
        cpu = sum(s * threads.get(r, 1) for r, s in secs.items()) / 3600
        tot_gpu += gpu
        tot_cpu += cpu
        lines.append(f"  {clip:<40} {size.frames:>7} {size.width:>5}x{size.height:<4} "
                     f"{gpu:>7.2f} {cpu:>7.2f}")
    lines.append(f"  {'total':<40} {sum(s.frames for s in sizes.values()):>7} {'':>10} "
                 f"{tot_gpu:>7.2f} {tot_cpu:>7.2f}")
    return "\n".join(lines)


# Threads of each rule's job (the rules' `threads:`): the stages use exactly these (vq3d.stage_runner
# passes them), so jobs side by side under --cores or in one Slurm group job do not oversubscribe.
THREADS = {"synth": 2, "frames": 2, "detect": 2, "pose_sfm": 2, "pose_register": 2, "pose_pnp": 2,
           "scan_refs": 1}
