"""EgoLoc's COLMAP-CLI posing recipe vs ours, side by side on the same synthetic clip(s).

    python benchmarks/pose_vs_colmap.py [--work DIR] [--clips 1] [--repeats 1]

EgoLoc (github.com/Wayne-Mai/EgoLoc, colmap_utils/get_camera_poses_colmap.py and
register_colmap_to_matterport.py), mirrored with the `colmap` CLI on PATH (Debian 3.8 here):
  1. feature_extractor, clip frames, --ImageReader.camera_model RADIAL_FISHEYE with the scan's
     known params, --ImageReader.single_camera 1, CPU SIFT (defaults otherwise: max_image_size
     3200, max_num_features 8192, all cores);
  2. sequential_matcher (defaults: overlap 10, quadratic overlap). EgoLoc adds
     --SequentialMatching.loop_detection 1 with the Flickr100K vocabulary tree, which is not
     available offline here: loop detection is off (it can only add pairs, i.e. time);
  3. mapper (defaults) → sparse/<k>;
  4. feature_extractor of the scan's geo renders into the same database (default camera model,
     one camera per image, as EgoLoc);
  5. EgoLoc runs vocab_tree_matcher with the render list as match_list_path (each render matched
     to its ≤ 100 retrieved images). Without the tree we match every render to every other image
     with matches_importer (≤ 1.4× the pairs on a 120-frame clip with 20 renders);
  6. per sub-model: image_registrator (--Mapper.init_min_num_inliers 20, EgoLoc's value for the
     Baker/Carpenter scans), then model_aligner --ref_images_path geo.txt --ref_is_gps 0
     --alignment_type custom --robust_alignment 1 --robust_alignment_max_error 5
     --estimate_scale 1.
  A frame's pose comes from the largest aligned sub-model holding it (EgoLoc's pose exporter is
  not published; the same rule as ours). No PnP, no interpolation.
Ours: vq3d.pose.sfm → register → pnp → merge with the config defaults (as benchmarks/pose_synth.py).

Both sides run in the same process, alternating (EgoLoc first on odd repeats, ours first on even
ones), on the same frames; wall time includes everything from frames to poses."""

from __future__ import annotations

import argparse
import json
import logging
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import pycolmap

sys.path.insert(0, str(Path(__file__).parent))
from pose_synth import errors, run_clip, synth_clips  # noqa: E402

from vq3d.config import load_config  # noqa: E402
from vq3d.formats.poses import ClipPoses, read_poses  # noqa: E402
from vq3d.pose import colmap_io  # noqa: E402
from vq3d.pose.register import read_geo  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]


def colmap(*args, log: Path) -> None:
    with open(log, "a") as f:
        f.write("$ colmap " + " ".join(map(str, args)) + "\n")
        f.flush()
        subprocess.run(["colmap", *map(str, args)], stdout=f, stderr=subprocess.STDOUT, check=True)


def run_egoloc(frames: Path, intrinsics: Path, scan_dir: Path, scan_uid: str, work: Path) -> tuple[ClipPoses, dict]:
    names = colmap_io.list_frames(frames)
    w, h = colmap_io.image_size(frames / names[0])
    params = colmap_io.read_fisheye(intrinsics, scan_uid, w, h)
    geo_dir, centres = read_geo(scan_dir)
    renders = sorted(centres)
    db, log = work / "database.db", work / "colmap.log"
    t = {}
    t0 = time.perf_counter()
    colmap("feature_extractor", "--database_path", db, "--image_path", frames,
           "--ImageReader.camera_model", "RADIAL_FISHEYE",
           "--ImageReader.camera_params", ",".join(repr(float(p)) for p in params),
           "--ImageReader.single_camera", 1, "--SiftExtraction.use_gpu", 0, log=log)
    colmap("sequential_matcher", "--database_path", db, "--SiftMatching.use_gpu", 0, log=log)
    sparse = work / "sparse"
    sparse.mkdir()
    colmap("mapper", "--database_path", db, "--image_path", frames, "--output_path", sparse, log=log)
    t["sfm"] = time.perf_counter() - t0

    t0 = time.perf_counter()
    (work / "renders.txt").write_text("".join(r + "\n" for r in renders))
    colmap("feature_extractor", "--database_path", db, "--image_path", geo_dir,
           "--image_list_path", work / "renders.txt", "--SiftExtraction.use_gpu", 0, log=log)
    others = names + renders
    (work / "pairs.txt").write_text("".join(f"{r} {o}\n" for i, r in enumerate(renders)
                                            for o in others if o != r and o not in renders[:i]))
    colmap("matches_importer", "--database_path", db, "--match_list_path", work / "pairs.txt",
           "--match_type", "pairs", "--SiftMatching.use_gpu", 0, log=log)
    aligned = {}
    for sub in sorted(p for p in sparse.iterdir() if p.is_dir()):
        merged, out = work / "merged" / sub.name, work / "aligned" / sub.name
        merged.mkdir(parents=True)
        out.mkdir(parents=True)
        colmap("image_registrator", "--database_path", db, "--input_path", sub, "--output_path", merged,
               "--Mapper.init_min_num_inliers", 20, log=log)
        if not any(merged.iterdir()):
            continue
        try:
            colmap("model_aligner", "--input_path", merged, "--output_path", out,
                   "--ref_images_path", geo_dir / "geo.txt", "--transform_path", out / "sim3.txt",
                   "--ref_is_gps", 0, "--robust_alignment", 1, "--alignment_type", "custom",
                   "--estimate_scale", 1, "--robust_alignment_max_error", 5, log=log)
        except subprocess.CalledProcessError:
            continue
        if (out / "images.bin").is_file():
            aligned[sub.name] = pycolmap.Reconstruction(out)
    t["register"] = time.perf_counter() - t0

    frame_of = {n: i for i, n in enumerate(names)}
    good = np.zeros(len(names), bool)
    cam_from_world = np.full((len(names), 3, 4), np.nan)
    size = np.zeros(len(names), int)
    for rec in aligned.values():
        n_frames = sum(rec.image(i).name in frame_of for i in rec.reg_image_ids())
        for i in rec.reg_image_ids():
            img = rec.image(i)
            f = frame_of.get(img.name)
            if f is not None and n_frames > size[f]:
                good[f], size[f] = True, n_frames
                cam_from_world[f] = img.cam_from_world().matrix()
    submodels = [len(list(sub.glob("images.bin"))) and pycolmap.Reconstruction(sub).num_reg_images()
                 for sub in sorted(p for p in sparse.iterdir() if p.is_dir())]
    return ClipPoses(good, cam_from_world), {"seconds": t, "submodels": submodels, "aligned": len(aligned)}


def run_ours(frames, intrinsics, scan_dir, scan_uid, clip_uid, work: Path, conf: dict) -> tuple[ClipPoses, dict]:
    t = run_clip(frames, intrinsics, scan_dir, scan_uid, clip_uid, work, conf)
    info = json.loads((work / "sfm" / "sfm.json").read_text())
    summary = json.loads((work / "summary.json").read_text())
    return read_poses(work / "poses.json")[clip_uid], {
        "seconds": t, "submodels": [m["images"] for m in info["models"]], "posed_by": summary["posed"],
        "sfm_seconds": info["seconds"]}


def row(side: str, clip: str, poses: ClipPoses, gt: np.ndarray, info: dict) -> dict:
    good, rot, cen = errors(poses, gt)
    wall = sum(info["seconds"].values())
    print(f"| {clip} | {side} | {wall:.1f} | {int(good.sum())}/{len(good)} | "
          f"{np.median(rot) if len(rot) else float('nan'):.3f}° | "
          f"{100 * np.median(cen) if len(cen) else float('nan'):.2f} cm | "
          f"{info['submodels']} | " + " / ".join(f"{k} {v:.1f}" for k, v in info["seconds"].items())
          + (f" | {info.get('posed_by', '')}" if "posed_by" in info else " |"), flush=True)
    return {"wall": wall, "posed": int(good.sum()), "frames": len(good),
            "rot": float(np.median(rot)) if len(rot) else np.nan,
            "cen": float(np.median(cen)) if len(cen) else np.nan}


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--work", type=Path)
    ap.add_argument("--scenes", type=int, default=1)
    ap.add_argument("--clips", type=int, default=1)
    ap.add_argument("--repeats", type=int, default=1)
    ap.add_argument("--sides", nargs="+", default=["egoloc", "ours"], choices=["egoloc", "ours"])
    ap.add_argument("--set", nargs="*", default=[], metavar="KEY=JSON",
                    help="override pose config keys for ours, e.g. sfm_overlap=5")
    a = ap.parse_args()
    logging.basicConfig(level=logging.WARNING, format="%(name)s: %(message)s")
    work = a.work or Path(tempfile.mkdtemp(prefix="pose_vs_colmap-"))
    conf = dict(load_config(ROOT / "config.yaml")["pose"])
    for kv in a.set:
        k, v = kv.split("=", 1)
        conf[k] = json.loads(v)
    print(f"ours: pose config {conf}")
    print("| clip | recipe | wall s | frames posed | median rot | median centre | SfM sub-models | "
          "seconds | ours: posed by |")
    print("| --- | --- | --- | --- | --- | --- | --- | --- | --- |")
    results = {side: [] for side in a.sides}
    (work / "runs").mkdir(parents=True, exist_ok=True)
    for clip_uid, fdir, intr, scan_dir, scan_uid, gt in synth_clips(work, a.scenes, a.clips):
        for rep in range(a.repeats):
            order = a.sides if rep % 2 == 0 else a.sides[::-1]
            for side in order:
                out = Path(tempfile.mkdtemp(prefix=f"{clip_uid}-{rep}-{side}-", dir=work / "runs"))
                if side == "egoloc":
                    poses, info = run_egoloc(fdir, intr, scan_dir, scan_uid, out)
                else:
                    poses, info = run_ours(fdir, intr, scan_dir, scan_uid, clip_uid, out, conf)
                results[side].append(row(side, clip_uid, poses, gt, info))
    med = {s: {k: float(np.median([r[k] for r in rs])) for k in ("wall", "rot", "cen")}
           for s, rs in results.items()}
    posed = {s: (sum(r["posed"] for r in rs), sum(r["frames"] for r in rs)) for s, rs in results.items()}
    if len(results) < 2:
        return
    print(f"MEDIAN over runs: EgoLoc {med['egoloc']['wall']:.1f} s, ours {med['ours']['wall']:.1f} s "
          f"→ speed-up {med['egoloc']['wall'] / med['ours']['wall']:.2f}× (target ≥ 3); posed "
          f"EgoLoc {posed['egoloc'][0]}/{posed['egoloc'][1]}, ours {posed['ours'][0]}/{posed['ours'][1]}; "
          f"median rot EgoLoc {med['egoloc']['rot']:.3f}° ours {med['ours']['rot']:.3f}°; median centre "
          f"EgoLoc {100 * med['egoloc']['cen']:.2f} cm ours {100 * med['ours']['cen']:.2f} cm")


if __name__ == "__main__":
    main()
