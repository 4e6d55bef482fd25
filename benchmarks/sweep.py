"""Configuration sweep of the synthetic benchmark: every run must complete and report its metrics.

A run is one synthetic configuration (synth seed × resolution × source frame rate × queries per
clip × preset) taken through either
- a `detect` slice: `vq3d synth` → the frames stage → the detect stage for every clip, called
  in-process through the stage entry points (the whole pipeline is not needed to find the
  detect-stage crashes, and it costs a tenth of a full run), scored against the generator's ground
  truth; or
- a `full` run: the real workflow (`snakemake -s REPO/Snakefile`) end to end, metrics.json read back.

A run that raises is recorded as a crash with its exception, never stops the sweep; the exit status
is 1 if any run crashed or reported no metrics. Detection metrics per run: queries, queries with a
peak, queries with no peak (each must carry a reason), peak IoU ≥ 0.5 with the ground-truth box of
its frame, last peak on the response track. Full runs add Succ, Succ*, QwP, L2, angle.

    python benchmarks/sweep.py [--grid ci|large] [--work DIR] [--cores 2] [--markdown]

Presets: every value of `synth.preset` in the config schema, or the one default tier while the
schema has no such key. tests/test_sweep.py runs the `ci` grid; docs/benchmarks.md holds the
`large` grid's table.
"""

from __future__ import annotations

import argparse
import itertools
import json
import shutil
import subprocess
import sys
import tempfile
import time
import traceback
from dataclasses import asdict, dataclass
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "workflow"))
sys.path.insert(0, str(Path(__file__).parent))
from detect_fixture import iou  # noqa: E402


@dataclass(frozen=True)
class Run:
    kind: str            # detect | full
    seed: int
    width: int
    height: int
    source_fps: int
    queries_per_clip: int
    preset: str | None = None
    scenes: int = 1
    clips_per_scene: int = 2
    clip_seconds: float = 8

    @property
    def name(self) -> str:
        if self.preset == "hard":  # resolutions and clip lengths are the tier's (its ci variant)
            return (f"{self.kind}-s{self.seed}-{self.source_fps}fps-q{self.queries_per_clip}-"
                    f"c{self.scenes}x{self.clips_per_scene}-hard-ci")
        tier = f"-{self.preset}" if self.preset else ""
        return (f"{self.kind}-s{self.seed}-{self.width}x{self.height}-{self.source_fps}fps-"
                f"q{self.queries_per_clip}-c{self.scenes}x{self.clips_per_scene}x{self.clip_seconds:g}s{tier}")

    def synth(self) -> dict:
        conf = {"seed": self.seed, "scenes": self.scenes, "clips_per_scene": self.clips_per_scene,
                "queries_per_clip": self.queries_per_clip, "width": self.width,
                "height": self.height, "source_fps": self.source_fps,
                "clip_seconds": self.clip_seconds}
        if self.preset is not None:
            conf["preset"] = self.preset
        if self.preset == "hard":  # draws its own resolutions and clip lengths: the ci variant
            for key in ("width", "height", "clip_seconds"):
                del conf[key]
            conf["scale"] = "ci"
        return conf


def presets() -> list[str | None]:
    """The synthetic tiers the schema offers (None: the schema has no `synth.preset` yet)."""
    from vq3d.config import load_schema

    prop = load_schema()["properties"]["synth"]["properties"].get("preset")
    return list(prop["enum"]) if prop and "enum" in prop else [None]


def ci_grid() -> list[Run]:
    """Small enough for CI (≈ 1-2 min on 2 cores): detect slices over the axes, one full run.

    The first slice is the configuration of issue 16 (peak on a frame without a box: detect
    crashed; queries whose few boxes the median filter erased got no peak)."""
    runs = [Run("detect", 0, 192, 144, 10, 3),          # issue 16's crash
            Run("detect", 1, 320, 240, 30, 2, clips_per_scene=1, clip_seconds=6),
            Run("detect", 4, 256, 144, 25, 4, clips_per_scene=1, clip_seconds=6),  # 16:9
            Run("detect", 2, 160, 120, 60, 1, clips_per_scene=1, clip_seconds=4.3)]  # off the 0.2 s grid
    runs += [Run("detect", 3, 192, 144, 20, 2, preset=p, clips_per_scene=1, clip_seconds=6)
             for p in presets() if p is not None]
    # A clip left without a query (160×120: no object passes the response-track checks in the
    # second clip) goes through pose, predict, submission and evaluate too.
    runs.append(Run("full", 5, 160, 120, 20, 3, clip_seconds=6))
    return runs


def large_grid() -> list[Run]:
    """24 detect slices per preset and two full runs (≈ 45 min on the shared 2-core machine)."""
    seeds, sizes, rates, queries = (0, 1, 2), ((192, 144), (320, 240)), (10, 30), (2, 6)
    runs = [Run("detect", s, w, h, f, q, p) for s, (w, h), f, q, p
            in itertools.product(seeds, sizes, rates, queries, presets())]
    runs += [Run("full", s, 192, 144, 15, 2, p, clip_seconds=6) for s in (0, 1) for p in presets()]
    return runs


# ------------------------------------------------------------------------------ one run

def detection_metrics(data: Path, detections: dict) -> dict:
    """Against the generator's ground truth: `detections` maps clip → ClipDetections."""
    gt_queries = json.loads((data / "gt" / "queries.json").read_text())
    n = with_peak = hit = on_track = 0
    no_peak = []
    for g in gt_queries:
        clip = g["clip_uid"]
        q = detections[clip].get(g["annotation_index"], str(g["query_set"]))
        if q is None:
            raise AssertionError(f"{clip} query {g['query_set']}: missing from the detections")
        n += 1
        if not q.peaks:
            if not q.reason:
                raise AssertionError(f"{clip} query {g['query_set']}: no peak and no reason")
            no_peak.append(f"{clip}/{g['query_set']}: {q.reason}")
            continue
        with_peak += 1
        boxes = json.loads((data / "gt" / "boxes" / f"{clip}.json").read_text())["frames"]
        obj = str(g["object_index"])
        hit += any(obj in boxes[p.frame] and iou((p.box.x1, p.box.y1, p.box.x2, p.box.y2),
                                                 boxes[p.frame][obj]["bbox"]) >= 0.5
                   for p in q.peaks)
        s, e = g["response_track"]
        on_track += s <= q.peaks[-1].frame <= e
    return {"queries": n, "with_peak": with_peak, "no_peak": no_peak, "peak_iou50": hit,
            "last_on_track": on_track}


def run_detect(run: Run, root: Path) -> dict:
    from vq3d import frames as frames_stage
    from vq3d.config import validate_config
    from vq3d.detect import main as detect_main
    from vq3d.detect.peaks import main as peaks_main
    from vq3d.formats.clip_detections import read_clip_detections
    from vq3d.synth.generate import generate

    # the detect slice reads no scan: the fewest reference views keep its dataset small
    config = validate_config({"synth": {**run.synth(), "ref_views": 3}})
    data = root / "data"
    generate(data, config["synth"], workers=1)
    clips = json.loads((data / "gt" / "clips.json").read_text())
    queries = data / "vq_val_vq3d.json"
    detections = {}
    for clip, ref in sorted(clips.items()):
        frames = root / "frames" / clip
        summary = frames_stage.main(data / "videos" / f"{ref['video_uid']}.mp4", queries, frames, clip,
                                    False, {**config["frames"], "decoder": "cpu"})
        if summary["count"] != ref["n_frames"]:
            raise AssertionError(f"{clip}: the frames stage extracted {summary['count']} frames, the "
                                 f"ground truth has {ref['n_frames']}")
        scores, out = root / "scores" / f"{clip}.json", root / "detect" / f"{clip}.json"
        detect_main(frames, queries, scores, clip, config["detect"])
        peaks_main(scores, out, clip, config["detect"])
        detections[clip] = read_clip_detections(out)
    return {"clips": len(clips), **detection_metrics(data, detections)}


def run_full(run: Run, root: Path, cores: int = 2) -> dict:
    import yaml

    from vq3d.formats.clip_detections import read_clip_detections

    config = {"synth": run.synth(), "data_dir": str(root / "data"), "results_dir": str(root / "results")}
    cfile = root / "config.yaml"
    cfile.write_text(yaml.safe_dump(config, sort_keys=False))
    cmd = [sys.executable, "-m", "snakemake", "-s", str(REPO / "Snakefile"), "-d", str(root),
           "--cores", str(cores), "--configfile", str(cfile)]
    log = root / "snakemake.log"
    with open(log, "w") as fh:
        proc = subprocess.run(cmd, stdout=fh, stderr=subprocess.STDOUT)
    if proc.returncode != 0:
        tail = log.read_text()[-3000:]
        raise RuntimeError(f"snakemake exited {proc.returncode} (log {log}):\n{tail}")
    results, data = root / "results", root / "data" / "synth"
    metrics = json.loads((results / "metrics.json").read_text())
    clips = json.loads((data / "gt" / "clips.json").read_text())
    detections = {c: read_clip_detections(results / "peaks" / f"{c}.json") for c in clips}
    keep = ("succ", "succ_star", "qwp", "l2", "angle", "n_queries", "n_with_3d", "n_with_pose")
    return {"clips": len(clips), **detection_metrics(data, detections),
            **{k: metrics.get(k) for k in keep}}


def execute(run: Run, work: Path, cores: int = 2) -> dict:
    """One run, its metrics or its crash; never raises (a sweep reports every run)."""
    root = work / run.name
    if root.exists():
        shutil.rmtree(root)
    root.mkdir(parents=True)
    t0 = time.perf_counter()
    try:
        metrics = run_detect(run, root) if run.kind == "detect" else run_full(run, root, cores)
        status, error = "ok", None
    except Exception as exc:  # noqa: BLE001 - the sweep's job is to report it
        metrics, status = {}, "crash"
        error = "".join(traceback.format_exception_only(type(exc), exc)).strip()
        (root / "crash.txt").write_text(traceback.format_exc())
    record = {"run": asdict(run), "name": run.name, "status": status, "error": error,
              "seconds": round(time.perf_counter() - t0, 1), "metrics": metrics}
    (root / "result.json").write_text(json.dumps(record, indent=1))  # an interrupted sweep keeps it
    return record


# ------------------------------------------------------------------------------ report

def _pct(a, b):
    return "—" if not b else f"{100 * a / b:.0f}"


def _num(v, spec=".1f"):
    return "—" if v is None else format(v, spec)


def table(results: list[dict]) -> str:
    head = ("| run | status | s | queries | with peak | no peak | peak IoU≥0.5 % | last peak on track % "
            "| Succ % | Succ* % | QwP % | L2 m |")
    lines = [head, "|" + " --- |" * (head.count("|") - 1)]
    for r in results:
        m = r["metrics"]
        q = m.get("queries", 0)
        lines.append(
            f"| {r['name']} | {r['status'] if r['status'] == 'ok' else 'CRASH: ' + (r['error'] or '')[:80]} "
            f"| {r['seconds']:.0f} | {q or '—'} | {m.get('with_peak', '—')} | {len(m.get('no_peak', [])) if m else '—'} "
            f"| {_pct(m.get('peak_iou50', 0), q)} | {_pct(m.get('last_on_track', 0), q)} "
            f"| {_num(m.get('succ'))} | {_num(m.get('succ_star'))} | {_num(m.get('qwp'))} "
            f"| {_num(m.get('l2'), '.3f')} |")
    return "\n".join(lines)


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--grid", choices=("ci", "large"), default="ci")
    ap.add_argument("--work", help="scratch folder (default: a temp dir)")
    ap.add_argument("--cores", type=int, default=2, help="snakemake --cores of the full runs")
    ap.add_argument("--only", help="run only the runs whose name contains this")
    ap.add_argument("--json", help="also write every run's record here")
    args = ap.parse_args(argv)

    import logging
    logging.basicConfig(level=logging.ERROR)
    work = Path(args.work or tempfile.mkdtemp(prefix="vq3d-sweep."))
    runs = ci_grid() if args.grid == "ci" else large_grid()
    if args.only:
        runs = [r for r in runs if args.only in r.name]
    results = []
    t0 = time.perf_counter()
    for run in runs:
        results.append(execute(run, work, args.cores))
        r = results[-1]
        print(f"{r['name']}: {r['status']} in {r['seconds']:.0f} s"
              + (f" — {r['error']}" if r["error"] else ""), file=sys.stderr, flush=True)
    if args.json:
        Path(args.json).write_text(json.dumps(results, indent=1))
    bad = [r for r in results if r["status"] != "ok" or not r["metrics"]]
    print(f"\n{len(runs)} runs ({args.grid} grid, presets {presets()}) in "
          f"{time.perf_counter() - t0:.0f} s; {len(bad)} crashed\n")
    print(table(results))
    no_peak = [(r["name"], reason) for r in results for reason in r["metrics"].get("no_peak", [])]
    if no_peak:
        print("\nQueries with no peak (their reasons):")
        for name, reason in no_peak:
            print(f"- {name}: {reason}")
    return 1 if bad else 0


if __name__ == "__main__":
    sys.exit(main())
