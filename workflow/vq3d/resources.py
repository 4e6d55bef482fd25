"""Slurm resources that follow the clip: each per-clip rule's runtime and memory from the clip's
frame count and resolution (known from the annotations when the DAG is built), scaled by attempt,
and the run's predicted GPU and CPU hours (printed when the workflow is loaded, `snakemake -n`
included).

The costs are fitted to one `benchmarks/scaling.py` run on this project's quiet 2-core machine
(CPU SIFT, the default configuration; docs/benchmarks.md, "The cost model behind the Slurm
requests"): clips of 121, 601 and 2,401 frames at 1440×1080 through a real scan's fisheye, each
stage in its own process; `benchmarks/resources_fit.py` prints every prediction next to its
measurement. What they say:
- Work on a frame's pixels follows the pixels a stage really processes (SIFT images are capped at
  pose.sift_max_side, detection at detect.features.max_side; REF_PIXELS is one 640×480 frame):
  SIFT features and matching cost 2.3–2.7× per frame at 1024×768 what they cost at 640×480
  (the 1440×1080 and 640×480 runs of docs/benchmarks.md, "scaling").
- SfM: features and matching are linear in the frames; incremental mapping is quadratic in the
  frames of one mapping, so with SfM windows (pose.sfm_window_frames, the default for clips over
  ~450 frames, vq3d.pose.windows) the quadratic term is per window and the whole grows linearly.
  The quadratic coefficient also fits one mapping of a whole 601-frame clip.
- Detection (features backend) reads each frame once for all queries: each query after the
  first adds 5–7 % to the pass. The siamrcnn backend runs the model per query and frame:
  SIAMRCNN_S_PER_FRAME is an assumed GPU figure, not measured (no GPU here; CPU: 39 s a frame).
- PnP: a fixed cost (indexing the scan's reference views) plus a cost per frame it runs on.
Requests are the prediction times SAFETY (shared nodes, slower CPUs) times the attempt, never
less than MIN_MINUTES."""

from __future__ import annotations

import math
from dataclasses import dataclass

from .pose.windows import clip_windows

REF_PIXELS = 640 * 480
SAFETY = 2.0
MIN_MINUTES = 10
PNP_UNREGISTERED = 0.25  # share of frames SfM may leave to PnP, for pnp_check_stride > 1
SIAMRCNN_S_PER_FRAME = 0.15  # per query and frame on one GPU: assumed, not measured
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
        return 4 + 0.0033 * n * _capped_pixels(size, None)
    if rule == "detect":
        det = config["detect"]
        if det["backend"] == "siamrcnn":
            return 10 + n * size.queries * SIAMRCNN_S_PER_FRAME
        if det["backend"] == "precomputed":
            return 10 + 0.001 * n * size.queries
        # One pass over the frames: SIFT once per frame, then every query's crop matched on the
        # frames before it.
        px = _capped_pixels(size, det["features"]["max_side"])
        return 10 + n * px * (0.032 + 0.0025 * size.queries)
    if rule == "pose_sfm":
        # The quadratic term is incremental mapping's, per mapped window (vq3d.pose.windows).
        spans = clip_windows(n, config["pose"])
        return 15 + 0.075 * n * sift + 6.7e-4 * sum((b - a) ** 2 for a, b in spans)
    if rule == "pose_register":
        return 6 + 0.01 * n
    if rule == "pose_pnp":
        # pnp_check_stride k > 1: every k-th frame plus what SfM missed (unknown at DAG time:
        # PNP_UNREGISTERED, generous).
        k = int(config["pose"]["pnp_check_stride"])
        share = 1.0 if k <= 1 else min(1.0, 1.0 / k + PNP_UNREGISTERED)
        return 30 + 0.15 * n * sift * share
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


# Memory: a base per rule plus what grows with the clip, in MB. The measured peaks (the stage's
# process plus ffmpeg for frames) stay under 0.7 GB at 2,401 frames of 1440×1080; the bases leave
# room for GPU runtimes (NVDEC, CUDA SIFT, torch) that were not measured here.
def mem_mb(rule: str, size: ClipSize, config: dict, attempt: int) -> int:
    n = size.frames
    px = _capped_pixels(size, None)
    # SfM holds one mapping at a time: its largest window, or the whole clip without windows.
    mapped = max(b - a for a, b in clip_windows(n, config["pose"])) if rule == "pose_sfm" else 0
    base = {
        "frames": 2000 + 100 * px,  # streamed: flat in the frames (60 MB + ffmpeg's 95 MB)
        "detect": (4000 + 600 * px if config["detect"]["backend"] == "siamrcnn"
                   else 2000 + 200 * px),  # features: 0.5 GB at 2,401 frames, flat
        "pose_sfm": 3000 + 1.0 * mapped * _capped_pixels(size, config["pose"]["sift_max_side"]),
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
