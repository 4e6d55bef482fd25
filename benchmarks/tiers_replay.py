"""Predict again on finished benchmarks/tiers.py runs with predict settings (and optionally a peak
method) over the working tree's code, and print the tier summary: a predict-only change measured
on the same frames, detections and poses.

    python benchmarks/tiers_replay.py WORK --label NAME [--run default] [--tiers hard easy]
        [--seeds 0 1] [--predict YAML] [--peaks METHOD] [-v]

Reads WORK/<tier>-seed<S>/<run>/ (peaks/ or, from older runs, detect/), writes under
WORK/<tier>-seed<S>/replay-<label>/.
"""

from __future__ import annotations

import argparse
import logging
import sys
from pathlib import Path

import yaml

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "workflow"))
sys.path.insert(0, str(Path(__file__).parent))
import e2e_synth as e2e  # noqa: E402


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("work", type=Path)
    ap.add_argument("--label", required=True)
    ap.add_argument("--run", default="default", help="the tiers.py label whose outputs are replayed")
    ap.add_argument("--tiers", nargs="+", default=["hard", "easy"])
    ap.add_argument("--seeds", type=int, nargs="+", default=[0, 1])
    ap.add_argument("--predict", default="{}", help="YAML over the predict section")
    ap.add_argument("--peaks", help="pick the peaks again by this method from the stored boxes")
    ap.add_argument("-v", "--verbose", action="store_true", help="predict's log")
    args = ap.parse_args(argv)
    logging.basicConfig(level=logging.WARNING, format="%(name)s %(message)s")
    logging.getLogger("vq3d.predict.stage").setLevel(logging.INFO if args.verbose else logging.WARNING)
    over = yaml.safe_load(args.predict) or {}
    for tier in args.tiers:
        rows = []
        for seed in args.seeds:
            root = args.work / f"{tier}-seed{seed}"
            results = root / args.run
            if not (results / "peaks").exists():  # a run from before rule peaks: detect/ has them
                (results / "peaks").symlink_to("detect")
            out = root / f"replay-{args.label}"
            (out / "predict").mkdir(parents=True, exist_ok=True)
            (out / "detect").mkdir(exist_ok=True)
            rows += e2e.evaluate_rows(root / "data" / "synth",
                                      e2e.predict_variant(root / "data" / "synth", results, out, over, args.peaks))
        m = e2e.summary(rows)
        print(f"{tier} {args.label}: queries {len(rows)}, Succ {e2e.fmt(m['succ'], '.1f')} %, Succ* "
              f"{e2e.fmt(m['succ_star'], '.1f')} %, QwP {e2e.fmt(m['qwp'], '.1f')} %, L2 mean "
              f"{e2e.fmt(m['l2'])} m, median {e2e.fmt(m['l2_median'])} m")
    return 0


if __name__ == "__main__":
    sys.exit(main())
