"""Synthetic benchmark speed: fisheye render fps at 640×480, and wall time of the default dataset.

    python benchmarks/synth_speed.py [--frames 200] [--skip-dataset]
"""

import argparse
import os
import resource
import tempfile
import time
from pathlib import Path

import numpy as np

from vq3d.config import load_config
from vq3d.synth.camera import fisheye_for
from vq3d.synth.generate import generate
from vq3d.synth.render import FisheyeRenderer
from vq3d.synth.scene import build_scene
from vq3d.synth.trajectory import trajectory


def render_fps(n: int) -> float:
    rng = np.random.default_rng(0)
    scene = build_scene(rng, 3)
    renderer = FisheyeRenderer(scene, fisheye_for(640, 480, rng))
    poses = trajectory(scene, rng, n / 15, 15)
    renderer.render(poses[0])
    t = time.perf_counter()
    for p in poses:
        renderer.render(p)
    return len(poses) / (time.perf_counter() - t)


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--frames", type=int, default=200)
    ap.add_argument("--skip-dataset", action="store_true")
    a = ap.parse_args()
    print(f"render fps (640x480 RADIAL_FISHEYE, image + ids, 1 process): {render_fps(a.frames):.1f}")
    if not a.skip_dataset:
        conf = load_config(Path(__file__).resolve().parents[1] / "config.yaml")["synth"]
        with tempfile.TemporaryDirectory() as tmp:
            t = time.perf_counter()
            generate(Path(tmp) / "synth", conf)
            wall = time.perf_counter() - t
            cpu = sum(getattr(resource.getrusage(w), f) for w in (resource.RUSAGE_SELF, resource.RUSAGE_CHILDREN)
                      for f in ("ru_utime", "ru_stime"))
            print(f"default dataset ({conf}): {wall:.1f} s wall, {cpu:.0f} s CPU in all processes "
                  f"(load average {os.getloadavg()[0]:.1f})")


if __name__ == "__main__":
    main()
