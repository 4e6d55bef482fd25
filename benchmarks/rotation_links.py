"""Which consecutive frame pairs pose_pnp's rotation groups link, against the true camera steps.

    python benchmarks/rotation_links.py WORK [WORK ...] [--label default]

For every clip of every `<tier>-seed<N>/<label>/` of the WORK folders (benchmarks/tiers.py's
layout), every consecutive frame pair gets vq3d.pose.rotation_groups.link_evidence (the frames'
SIFT as pose_pnp detects it): rotation inliers, essential-matrix inliers and their ratio. Pairs are
binned by the true camera step between them (gt/poses); per tier and bin the script prints the
pairs, the ratio's quantiles, how many the link test accepts and the largest rotation error of an
accepted link. This is where LINK_MIN_RATIO comes from: stationary pairs must pass, walking ones
must not.
"""

from __future__ import annotations

import argparse
import json
import sys
from collections import defaultdict
from pathlib import Path

import cv2
import numpy as np

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "workflow"))
from vq3d import geometry  # noqa: E402
from vq3d.formats.poses import read_poses  # noqa: E402
from vq3d.pose import colmap_io, pnp, rotation_groups as rg  # noqa: E402
from vq3d.stages import stage_conf  # noqa: E402

BINS = ((0.0, 0.01, "< 1 cm"), (0.01, 0.08, "1-8 cm"), (0.08, np.inf, ">= 8 cm"))


def clip_pairs(td: Path, res: Path, clip: str, conf: dict):
    """(true step m, rotation error of the link ° or None, rotation inliers, essential inliers)
    of every consecutive frame pair of one clip."""
    gt = read_poses(td / f"data/synth/gt/poses/{clip}.json")[clip]
    intrinsics = td / "data/synth/scan_to_intrinsics.json"
    scan_uid = next(iter(json.loads(intrinsics.read_text())))
    frames = res / "clips_frames" / clip
    names = colmap_io.list_frames(frames)
    w, h = colmap_io.image_size(frames / names[0])
    camera = colmap_io.fisheye_camera(colmap_io.read_fisheye(intrinsics, scan_uid, w, h), w, h)
    detector, matcher = pnp.sift(conf), cv2.BFMatcher(cv2.NORM_L2)
    prev = None
    for i, name in enumerate(names):
        xy, desc = pnp.detect(detector, cv2.imread(str(frames / name), cv2.IMREAD_GRAYSCALE),
                              int(conf["sift_max_side"]))
        cur = rg.FrameFeatures(desc, rg.bearings(camera, xy), np.zeros((0, 2)), np.zeros((0, 3)))
        if prev is not None:
            rot, n_rot, n_ess = rg.link_evidence(prev, cur, camera.mean_focal_length(), matcher)
            step = float(np.linalg.norm(geometry.camera_centre(gt.cam_from_world[i])
                                        - geometry.camera_centre(gt.cam_from_world[i - 1])))
            linked = rg.link(prev, cur, camera.mean_focal_length(), matcher) is not None
            err = None
            if linked:
                truth = gt.cam_from_world[i][:, :3] @ gt.cam_from_world[i - 1][:, :3].T
                err = geometry.rotation_error_deg(np.column_stack([rot, np.zeros(3)]),
                                                  np.column_stack([truth, np.zeros(3)]))
            yield step, err, n_rot, n_ess
        prev = cur


def main(argv=None) -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("work", nargs="+", type=Path)
    ap.add_argument("--label", default="default")
    args = ap.parse_args(argv)
    conf = stage_conf("pose_pnp")
    rows = defaultdict(list)  # (tier, bin) -> [(ratio, linked, err)]
    for work in args.work:
        for td in sorted(work.glob("*-seed*")):
            res = td / args.label
            if not (res / "clips_frames").is_dir():
                continue
            tier = td.name.split("-seed")[0]
            for clip_dir in sorted((res / "clips_frames").iterdir()):
                for step, err, n_rot, n_ess in clip_pairs(td, res, clip_dir.name, conf):
                    label = next(b[2] for b in BINS if b[0] <= step < b[1])
                    rows[tier, label].append((n_rot / max(n_ess, 1), err is not None, err))
    print(f"link test: >= {rg.LINK_MIN_INLIERS} rotation inliers and >= {rg.LINK_MIN_RATIO} x the "
          f"essential matrix's, at {rg.LINK_MAX_ERROR_PX} px\n")
    print("| tier | true step | pairs | ratio min | ratio median | ratio max | linked | max link rotation error |")
    print("| --- | --- | --- | --- | --- | --- | --- | --- |")
    for (tier, label), items in sorted(rows.items(), key=lambda kv: (kv[0][0], [b[2] for b in BINS].index(kv[0][1]))):
        ratios = np.array([r for r, _, _ in items])
        errs = [e for _, ok, e in items if ok]
        print(f"| {tier} | {label} | {len(items)} | {ratios.min():.2f} | {np.median(ratios):.2f} | "
              f"{ratios.max():.2f} | {len(errs)} | {max(errs):.2f}° |" if errs else
              f"| {tier} | {label} | {len(items)} | {ratios.min():.2f} | {np.median(ratios):.2f} | "
              f"{ratios.max():.2f} | 0 | - |")


if __name__ == "__main__":
    main()
