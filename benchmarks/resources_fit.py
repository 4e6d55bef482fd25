"""The Slurm cost model (vq3d.resources) against measured stages (issue 17.4): for every size of a
`benchmarks/scaling.py --json` file, each per-clip rule's predicted seconds next to the stage's
measured wall time, and its memory request next to the measured peak RSS (the stage's process
plus its largest child, where the JSON has it).

    python benchmarks/resources_fit.py SCALING.json [--variant LABEL[:key=value,...]]
        [--width 1440 --height 1080]

The figures are those of the variant that ran its own SfM feature extraction (the first one, by
default), as a pose_sfm job does; `--variant` picks another, with the pose keys it ran with (as
given to scaling.py). `ratio` = predicted / measured: the model is meant to sit at or
a little above 1 on a quiet 2-core machine; the request is SAFETY times the prediction, times the
attempt.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from scaling import _peak, parse_variant  # noqa: E402

# rule -> the scaling stage key ("{v}" = the variant's label); PnP's key is recorded per variant.
STAGE_OF = {"frames": "frames", "detect": "detect", "pose_sfm": "sfm_{v}",
            "pose_register": "register_{v}", "pose_pnp": None, "pose_merge": "merge_{v}",
            "predict": "predict_{v}"}


def rows(res: dict, variant: str, width: int, height: int, config: dict) -> list[tuple]:
    from vq3d import resources

    st = res["stages"]
    queries = st.get("detect", {}).get("queries", 1)
    size = resources.ClipSize(res["n_frames"], width, height, queries)
    out = []
    for rule, key in STAGE_OF.items():
        key = st.get(f"pnp_of_{variant}") if rule == "pose_pnp" else key.format(v=variant)
        rss = _peak(st, key) if key else None  # a job's memory limit counts ffmpeg too
        if rss is None:
            continue
        wall = st[key]["wall_s"]
        pred = resources.predicted_seconds(rule, size, config)
        out.append((res["n_frames"], rule, wall, pred, pred / wall,
                    resources.runtime_minutes(rule, size, config, 1), rss,
                    resources.mem_mb(rule, size, config, 1)))
    return out


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("json", nargs="+")
    ap.add_argument("--variant", metavar="LABEL[:key=value,...]",
                    help="default: the first variant of each file, at the defaults")
    ap.add_argument("--width", type=int, default=1440)
    ap.add_argument("--height", type=int, default=1080)
    args = ap.parse_args(argv)
    from vq3d.config import defaults

    label, over = parse_variant(args.variant) if args.variant else (None, {})
    config = defaults()
    config["pose"].update(over)
    print("| frames | rule | measured s | predicted s | ratio | request min | peak MB | request MB |")
    print("| --- | --- | --- | --- | --- | --- | --- | --- |")
    for path in args.json:
        for res in json.loads(Path(path).read_text()):
            if "n_frames" not in res:
                continue
            variant = label or res["variants"][0]
            for n, rule, wall, pred, ratio, minutes, rss, mem in rows(res, variant, args.width,
                                                                      args.height, config):
                print(f"| {n} | {rule} | {wall:.1f} | {pred:.1f} | {ratio:.2f} | {minutes} | "
                      f"{rss:.0f} | {mem} |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
