"""How far pose_merge's gap interpolation (slerp + linear centre, pose.interpolate_max_gap) is from
the truth on a tier's ground-truth trajectories: for every gap of k unposed frames between two
frames with their true poses, the interpolated poses against the true ones.

    python benchmarks/interp_gap.py DATA_DIR [DATA_DIR ...] [--gaps 1 2 3 4]

DATA_DIR: a synthetic dataset (its gt/poses/*.json), e.g. benchmarks/tiers.py's WORK/hard-seed0/data/synth.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "workflow"))


def errors(cam_from_world: np.ndarray, gap: int) -> tuple[list[float], list[float]]:
    """(rotation °, centre m) of every frame interpolated across every gap of `gap` frames."""
    from vq3d import geometry

    rot, centre = [], []
    n = len(cam_from_world)
    for lo in range(n - gap - 1):
        hi = lo + gap + 1
        a, b = geometry.rigid(cam_from_world[lo]), geometry.rigid(cam_from_world[hi])
        for i in range(lo + 1, hi):
            est = geometry.interpolate(a, b, (i - lo) / (hi - lo)).matrix()
            true = cam_from_world[i]
            c = (np.trace(est[:, :3] @ true[:, :3].T) - 1) / 2
            rot.append(float(np.degrees(np.arccos(np.clip(c, -1, 1)))))
            centre.append(float(np.linalg.norm(est[:, :3].T @ est[:, 3] - true[:, :3].T @ true[:, 3])))
    return rot, centre


def main(argv=None) -> int:
    from vq3d.formats.poses import read_poses

    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("data", nargs="+", type=Path)
    ap.add_argument("--gaps", type=int, nargs="+", default=[1, 2, 3, 4])
    args = ap.parse_args(argv)
    print("| gap (frames) | frames | rotation median ° | p90 ° | centre median cm | p90 cm |")
    print("| --- | --- | --- | --- | --- | --- |")
    for gap in args.gaps:
        rot, centre = [], []
        for data in args.data:
            for f in sorted((data / "gt" / "poses").glob("*.json")):
                (clip, poses), = read_poses(f).items()
                r, c = errors(poses.cam_from_world, gap)
                rot += r
                centre += c
        print(f"| {gap} | {len(rot)} | {np.median(rot):.2f} | {np.percentile(rot, 90):.2f} | "
              f"{100 * np.median(centre):.1f} | {100 * np.percentile(centre, 90):.1f} |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
