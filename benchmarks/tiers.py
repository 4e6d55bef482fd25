"""The pipeline on the easy and the hard synthetic tiers, per stage, vq3d's default configuration
next to the EgoLoc-mimicking one on the same data (issue 16.2).

For every tier × seed: one synthetic dataset, the real workflow (`snakemake -s REPO/Snakefile`)
run with (a) `default`: config.yaml as it is (plus the tier's synth section), (b) `egoloc`:
EgoLoc's (ICCV 2023) choices where the config can express them (benchmarks/e2e_synth.py's
egoloc_config: peaks `all`, mf_weighted2d, no PnP / refinement / interpolation, pinhole
back-projection, no fallbacks, surface depth). `egoloc` reuses `default`'s frames and SfM models
(same inputs and settings). Per-query rows of every seed are pooled.

Columns: frames posed by source (SfM / PnP / interpolated / none, from R/pose/<clip>/summary.json),
frames posed within 5° and 30 cm of gt/poses (of all frames), median rotation and centre error of
the posed frames vs gt/poses, detection (queries with a peak
box of IoU ≥ 0.5 with the ground-truth box of its frame; last peak on the response track),
Succ, Succ*, QwP, mean / median L2, angle.

    python benchmarks/tiers.py [--tiers easy hard] [--seeds 0 1] [--work DIR] [--cores 2]
        [--config-override YAML] [--skip-egoloc]

Tier datasets (default): easy = 1 scene × 2 clips × 2 queries, 320×240, 12 s clips (the demo's
generator, smaller); hard = `preset: hard, scale: ci` (the anchors-calibrated tier, scaled down:
resolution ÷ 4, time ÷ 30), 1 scene × 2 clips × 3 queries.
"""

from __future__ import annotations

import argparse
import copy
import json
import statistics
import sys
import tempfile
from pathlib import Path

import yaml

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "workflow"))
sys.path.insert(0, str(Path(__file__).parent))
import e2e_synth as e2e  # noqa: E402

TIERS = {
    "easy": {"scenes": 1, "clips_per_scene": 2, "queries_per_clip": 2, "width": 320, "height": 240,
             "clip_seconds": 12},
    "hard": {"preset": "hard", "scale": "ci", "scenes": 1, "clips_per_scene": 2, "queries_per_clip": 3},
}


def pose_sources(data: Path, results: Path) -> dict:
    counts = {"sfm": 0, "pnp": 0, "interpolated": 0, "none": 0}
    for clip in json.loads((data / "gt" / "clips.json").read_text()):
        posed = json.loads((results / "pose" / clip / "summary.json").read_text())["posed"]
        for k in counts:
            counts[k] += posed.get(k, 0)
    return counts


def _deep_update(base: dict, over: dict) -> dict:
    for k, v in over.items():
        base[k] = _deep_update(base.get(k, {}), v) if isinstance(v, dict) else v
    return base


def run_tier(tier: str, seeds: list[int], work: Path, cores: int, configs: dict) -> dict:
    out = {name: {"rows": [], "det": [], "pose": [], "src": {"sfm": 0, "pnp": 0, "interpolated": 0, "none": 0}}
           for name in configs}
    for seed in seeds:
        root = work / f"{tier}-seed{seed}"
        root.mkdir(parents=True, exist_ok=True)
        data_dir = root / "data"
        for name, cfg in configs.items():
            cfg = copy.deepcopy(cfg)
            cfg["synth"] = {**cfg.get("synth", {}), **TIERS[tier], "seed": seed}
            cfg["data_dir"], cfg["results_dir"] = str(data_dir), str(root / name)
            cfile = root / f"{name}.yaml"
            cfile.write_text(yaml.safe_dump(cfg, sort_keys=False))
            first = next(iter(configs))
            if name != first and (root / first).is_dir():
                clips = json.loads((data_dir / "synth" / "gt" / "clips.json").read_text())
                e2e.share_outputs(root / first, root / name, sorted(clips))
            wall = e2e.run_snakemake(root, cfile, cores, root / f"{name}.snakemake.log")
            print(f"{tier} seed {seed} {name}: workflow {wall:.0f} s", file=sys.stderr, flush=True)
            data, res = data_dir / "synth", root / name
            o = out[name]
            o["rows"] += e2e.evaluate_rows(data, res / "submission.json")
            o["det"] += e2e.detect_diagnostics(data, res)
            o["pose"].append(e2e.pose_diagnostics(data, res))
            for k, v in pose_sources(data, res).items():
                o["src"][k] += v
    return out


def table(results: dict) -> str:
    f = e2e.fmt
    head = ("| tier | config | queries | frames posed % (SfM / PnP / interp / none) | "
            f"within {e2e.ACCURATE_DEG:g}° & {100 * e2e.ACCURATE_M:g} cm % | median rot ° | "
            "median centre cm | peak IoU≥0.5 % | last peak on track % | Succ % | Succ* % | QwP % | "
            "L2 mean m | L2 median m | angle rad |")
    lines = [head, "|" + " --- |" * (head.count("|") - 1)]
    for tier, per in results.items():
        for name, o in per.items():
            m = e2e.summary(o["rows"])
            d, src = o["det"], o["src"]
            n = sum(src.values())
            posed = 100 * (n - src["none"]) / max(n, 1)
            rots = [p["rot_med_deg"] for p in o["pose"] if p["rot_med_deg"] is not None]
            cents = [p["centre_med_m"] for p in o["pose"] if p["centre_med_m"] is not None]
            lines.append(
                f"| {tier} | {name} | {len(d)} | {posed:.1f} ({src['sfm']} / {src['pnp']} / "
                f"{src['interpolated']} / {src['none']}) | "
                f"{100 * sum(p['accurate'] for p in o['pose']) / max(n, 1):.1f} | "
                f"{f(statistics.median(rots) if rots else None, '.2f')} | "
                f"{f(100 * statistics.median(cents) if cents else None, '.1f')} | "
                f"{100 * sum(r['hit'] for r in d) / max(len(d), 1):.1f} | "
                f"{100 * sum(r['last_on_track'] for r in d) / max(len(d), 1):.1f} | "
                f"{f(m['succ'], '.1f')} | {f(m['succ_star'], '.1f')} | {f(m['qwp'], '.1f')} | "
                f"{f(m['l2'])} | {f(m['l2_median'])} | {f(m['angle'])} |")
    return "\n".join(lines)


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--tiers", nargs="+", choices=sorted(TIERS), default=["easy", "hard"])
    ap.add_argument("--seeds", type=int, nargs="+", default=[0, 1])
    ap.add_argument("--work", type=Path, help="scratch folder (default: a temp dir); reruns reuse what is done")
    ap.add_argument("--cores", type=int, default=2)
    ap.add_argument("--config-override", help="YAML merged into config.yaml for `default` (a candidate change)")
    ap.add_argument("--label", default="default", help="name of the default-config run (with --config-override: "
                                                      "e.g. colour; its results go to WORK/<tier>-seed<S>/<label>)")
    ap.add_argument("--skip-egoloc", action="store_true")
    args = ap.parse_args(argv)

    import logging
    logging.basicConfig(level=logging.WARNING)
    work = args.work or Path(tempfile.mkdtemp(prefix="tiers."))
    base = yaml.safe_load((REPO / "config.yaml").read_text())
    if args.config_override:
        _deep_update(base, yaml.safe_load(args.config_override))
    configs = {args.label: base}
    if not args.skip_egoloc:
        configs["egoloc"] = e2e.egoloc_config(base)
    results = {t: run_tier(t, args.seeds, work, args.cores, configs) for t in args.tiers}
    print(f"\nseeds {args.seeds}; tiers: " + "; ".join(f"{t} = {TIERS[t]}" for t in args.tiers) + "\n")
    print(table(results))
    for tier, per in results.items():
        for name, o in per.items():
            for r in o["rows"]:
                if not r["success"] or not r["has_pose"]:
                    print(f"  {tier} {name}: {r['clip_uid']} q{r['query_set']}: has_3d {r['has_3d']} "
                          f"has_pose {r['has_pose']} l2 {e2e.fmt(r['l2'])}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
