"""Which poses of a tiers.py run are wrong, by source, and what PnP inlier thresholds would change.

    python benchmarks/pose_errors.py WORK [WORK ...] [--label default] [--min-inliers 15 18 20]
        [--retry-min-inliers 5]

For every `<tier>-seed<N>/<label>/` of the WORK folders (benchmarks/tiers.py's layout):
1. Per pose source (SfM, PnP alone, PnP in a rotation group, interpolated), the frames posed
   and those off by more than e2e_synth.ACCURATE_DEG / ACCURATE_M from gt/poses, each named.
2. A replay of `pose.pnp_min_inliers` over the frames PnP posed alone in pose/<clip>/pnp.json:
   the right and wrong poses each threshold keeps.
3. With --retry-min-inliers N: PnP rerun on every unposed frame, accepting N inliers, and how far
   off those poses are (what a lower threshold would pose).
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "workflow"))
sys.path.insert(0, str(Path(__file__).parent))
import e2e_synth as e2e  # noqa: E402
from vq3d import geometry  # noqa: E402
from vq3d.formats.poses import read_poses  # noqa: E402


def error(cam_from_world, gt) -> tuple[float, float]:
    """(rotation °, centre m) of a pose against the true one."""
    return (geometry.rotation_error_deg(cam_from_world, gt),
            float(np.linalg.norm(geometry.camera_centre(cam_from_world) - geometry.camera_centre(gt))))


def wrong(err: tuple[float, float]) -> bool:
    return err[0] > e2e.ACCURATE_DEG or err[1] > e2e.ACCURATE_M


def runs(works: list[Path], label: str):
    """(seed folder, results folder, clip, gt ClipPoses) of every clip of every run."""
    for work in works:
        for td in sorted(work.glob("*-seed*")):
            res = td / label
            if not (res / "pose").is_dir():
                continue
            for clip_dir in sorted((res / "pose").iterdir()):
                clip = clip_dir.name
                yield td, res, clip, read_poses(td / f"data/synth/gt/poses/{clip}.json")[clip]


def by_source(works, label) -> None:
    for td, res, clip, gt in runs(works, label):
        ours = read_poses(res / "poses" / f"{clip}.json")[clip]
        source = json.loads((res / f"pose/{clip}/summary.json").read_text())["source"]
        grouped = {e["frame"] for e in json.loads((res / f"pose/{clip}/pnp.json").read_text())["posed"]
                   if "group" in e}
        counts = {}
        for i, s in enumerate(source):
            if s == "none":
                continue
            if s == "pnp" and i in grouped:
                s = "pnp (rotation group)"
            err = error(ours.cam_from_world[i], gt.cam_from_world[i])
            n, bad = counts.get(s, (0, 0))
            counts[s] = (n + 1, bad + wrong(err))
            if wrong(err):
                print(f"  {td.name} {clip} frame {i} ({s}): {err[0]:.1f}°, {err[1]:.2f} m")
        print(f"{td.name} {clip}: " + ", ".join(f"{s} {bad} wrong of {n}" for s, (n, bad) in counts.items()))


def pnp_thresholds(works, label, thresholds) -> None:
    poses = []
    for _, res, clip, gt in runs(works, label):
        for e in json.loads((res / f"pose/{clip}/pnp.json").read_text())["posed"]:
            if "group" in e:  # its inliers are the whole group's
                continue
            poses.append((e["inliers"], wrong(error(np.array(e["cam_from_world"]), gt.cam_from_world[e["frame"]]))))
    right = sum(not w for _, w in poses)
    print(f"\nPnP poses (frames posed alone): {len(poses)}, wrong {len(poses) - right}")
    for t in thresholds:
        kept = [w for n, w in poses if n >= t]
        print(f"  pnp_min_inliers {t}: keeps {kept.count(False)} of {right} right, "
              f"{kept.count(True)} of {len(poses) - right} wrong")


def retry(works, label, min_inliers: int) -> None:
    import cv2

    from vq3d.config import defaults
    from vq3d.pose import colmap_io, pnp
    from vq3d.scan import open_scan

    conf = {**defaults("pose"), "pnp_min_inliers": min_inliers}
    detector = pnp.sift(conf)
    indexes = {}
    print(f"\nPnP again on unposed frames, {min_inliers} inliers accepted:")
    for td, res, clip, gt in runs(works, label):
        data = td / "data" / "synth"
        info = json.loads((data / "gt" / "clips.json").read_text())[clip]
        scan_dir = data / "scans" / info["scan_uid"]
        if scan_dir not in indexes:
            indexes[scan_dir] = pnp.RefIndex(open_scan(scan_dir).reference_views(), detector,
                                             int(conf["sift_max_side"]))
        frames = res / "clips_frames" / clip
        names = colmap_io.list_frames(frames)
        w, h = colmap_io.image_size(frames / names[0])
        camera = colmap_io.fisheye_camera(colmap_io.read_fisheye(
            data / "scan_to_intrinsics.json", info["scan_uid"], w, h), w, h)
        source = json.loads((res / f"pose/{clip}/summary.json").read_text())["source"]
        for i in (i for i, s in enumerate(source) if s == "none"):
            gray = cv2.imread(str(frames / names[i]), cv2.IMREAD_GRAYSCALE)
            matches = pnp.scan_matches(*pnp.detect(detector, gray, int(conf["sift_max_side"])),
                                       indexes[scan_dir], conf)
            got = pnp.localize(*matches, indexes[scan_dir], camera, conf)
            if "reason" in got:
                print(f"  {td.name} {clip} frame {i}: {got['reason']}")
                continue
            err = error(got["cam_from_world"].matrix(), gt.cam_from_world[i])
            print(f"  {td.name} {clip} frame {i}: {got['inliers']} inliers of {got['matches']}, "
                  f"{err[0]:.1f}°, {err[1]:.2f} m{' (wrong)' if wrong(err) else ''}")


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("work", type=Path, nargs="+")
    ap.add_argument("--label", default="default", help="the run's config name in tiers.py")
    ap.add_argument("--min-inliers", type=int, nargs="+", default=[15, 18, 20, 25])
    ap.add_argument("--retry-min-inliers", type=int)
    args = ap.parse_args(argv)
    by_source(args.work, args.label)
    pnp_thresholds(args.work, args.label, args.min_inliers)
    if args.retry_min_inliers:
        retry(args.work, args.label, args.retry_min_inliers)
    return 0


if __name__ == "__main__":
    sys.exit(main())
