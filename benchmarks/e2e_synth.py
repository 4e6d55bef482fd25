"""End to end on the synthetic benchmark: our default configuration vs an EgoLoc-mimicking one,
per-stage diagnostics against the generator's ground truth, and a depth × aggregation ablation.

For every seed (one synthetic dataset each, the default config.yaml's synth section otherwise):
1. `ours`: the real workflow (`snakemake -s REPO/Snakefile -d WORK/seed<S> --configfile ours.yaml`)
   with the repository's config.yaml unchanged except data_dir / results_dir.
2. `egoloc`: the same workflow with EgoLoc's (ICCV 2023) choices where the config can express
   them: every detection peak (`detect.peaks.method: all`), score-weighted mean
   (`predict.aggregation: mf_weighted2d`), poses from SfM + render registration only
   (`pose.pnp: false`, `pose.refine_with_pnp: false`, `pose.interpolate_max_gap: 0`), and the
   pinhole back-projection of the research code (`predict.undistort: false`), no lifting
   fallbacks (`predict.fallback: false`), the SfM points' surface depth
   (`predict.sfm_surface_offset: 0`). It shares the data
   folder; the frames and the SfM models of `ours` are copied in (their inputs and settings are
   the same), everything else is recomputed by Snakemake.
3. Ablation: peak method (vq2d, all: picked again from `ours`' stored per-frame boxes) × depth
   source × aggregation mode with the lifting fallbacks off, then the fallbacks on; the predict,
   submission and evaluate stage functions called directly on `ours`' detections, poses and SfM
   models.

Metrics pool the per-query rows of every seed (vq3d.evaluate.summarize), plus the median L2.
Diagnostics: queries with a peak box of IoU ≥ 0.5 with the ground-truth box of its frame
(gt/boxes/<clip>.json), queries whose last peak lies on the response track, median peaks per
query, frames with a good pose, median rotation / centre error of the good poses vs gt/poses/.

    python benchmarks/e2e_synth.py [--work DIR] [--seeds 0 1] [--tiny] [--skip-egoloc]
        [--skip-ablation] [--cores 2]
"""

from __future__ import annotations

import argparse
import copy
import itertools
import json
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import yaml

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "workflow"))
sys.path.insert(0, str(Path(__file__).parent))
from detect_fixture import iou  # noqa: E402

DEPTHS = ("sfm", "triangulate")
AGGREGATIONS = ("last", "mf_weighted2d", "mf_mean", "mf_median", "mf_nms", "mf_geomedian")
TINY = {"scenes": 1, "clips_per_scene": 2, "queries_per_clip": 2, "width": 320, "height": 240,
        "clip_seconds": 8}


def egoloc_config(config: dict) -> dict:
    """EgoLoc's choices, where the config can express them."""
    c = copy.deepcopy(config)
    c.setdefault("detect", {}).setdefault("peaks", {})["method"] = "all"
    c.setdefault("predict", {}).update(aggregation="mf_weighted2d", undistort=False, fallback=False,
                                      sfm_surface_offset=0.0, crop_anchor_m=None)
    c.setdefault("pose", {}).update(pnp=False, refine_with_pnp=False, interpolate_max_gap=0)
    return c


def run_snakemake(workdir: Path, configfile: Path, cores: int, log_path: Path) -> float:
    cmd = [sys.executable, "-m", "snakemake", "-s", str(REPO / "Snakefile"), "-d", str(workdir),
           "--cores", str(cores), "--configfile", str(configfile), "--rerun-triggers", "mtime"]
    t = time.perf_counter()
    with open(log_path, "w") as fh:
        proc = subprocess.run(cmd, stdout=fh, stderr=subprocess.STDOUT)
    if proc.returncode != 0:
        raise SystemExit(f"snakemake failed ({proc.returncode}); see {log_path}")
    return time.perf_counter() - t


def share_outputs(src: Path, dst: Path, clips: list[str]) -> None:
    """Copy the frames and SfM models (same inputs and settings in both configs) into dst."""
    for clip in clips:
        for rel in (Path("clips_frames") / clip, Path("pose") / clip / "sfm"):
            if (src / rel).is_dir() and not (dst / rel).exists():
                (dst / rel).parent.mkdir(parents=True, exist_ok=True)
                shutil.copytree(src / rel, dst / rel)


# ------------------------------------------------------------------------------ diagnostics

def detect_diagnostics(data: Path, results: Path) -> list[dict]:
    from vq3d.formats.clip_detections import read_clip_detections

    gt_queries = json.loads((data / "gt" / "queries.json").read_text())
    rows = []
    for g in gt_queries:
        clip = g["clip_uid"]
        det = read_clip_detections(results / "peaks" / f"{clip}.json")
        q = det.get(g["annotation_index"], str(g["query_set"]))
        boxes = json.loads((data / "gt" / "boxes" / f"{clip}.json").read_text())["frames"]
        obj = str(g["object_index"])
        s, e = g["response_track"]
        peaks = q.peaks if q is not None else []
        hit = any(p.frame < len(boxes) and obj in boxes[p.frame]
                  and iou((p.box.x1, p.box.y1, p.box.x2, p.box.y2), boxes[p.frame][obj]["bbox"]) >= 0.5
                  for p in peaks)
        rows.append({"clip": clip, "key": (g["annotation_index"], str(g["query_set"])),
                     "n_peaks": len(peaks), "hit": hit,
                     "last_on_track": bool(peaks) and s <= peaks[-1].frame <= e})
    return rows


def rotation_deg(Ra, Rb) -> float:
    c = (np.trace(Ra @ Rb.T) - 1) / 2
    return float(np.degrees(np.arccos(np.clip(c, -1, 1))))


# A posed frame counts as accurate within these of its true pose (tiers.py's "within" column).
ACCURATE_DEG, ACCURATE_M = 5.0, 0.3


def pose_diagnostics(data: Path, results: Path) -> dict:
    from vq3d.formats.poses import read_poses

    n = posed = accurate = 0
    rot, centre = [], []
    for gt_file in sorted((data / "gt" / "poses").glob("*.json")):
        clip = gt_file.stem
        gt = read_poses(gt_file)[clip]
        est = read_poses(results / "poses" / f"{clip}.json")[clip]
        n += len(gt)
        for i in np.flatnonzero(est.good):
            posed += 1
            a, b = est.cam_from_world[i], gt.cam_from_world[i]
            rot.append(rotation_deg(a[:, :3], b[:, :3]))
            centre.append(float(np.linalg.norm(-a[:, :3].T @ a[:, 3] + b[:, :3].T @ b[:, 3])))
            accurate += rot[-1] <= ACCURATE_DEG and centre[-1] <= ACCURATE_M
    return {"frames": n, "posed_pct": 100.0 * posed / max(n, 1), "accurate": accurate,
            "rot_med_deg": statistics.median(rot) if rot else None,
            "centre_med_m": statistics.median(centre) if centre else None}


# ------------------------------------------------------------------------------ metrics

def evaluate_rows(data: Path, submission: Path) -> list[dict]:
    from vq3d.evaluate import evaluate

    return evaluate(data / "vq3d_val.json", submission)["per_query"]


def summary(rows: list[dict]) -> dict:
    from vq3d.evaluate import summarize

    m = summarize(rows)
    l2 = [r["l2"] for r in rows if r["has_3d"]]
    m["l2_median"] = statistics.median(l2) if l2 else None
    return m


def predict_variant(data: Path, results: Path, out: Path, conf: dict, peaks: str | None = None) -> Path:
    """predict → submission on `results`' intermediate files, written under `out`; with `peaks`,
    the detection peaks are first picked again by that method from the stored per-frame boxes."""
    from vq3d.config import load_config
    from vq3d.detect.peaks import pick_peaks
    from vq3d.formats.clip_detections import read_clip_detections, write_clip_detections
    from vq3d.predict import submission as submission_stage
    from vq3d.predict.stage import main as predict_main

    gt_clips = json.loads((data / "gt" / "clips.json").read_text())
    config = load_config()
    full = {**config["predict"], **conf}
    files = []
    for clip, ref in sorted(gt_clips.items()):
        path = out / "predict" / f"{clip}.json"
        detections = results / "peaks" / f"{clip}.json"
        if peaks is not None:
            det = read_clip_detections(detections)
            for q in det.queries:
                q.peaks = pick_peaks(q.frames, {**config["detect"]["peaks"], "method": peaks})
            detections = out / "detect" / f"{clip}.json"
            write_clip_detections(detections, det)
        merged = results / "pose" / clip / "scan_from_model.json"  # absent in older runs: fitted then
        predict_main(detections, results / "poses" / f"{clip}.json",
                     results / "pose" / clip / "sfm", data / "vq_val_vq3d.json",
                     data / "scan_to_intrinsics.json", path, clip, ref["scan_uid"], full,
                     scan_from_model=merged if merged.is_file() else None,
                     scan_dir=data / "scans" / ref["scan_uid"])
        files.append(path)
    sub = out / "submission.json"
    submission_stage.main(files, data / "vq3d_val.json", sub,
                          mapping=data / "mapping_vq2d_to_vq3d_queries_annotations_val.json")
    return sub


def fmt(v, spec=".3f"):
    return "—" if v is None else format(v, spec)


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--work", help="scratch folder (default: a temp dir); reruns reuse what is done")
    ap.add_argument("--seeds", type=int, nargs="+", default=[0, 1])
    ap.add_argument("--tiny", action="store_true", help=f"small datasets: synth {TINY}")
    ap.add_argument("--cores", type=int, default=2)
    ap.add_argument("--skip-egoloc", action="store_true")
    ap.add_argument("--skip-ablation", action="store_true")
    args = ap.parse_args()

    import logging
    logging.basicConfig(level=logging.WARNING)
    from vq3d.config import load_config

    work = Path(args.work or tempfile.mkdtemp(prefix="e2e_synth."))
    work.mkdir(parents=True, exist_ok=True)
    base = yaml.safe_load((REPO / "config.yaml").read_text())
    configs = {"ours": base}
    if not args.skip_egoloc:
        configs["egoloc"] = egoloc_config(base)

    rows = {name: [] for name in configs}
    det_rows = {name: [] for name in configs}
    pose_diag = {name: [] for name in configs}
    walls = {name: 0.0 for name in configs}
    sets = []
    for seed in args.seeds:
        root = work / f"seed{seed}"
        root.mkdir(exist_ok=True)
        data_dir = root / "data"
        for name, cfg in configs.items():
            cfg = copy.deepcopy(cfg)
            cfg["synth"] = {**cfg.get("synth", {}), "seed": seed, **(TINY if args.tiny else {})}
            cfg["data_dir"], cfg["results_dir"] = str(data_dir), str(root / name)
            cfile = root / f"{name}.yaml"
            cfile.write_text(yaml.safe_dump(cfg, sort_keys=False))
            if name != "ours" and (root / "ours").is_dir():
                clips = json.loads((data_dir / "synth" / "gt" / "clips.json").read_text())
                share_outputs(root / "ours", root / name, sorted(clips))
            wall = run_snakemake(root, cfile, args.cores, root / f"{name}.snakemake.log")
            walls[name] += wall
            print(f"seed {seed} {name}: workflow {wall:.0f} s", file=sys.stderr)
            data = data_dir / "synth"
            rows[name] += evaluate_rows(data, root / name / "submission.json")
            det_rows[name] += detect_diagnostics(data, root / name)
            pose_diag[name].append(pose_diagnostics(data, root / name))
        sets.append((data_dir / "synth", root / "ours", root))

    n_q = len(rows["ours"])
    print(f"\n## default vs EgoLoc-mimicking ({n_q} queries, seeds {args.seeds}"
          f"{', tiny' if args.tiny else ''})\n")
    print("| config | Succ % | Succ* % | QwP % | L2 mean m | L2 median m | angle rad | peak IoU≥0.5 % "
          "| last peak on track % | median peaks/query | frames posed % | median rot ° | median centre cm "
          "| workflow s (this invocation) |")
    print("| --- " * 14 + "|")
    for name in configs:
        m = summary(rows[name])
        d = det_rows[name]
        frames = sum(p["frames"] for p in pose_diag[name])
        posed = sum(p["posed_pct"] * p["frames"] for p in pose_diag[name]) / max(frames, 1)
        rots = [p["rot_med_deg"] for p in pose_diag[name] if p["rot_med_deg"] is not None]
        cents = [p["centre_med_m"] for p in pose_diag[name] if p["centre_med_m"] is not None]
        print(f"| {name} | {fmt(m['succ'], '.1f')} | {fmt(m['succ_star'], '.1f')} | "
              f"{fmt(m['qwp'], '.1f')} | {fmt(m['l2'])} | {fmt(m['l2_median'])} | "
              f"{fmt(m['angle'])} | {100 * sum(r['hit'] for r in d) / len(d):.1f} | "
              f"{100 * sum(r['last_on_track'] for r in d) / len(d):.1f} | "
              f"{statistics.median(r['n_peaks'] for r in d)} | {posed:.1f} | "
              f"{fmt(statistics.median(rots) if rots else None, '.2f')} | "
              f"{fmt(100 * statistics.median(cents) if cents else None, '.2f')} | {walls[name]:.0f} |")
    print("\n(frame-pose medians: median over clips of each clip's median)")
    for name in configs:
        bad = [r for r in rows[name] if not r["success"] or not r["has_pose"]]
        for r in bad:
            print(f"  {name}: {r['clip_uid']} q{r['query_set']}: has_3d {r['has_3d']} has_pose "
                  f"{r['has_pose']} l2 {fmt(r['l2'])} threshold {fmt(r['threshold'])}")

    if args.skip_ablation:
        return 0
    print(f"\n## one change at a time from `ours`' predict settings, on its detections and poses "
          f"({n_q} queries)\n")
    print("| variant | Succ % | Succ* % | QwP % | L2 mean m | L2 median m | angle rad | with 3D |")
    print("| --- " * 8 + "|")
    variants = [("ours (default predict settings)", {}, None),
                ("sfm_surface_offset: 0 (surface depth, EgoLoc)", {"sfm_surface_offset": 0.0}, None),
                ("undistort: false (pinhole, EgoLoc)", {"undistort": False}, None),
                ("fallback: false", {"fallback": False}, None),
                ("peaks all + mf_weighted2d (EgoLoc)", {"aggregation": "mf_weighted2d"}, "all"),
                ("all four EgoLoc predict choices", {"sfm_surface_offset": 0.0, "undistort": False,
                                                     "fallback": False,
                                                     "aggregation": "mf_weighted2d"}, "all")]
    for k, (label, conf, peaks) in enumerate(variants):
        abl = []
        for data, results, root in sets:
            sub = predict_variant(data, results, root / "variants" / str(k), conf, peaks=peaks)
            abl += evaluate_rows(data, sub)
        m = summary(abl)
        print(f"| {label} | {fmt(m['succ'], '.1f')} | {fmt(m['succ_star'], '.1f')} | "
              f"{fmt(m['qwp'], '.1f')} | {fmt(m['l2'])} | {fmt(m['l2_median'])} | {fmt(m['angle'])} | "
              f"{m['n_with_3d']}/{m['n_queries']} |")

    print(f"\n## ablation on `ours`' detections and poses ({n_q} queries): peaks × depth × "
          "aggregation, lifting fallbacks off, then on\n")
    print("| peaks | depth | aggregation | fallback | Succ % | Succ* % | QwP % | L2 mean m | "
          "L2 median m | angle rad | with 3D |")
    print("| --- " * 11 + "|")
    grid = [(p, d, a, False) for p, d, a in itertools.product(("vq2d", "all"), DEPTHS, AGGREGATIONS)]
    grid += [(p, d, "mf_geomedian", True) for p in ("vq2d", "all") for d in DEPTHS]
    for peaks, depth, aggregation, fallback in grid:
        abl = []
        for data, results, root in sets:
            out = root / "ablation" / f"{peaks}-{depth}-{aggregation}-{'fb' if fallback else 'nofb'}"
            sub = predict_variant(data, results, out, {"depth": depth, "aggregation": aggregation,
                                                       "fallback": fallback}, peaks=peaks)
            abl += evaluate_rows(data, sub)
        m = summary(abl)
        print(f"| {peaks} | {depth} | {aggregation} | {'on' if fallback else 'off'} | "
              f"{fmt(m['succ'], '.1f')} | {fmt(m['succ_star'], '.1f')} | {fmt(m['qwp'], '.1f')} | "
              f"{fmt(m['l2'])} | {fmt(m['l2_median'])} | {fmt(m['angle'])} | "
              f"{m['n_with_3d']}/{m['n_queries']} |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
