"""Detection quality and speed of the default `features` backend on the synthetic benchmark.

Generates the synthetic dataset (vq3d.synth.generate, default config unless --data points at an
existing one), decodes each clip's 5 fps frames with vq3d.frames (ffmpeg), runs the detect stage
per clip and reports, over all val queries:
- % of queries with at least one peak box of IoU >= 0.5 with the ground-truth box of that frame
  (gt/boxes/<clip>.json),
- % of queries whose LAST peak is on the response track,
- median peaks per query, and throughput of the backend in frames/s on this CPU.

    python benchmarks/detect_synth.py [--data DIR] [--work DIR] [--peaks all|vq2d] [--threads N]
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from detect_fixture import iou, synth_clip_frames, synth_queries  # noqa: E402


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--data", help="existing synthetic dataset folder (else generated)")
    ap.add_argument("--work", help="scratch folder (default: a temp dir)")
    ap.add_argument("--peaks", default="vq2d", choices=["all", "vq2d", "vq2d_padded"])  # the workflow default
    ap.add_argument("--threads", type=int, default=0)
    ap.add_argument("--fixture", type=int, metavar="N",
                    help="instead: N hand-made clips from benchmarks/detect_fixture.py (the synthetic "
                         "generator not needed)")
    args = ap.parse_args()
    if args.fixture:
        return fixture_bench(args)

    from vq3d.config import load_config
    from vq3d.detect import detect_clip
    from vq3d.detect.peaks import pick_clip

    work = Path(args.work or tempfile.mkdtemp(prefix="detect_synth."))
    config = load_config("config.yaml") if Path("config.yaml").exists() else load_config()
    data = Path(args.data) if args.data else work / "synth"
    if not data.exists():
        from vq3d.synth.generate import generate
        t = time.perf_counter()
        generate(data, config["synth"])
        print(f"generated synthetic dataset in {time.perf_counter() - t:.0f} s", file=sys.stderr)
    qpath, qf, gt_clips, gt_queries = synth_queries(data)

    conf = {**config["detect"], "features": {**config["detect"]["features"], "threads": args.threads}}
    conf["peaks"] = {**conf["peaks"], "method": args.peaks}
    hit, last_on_track, n_peaks, n_q, frames_scored, seconds = 0, 0, [], 0, 0, 0.0
    for clip_uid in sorted(qf.clips):
        frames_dir = work / "frames" / clip_uid
        boxes = synth_clip_frames(data, qpath, frames_dir, clip_uid, gt_clips, config["frames"])
        t = time.perf_counter()
        det = pick_clip(detect_clip(frames_dir, qpath, clip_uid, conf), conf["peaks"])
        seconds += time.perf_counter() - t
        frames_scored += max((q.query_frame for q in det.queries), default=0)
        for q in det.queries:
            query = next(x for x in qf.for_clip(clip_uid) if (x.annotation_index, x.query_set) == q.key)
            g = gt_queries.get((clip_uid, q.annotation_index, q.query_set), {})
            obj = str(g.get("object_index", g.get("object", "")))
            track = {b.frame for b in (query.response_track or [])}
            n_q += 1
            n_peaks.append(len(q.peaks))
            ok = False
            for p in q.peaks:
                gtb = boxes[p.frame].get(obj) if p.frame < len(boxes) else None
                if gtb and iou((p.box.x1, p.box.y1, p.box.x2, p.box.y2), gtb["bbox"]) >= 0.5:
                    ok = True
            hit += ok
            last_on_track += bool(q.peaks) and q.peaks[-1].frame in track
    print(f"queries: {n_q}, clips: {len(qf.clips)}, peaks method: {args.peaks}")
    print(f"peak box IoU>=0.5 with GT (any peak): {100 * hit / max(n_q, 1):.1f} %")
    print(f"last peak on the response track:      {100 * last_on_track / max(n_q, 1):.1f} %")
    print(f"median peaks per query:               {statistics.median(n_peaks) if n_peaks else 0}")
    print(f"throughput (features backend):        {frames_scored / max(seconds, 1e-9):.1f} frames/s "
          f"({frames_scored} frames, {seconds:.1f} s)")
    return 0


def fixture_bench(args) -> int:
    """The same figures on hand-made clips (object pasted with warps/scale/light, distractor)."""
    import detect_fixture as fx
    from vq3d.detect import detect_clip
    from vq3d.detect.peaks import pick_clip

    work = Path(args.work or tempfile.mkdtemp(prefix="detect_fixture."))
    from vq3d.stages import stage_conf
    conf = stage_conf("detect", features={"threads": args.threads})
    peaks = stage_conf("peaks", peaks={"method": args.peaks})["peaks"]
    hit = last_ok = frames_scored = 0
    n_peaks, seconds = [], 0.0
    for seed in range(args.fixture):
        start = 20 + 40 * (seed % 3)
        visible = range(start, start + 12)
        gt, crop = fx.make_clip(work / f"c{seed}" / "frames", seed=seed, n_frames=200, visible=visible,
                                crop_frame=195, query_frame=190)
        fx.write_query_file(work / f"c{seed}" / "q.json", f"clip-{seed}", [{
            "query_frame": 190, "crop": crop, "track": [(f, b[0], b[1], b[2] - b[0], b[3] - b[1]) for f, b in gt.items()]}])
        t = time.perf_counter()
        q = pick_clip(detect_clip(work / f"c{seed}" / "frames", work / f"c{seed}" / "q.json", f"clip-{seed}", conf),
                      peaks).queries[0]
        seconds += time.perf_counter() - t
        frames_scored += 190
        n_peaks.append(len(q.peaks))
        hit += any(p.frame in gt and iou((p.box.x1, p.box.y1, p.box.x2, p.box.y2), gt[p.frame]) >= 0.5 for p in q.peaks)
        last_ok += bool(q.peaks) and q.peaks[-1].frame in gt
    n = args.fixture
    print(f"hand-made fixture: {n} clips of 200 frames 640x480, peaks method: {args.peaks}")
    print(f"peak box IoU>=0.5 with GT (any peak): {100 * hit / n:.1f} %")
    print(f"last peak on the response track:      {100 * last_ok / n:.1f} %")
    print(f"median peaks per query:               {statistics.median(n_peaks)}")
    print(f"throughput (features backend):        {frames_scored / seconds:.1f} frames/s "
          f"({frames_scored} frames, {seconds:.1f} s)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
