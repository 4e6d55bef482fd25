"""Pose benchmark on the synthetic dataset: % of clip frames posed, median rotation and camera
centre error against the ground-truth poses, and stage timings.

    python benchmarks/pose_synth.py [--work DIR] [--scenes 1] [--clips 2] [--mini]
        [--variant LABEL:key=value,... ...]

Without --mini it generates the synthetic dataset (vq3d.synth.generate), cuts each clip's frames
(vq3d.frames) and runs pose_sfm → pose_register → pose_pnp → pose_merge. --mini uses the small
in-process clip of benchmarks/pose_minisynth.py instead (no video coding). Each --variant (a pose
configuration over the defaults, e.g. `before:sfm_loop_pairs=exhaustive`) runs on the same clips,
side by side; without one, the defaults alone."""

from __future__ import annotations

import argparse
import json
import logging
import re
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

from vq3d.formats.poses import read_poses
from vq3d.config import defaults
from vq3d import geometry
from vq3d.pose import merge, pnp, register, sfm

CONF = defaults("pose")  # the whole pose section: a superset of every pose stage's slice


def run_clip(frames, intrinsics, scan_dir, scan_uid, clip_uid, work: Path, conf: dict = CONF) -> dict:
    """Our four pose stages on one clip; seconds per stage."""
    t = {}
    t0 = time.perf_counter()
    sfm.main(frames_dir=frames, intrinsics=intrinsics, out_dir=work / "sfm", scan_uid=scan_uid, conf=conf)
    t["sfm"] = time.perf_counter() - t0
    t0 = time.perf_counter()
    register.main(sfm_dir=work / "sfm", out=work / "registration.json", scan_dir=scan_dir, conf=conf)
    t["register"] = time.perf_counter() - t0
    t0 = time.perf_counter()
    pnp.main(frames_dir=frames, intrinsics=intrinsics, out=work / "pnp.json", scan_dir=scan_dir,
             scan_uid=scan_uid, conf=conf, sfm_dir=work / "sfm")
    t["pnp"] = time.perf_counter() - t0
    t0 = time.perf_counter()
    merge.main(frames_dir=frames, sfm_dir=work / "sfm", registration=work / "registration.json",
               pnp=work / "pnp.json", poses=work / "poses.json", summary=work / "summary.json",
               scan_from_model=work / "scan_from_model.json", clip_uid=clip_uid, conf=conf)
    t["merge"] = time.perf_counter() - t0
    return t


def errors(est_poses, gt_cam_from_world: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    good = est_poses.good
    rot, cen = [], []
    for i in np.flatnonzero(good):
        a, b = geometry.rigid(est_poses.cam_from_world[i]), geometry.rigid(gt_cam_from_world[i])
        rot.append(geometry.rotation_error_deg(a, b))
        cen.append(np.linalg.norm(geometry.camera_centre(a) - geometry.camera_centre(b)))
    return good, np.array(rot), np.array(cen)


def synth_clips(work: Path, scenes: int, clips: int):
    from vq3d import frames as frames_stage
    from vq3d.synth.generate import generate
    data = work / "synth"
    if not (data / "gt" / "clips.json").is_file():
        generate(data, {"scenes": scenes, "clips_per_scene": clips})
    for geo_txt in (data / "scans").glob("*/geo_register/geo.txt"):
        # Generators built before vq3d.synth.scan wrote plain floats put "np.float64(x)" there.
        geo_txt.write_text(re.sub(r"np\.float64\(([^)]*)\)", r"\1", geo_txt.read_text()))
    for clip_uid, c in json.loads((data / "gt" / "clips.json").read_text()).items():
        fdir = work / "frames" / clip_uid
        if not fdir.is_dir():
            frames_stage.main(video=data / "videos" / f"{c['video_uid']}.mp4", queries=data / "vq_val_vq3d.json",
                              out_dir=fdir, clip_uid=clip_uid, video_is_clip=False,
                              conf=defaults("frames"))
        gt = read_poses(data / "gt" / "poses" / f"{clip_uid}.json")[clip_uid].cam_from_world
        yield clip_uid, fdir, data / "scan_to_intrinsics.json", data / "scans" / c["scan_uid"], c["scan_uid"], gt


def mini_clips(work: Path, clips: int):
    sys.path.insert(0, str(Path(__file__).parent))
    from pose_minisynth import make_clip
    for k in range(clips):
        out = work / f"mini{k}"
        info = make_clip(out, seed=k, frames=120, width=640)
        yield (f"mini{k}", out / "frames", out / "intrinsics.json", out / "scan", info["scan_uid"],
               np.load(out / "gt_cam_from_world.npy"))


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--work", type=Path)
    ap.add_argument("--scenes", type=int, default=1)
    ap.add_argument("--clips", type=int, default=2)
    ap.add_argument("--mini", action="store_true")
    ap.add_argument("--variant", action="append", default=[], metavar="LABEL[:key=value,...]")
    a = ap.parse_args()
    sys.path.insert(0, str(Path(__file__).parent))
    from scaling import parse_variant
    variants = [parse_variant(v) for v in a.variant] or [("default", {})]
    logging.basicConfig(level=logging.WARNING, format="%(name)s: %(message)s")
    work = a.work or Path(tempfile.mkdtemp(prefix="pose_synth-"))
    source = mini_clips(work, a.clips) if a.mini else synth_clips(work, a.scenes, a.clips)
    stats = {label: ([], [], []) for label, _ in variants}
    for clip_uid, fdir, intr, scan_dir, scan_uid, gt in source:
        for label, over in variants:
            out = work / "pose" / label / clip_uid
            out.mkdir(parents=True, exist_ok=True)
            t = run_clip(fdir, intr, scan_dir, scan_uid, clip_uid, out, {**CONF, **over})
            good, rot, cen = errors(read_poses(out / "poses.json")[clip_uid], gt)
            s = json.loads((out / "summary.json").read_text())
            print(f"{label} {clip_uid}: {len(good)} frames, posed {100 * good.mean():.1f}% {s['posed']}, "
                  f"median rot {np.median(rot):.3f}°, median centre {100 * np.median(cen):.2f} cm, "
                  f"p90 centre {100 * np.percentile(cen, 90):.2f} cm; seconds "
                  + ", ".join(f"{k} {v:.1f}" for k, v in t.items()), flush=True)
            for acc, v in zip(stats[label], (good, rot, cen)):
                acc.append(v)
    for label, (gs, rs, cs) in stats.items():
        good, rot, cen = np.concatenate(gs), np.concatenate(rs), np.concatenate(cs)
        print(f"ALL {label}: {len(good)} frames, posed {100 * good.mean():.1f}% (target ≥ 95), median "
              f"rotation {np.median(rot):.3f}° (≤ 1), median centre {100 * np.median(cen):.2f} cm (≤ 5), "
              f"p90 centre {100 * np.percentile(cen, 90):.2f} cm")

if __name__ == "__main__":
    main()
