"""A small synthetic clip + scan for the pose stages, built from vq3d.synth's scene, trajectory and
renderer in the scan layout of vq3d.synth.scan, fast enough for tests:

    <out>/frames/color_%07d.jpg     fisheye clip frames (5 fps)
    <out>/intrinsics.json            scan_to_intrinsics for the frames
    <out>/scan/scan.json             {"scan_uid", "camera"}: the pinhole camera of every render
    <out>/scan/geo_register/         renders geo_N.jpg, geo.txt (name X Y Z)
    <out>/scan/refs/                 reference views: poses.json, ref_NNN.jpg, ref_NNN_depth.npy
    <out>/gt_cam_from_world.npy      N×3×4 ground-truth world→camera per frame

`python benchmarks/pose_minisynth.py OUT [--frames N] [--width W]` writes one."""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import cv2
import numpy as np

from vq3d.synth import camera as C
from vq3d.synth.render import FisheyeRenderer, Renderer
from vq3d.synth.scene import build_scene
from vq3d.synth.trajectory import trajectory

SCAN = "synthscan-0-00"


def _views_around(scene, rng, n, height=(1.3, 1.7)):
    """cam_from_world of `n` views from inside the walkable area looking at walls/furniture."""
    W, D, _ = scene.size
    out = []
    for k in range(n):
        pos = scene.walk_min + rng.random(2) * (scene.walk_max - scene.walk_min)
        centre = np.array([pos[0], pos[1], rng.uniform(*height)])
        yaw = 2 * np.pi * k / n + rng.uniform(-0.3, 0.3)
        fwd = C.yaw_pitch_forward(yaw, rng.uniform(-0.45, -0.1))
        out.append(C.cam_from_world(C.look_rotation(fwd), centre))
    return out


def make_clip(out: Path, *, seed: int = 0, frames: int = 60, width: int = 480,
              geo_renders: int = 16, refs: int = 24, fps: float = 5.0, height: int | None = None,
              camera: C.Fisheye | None = None) -> dict:
    """`height`: 9/16 of the width unless given; `camera`: the clip's fisheye (default: the
    synth's own for the size)."""
    out = Path(out)
    rng = np.random.default_rng(seed)
    scene = build_scene(rng, 3)
    height = height or int(round(width * 9 / 16)) // 2 * 2
    fish = C.fisheye_for(width, height, rng)
    fish = camera or fish  # drawn anyway: the same random stream as without a camera
    gt = trajectory(scene, rng, frames / fps, fps)[:frames]
    (out / "frames").mkdir(parents=True, exist_ok=True)
    fr = FisheyeRenderer(scene, fish)
    for i, pose in enumerate(gt):
        img, _ = fr.render(pose)
        cv2.imwrite(str(out / "frames" / f"color_{i:07d}.jpg"), img, [cv2.IMWRITE_JPEG_QUALITY, 92])
    np.save(out / "gt_cam_from_world.npy", gt)
    (out / "intrinsics.json").write_text(json.dumps({SCAN: fish.as_intrinsics()}))

    pin = C.Pinhole(width, height, 0.6 * width, 0.6 * width, width / 2, height / 2)
    rend = Renderer(scene, pin)
    geo = out / "scan" / "geo_register"
    geo.mkdir(parents=True, exist_ok=True)
    lines = []
    for k, pose in enumerate(_views_around(scene, rng, geo_renders)):
        img, _, _ = rend.render(pose, want_ids=False)
        cv2.imwrite(str(geo / f"geo_{k}.jpg"), img, [cv2.IMWRITE_JPEG_QUALITY, 92])
        c = -pose[:, :3].T @ pose[:, 3]
        lines.append(f"geo_{k}.jpg " + " ".join(repr(float(v)) for v in c))
    (geo / "geo.txt").write_text("\n".join(lines) + "\n")
    (out / "scan" / "scan.json").write_text(json.dumps({"scan_uid": SCAN, "camera": pin.as_dict()}))

    ref_dir = out / "scan" / "refs"
    ref_dir.mkdir(parents=True, exist_ok=True)
    images = {}
    for k, pose in enumerate(_views_around(scene, rng, refs)):
        img, invz, _ = rend.render(pose, want_ids=False)
        depth = np.where(invz > 0, 1.0 / np.maximum(invz, 1e-9), 0.0).astype(np.float32)
        cv2.imwrite(str(ref_dir / f"ref_{k:03d}.jpg"), img, [cv2.IMWRITE_JPEG_QUALITY, 92])
        np.save(ref_dir / f"ref_{k:03d}_depth.npy", depth)
        images[f"ref_{k:03d}.jpg"] = {"cam_from_world": pose.tolist()}
    (ref_dir / "poses.json").write_text(json.dumps({"camera": pin.as_dict(), "images": images}))
    return {"frames": frames, "width": width, "height": height, "scan_uid": SCAN}


if __name__ == "__main__":
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("out", type=Path)
    ap.add_argument("--frames", type=int, default=60)
    ap.add_argument("--width", type=int, default=480)
    ap.add_argument("--seed", type=int, default=0)
    a = ap.parse_args()
    print(make_clip(a.out, seed=a.seed, frames=a.frames, width=a.width))
