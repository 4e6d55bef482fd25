"""Stage pose_pnp: relocalize clip frames against the scan's reference views with depth.

Each reference view (an image with its cam_from_world, intrinsics and z-depth, from the scan
interface `vq3d.scan`: a synthetic scan's own, or rendered from a Matterport mesh by scan_refs)
gives SIFT keypoints lifted to 3D scan points. A clip frame votes for its nearest reference views
(descriptor nearest neighbours), is matched (ratio test) to the best `pnp_refs` of them, and is
posed by LO-RANSAC absolute pose + refinement with the clip's RADIAL_FISHEYE camera. The poses fill
SfM's gaps and give merge its Sim(3) refinement and SfM/PnP disagreement check. Frames that fail
alone may still be posed jointly with the frames they share a camera centre with (a wearer turning
on the spot: pose.pnp_rotation_groups, vq3d.pose.rotation_groups).

Which frames (`pnp_check_stride`, with the clip's SfM output `sfm_dir`): every frame with stride 1
(the older behaviour, no SfM input needed); with stride k > 1, PnP runs where it adds frames or
checks: on every frame SfM did not register in a sub-model of at least SKIP_MODEL_MIN_IMAGES
images, and on every k-th frame of those it did (for merge's Sim(3) refinement and disagreement
check). PnP costs ~1 s per 1440×1080 frame on 2 cores, the largest pose cost of a long clip
(docs/benchmarks.md, scaling)."""

from __future__ import annotations

import logging
import time
from pathlib import Path

import cv2
import numpy as np
import pycolmap

from ..formats.pose_internal import write_pnp
from . import colmap_io, rotation_groups
from .rotation_groups import FrameFeatures, Group
from ..errors import InputError
from ..progress import Progress
from ..scan import RefView, open_scan

log = logging.getLogger(__name__)

# A sub-model this large has, at stride k ≤ 5, ≥ 10 check frames for merge's Sim(3) (it needs
# sim3_min_pnp_frames, 5 by default); frames of smaller ones always get PnP.
SKIP_MODEL_MIN_IMAGES = 50


def sift(conf: dict):
    return cv2.SIFT_create(nfeatures=int(conf["sift_max_features"]))


def detect(detector, gray: np.ndarray, max_side: int) -> tuple[np.ndarray, np.ndarray]:
    """Keypoints (COLMAP pixel convention, full-resolution pixels) and RootSIFT descriptors."""
    scale = min(1.0, max_side / max(gray.shape))
    small = cv2.resize(gray, None, fx=scale, fy=scale, interpolation=cv2.INTER_AREA) if scale < 1 else gray
    kps, desc = detector.detectAndCompute(small, None)
    if desc is None or not kps:
        return np.zeros((0, 2)), np.zeros((0, 128), np.float32)
    # OpenCV puts pixel centres on integers, COLMAP at +0.5; undo the resize around corners.
    xy = (np.array([k.pt for k in kps]) + 0.5) / scale
    desc = desc / np.maximum(desc.sum(1, keepdims=True), 1e-9)
    return xy, np.sqrt(desc).astype(np.float32)


class RefIndex:
    """Reference keypoints with valid depth, lifted to the scan frame, plus a retrieval index."""

    def __init__(self, refs: list[RefView], detector, max_side: int, refs_dir=None):
        self.names, self.xyz, self.desc = [], [], []
        for ref in refs:
            xy, desc = detect(detector, ref.gray(), max_side)
            pts, ok = ref.lift(xy)
            self.names.append(ref.name)
            self.xyz.append(pts[ok])
            self.desc.append(desc[ok])
        self.owner = np.concatenate([np.full(len(d), i) for i, d in enumerate(self.desc)])
        self.flann = cv2.FlannBasedMatcher({"algorithm": 1, "trees": 4}, {"checks": 32})
        self.all_desc = np.concatenate(self.desc) if self.desc else np.zeros((0, 128), np.float32)
        if not len(self.all_desc):
            raise InputError(refs_dir, "no keypoint with valid depth in any reference view "
                                       "(blank renders or empty depth maps?)")
        self.bf = cv2.BFMatcher(cv2.NORM_L2)
        points = np.concatenate(self.xyz)
        self.bounds = (points.min(axis=0), points.max(axis=0))  # where a pose's centre may lie

    def retrieve(self, desc: np.ndarray, k: int) -> list[int]:
        """The k references holding most of the frame descriptors' nearest neighbours."""
        nn = self.flann.knnMatch(desc, self.all_desc, k=1)
        votes = np.bincount([self.owner[m[0].trainIdx] for m in nn if m], minlength=len(self.names))
        return [int(i) for i in np.argsort(-votes)[:k] if votes[i] > 0]

    def match(self, desc: np.ndarray, ref: int, ratio: float) -> tuple[np.ndarray, np.ndarray]:
        if len(self.desc[ref]) < 2:
            return np.zeros(0, int), np.zeros(0, int)
        pairs = self.bf.knnMatch(desc, self.desc[ref], k=2)
        good = [(m.queryIdx, m.trainIdx) for m, n in (p for p in pairs if len(p) == 2)
                if m.distance < ratio * n.distance]
        if not good:
            return np.zeros(0, int), np.zeros(0, int)
        q, t = np.array(good).T
        return q, t


def scan_matches(xy, desc, index: RefIndex, conf: dict) -> tuple[np.ndarray, np.ndarray, list[str]]:
    """(pixels, scan points, reference views) of a frame's ratio-tested matches to its nearest
    `pnp_refs` reference views."""
    if len(desc) < 10:
        return np.zeros((0, 2)), np.zeros((0, 3)), []
    p2d, p3d, used = [], [], []
    for r in index.retrieve(desc, int(conf["pnp_refs"])):
        q, t = index.match(desc, r, float(conf["pnp_ratio"]))
        if len(q):
            p2d.append(xy[q])
            p3d.append(index.xyz[r][t])
            used.append(index.names[r])
    if not p2d:
        return np.zeros((0, 2)), np.zeros((0, 3)), []
    return np.concatenate(p2d), np.concatenate(p3d), used


def localize(p2d, p3d, refs, index: RefIndex, camera: pycolmap.Camera, conf: dict) -> dict:
    """{"cam_from_world", "inliers", "matches", "refs"} or {"reason"} of one frame's matches."""
    matches = len(p2d)
    min_inliers = int(conf["pnp_min_inliers"])
    if matches < min_inliers:
        return {"reason": f"{matches} 2D-3D matches to {len(refs)} reference view(s), need {min_inliers}"}
    est = colmap_io.absolute_pose_options(conf["pnp_max_error_px"])
    ret = pycolmap.estimate_and_refine_absolute_pose(p2d, p3d, camera, est)
    if ret is None:
        return {"reason": f"absolute pose RANSAC failed on {matches} matches"}
    if ret["num_inliers"] < min_inliers:
        return {"reason": f"{ret['num_inliers']} PnP inliers of {matches} matches, need {min_inliers}"}
    centre = ret["cam_from_world"].inverse().translation
    if not rotation_groups.inside(centre, index.bounds):
        return {"reason": f"posed outside the scan (centre {np.round(centre, 2).tolist()})"}
    return {"cam_from_world": ret["cam_from_world"], "inliers": int(ret["num_inliers"]),
            "matches": matches, "refs": refs}


class Grouper:
    """Builds rotation groups along the frames as PnP visits them and poses, at each group's end,
    its members PnP failed on (vq3d.pose.rotation_groups). Links are tried only where one of the
    two frames failed, so a clip PnP poses whole costs no extra matching."""

    def __init__(self, camera: pycolmap.Camera, bounds, conf: dict):
        self.camera, self.bounds, self.conf = camera, bounds, conf
        self.focal = float(camera.mean_focal_length())
        self.matcher = cv2.BFMatcher(cv2.NORM_L2)
        self.group, self.alone, self.prev = Group(), [], None
        self.posed = 0

    def add(self, frame: int, feats: FrameFeatures, posed_alone: bool, posed: dict, failed: dict) -> None:
        rot = None
        if (self.prev is not None and self.prev[0] == frame - 1
                and not (posed_alone and self.prev[2])
                and len(self.group.frames) < rotation_groups.GROUP_MAX_FRAMES):
            rot = rotation_groups.link(self.prev[1], feats, self.focal, self.matcher)
        if rot is None:
            self.close(posed, failed)
        self.group.add(frame, feats, rot)
        self.alone.append(posed_alone)
        self.prev = (frame, feats, posed_alone)

    def close(self, posed: dict, failed: dict) -> None:
        """Pose the current group's failed members (if any) and start an empty group."""
        group, alone = self.group, self.alone
        self.group, self.alone, self.prev = Group(), [], None
        if len(group.frames) < 2 or all(alone):
            return
        sol = rotation_groups.solve(group, self.camera, self.conf, self.bounds)
        first, last = group.frames[0], group.frames[-1]
        if "reason" in sol:
            for i, ok in zip(group.frames, alone):
                if not ok:
                    failed[i] += f"; rotation group {first}-{last}: {sol['reason']}"
            return
        for i, ok in zip(group.frames, alone):
            if ok:
                continue
            del failed[i]
            posed[i] = {"frame": i, "cam_from_world": sol["cam_from_world"][i].tolist(),
                        "inliers": sol["inliers"], "matches": sol["matches"], "refs": [],
                        "group": {"first": first, "last": last,
                                  "frames_with_inliers": sol["frames_with_inliers"]}}
            self.posed += 1


def frames_to_run(names: list[str], sfm_dir, stride: int) -> tuple[list[int], dict[int, str]]:
    """(frame indices PnP runs on, {skipped frame: reason}) for `pnp_check_stride` = stride."""
    if stride <= 1 or sfm_dir is None:
        return list(range(len(names))), {}
    from .merge import load_models

    covered: dict[int, int] = {}
    for k, frames in load_models(Path(sfm_dir), names).items():
        if len(frames) >= SKIP_MODEL_MIN_IMAGES:
            for i in frames:
                covered.setdefault(i, k)
    run = [i for i in range(len(names)) if i not in covered or i % stride == 0]
    skipped = {i: f"not run: registered by SfM sub-model {k} (pose.pnp_check_stride {stride})"
               for i, k in covered.items() if i % stride}
    return run, skipped


def main(frames_dir, intrinsics, out, scan_dir, scan_uid, conf, sfm_dir=None, scan_refs=None,
         threads: int = -1):
    """`threads`: the job's (the rule's `threads`; -1: OpenCV's default, every CPU). `sfm_dir`:
    the clip's pose_sfm output, read when pose.pnp_check_stride > 1."""
    if threads > 0:
        cv2.setNumThreads(threads)  # SIFT and FLANN; the pose estimation itself is one thread
    names = colmap_io.list_frames(frames_dir)
    if not conf["pnp"]:
        log.info("PnP disabled (pose.pnp: false): writing %d unposed frames", len(names))
        write_pnp(out, len(names), [], [{"frame": i, "reason": "PnP disabled"} for i in range(len(names))])
        return
    width, height = colmap_io.image_size(Path(frames_dir) / names[0])
    camera = colmap_io.fisheye_camera(colmap_io.read_fisheye(intrinsics, scan_uid, width, height),
                                      width, height)
    max_side = int(conf["sift_max_side"])
    detector = sift(conf)
    t0 = time.perf_counter()
    scan = open_scan(scan_dir, scan_refs)
    cv2.setRNGSeed(colmap_io.RANSAC_SEED)  # FLANN's randomised trees: the same retrieval on a rerun
    index = RefIndex(scan.reference_views(), detector, max_side, scan.reference_views_path())
    log.info("%d reference views, %d lifted keypoints (%.1f s)", len(index.names),
             len(index.all_desc), time.perf_counter() - t0)
    run, skipped = frames_to_run(names, sfm_dir, int(conf["pnp_check_stride"]))
    if skipped:
        log.info("PnP on %d of %d frames: %d registered by SfM are skipped (pnp_check_stride %d)",
                 len(run), len(names), len(skipped), int(conf["pnp_check_stride"]))
    posed: dict[int, dict] = {}
    failed: dict[int, str] = dict(skipped)
    grouper = Grouper(camera, index.bounds, conf) if conf["pnp_rotation_groups"] else None
    progress = Progress(log, "PnP:", len(run), unit="frames")
    for i in run:
        gray = cv2.imread(str(Path(frames_dir) / names[i]), cv2.IMREAD_GRAYSCALE)
        if gray is None:
            failed[i] = "unreadable image"
            if grouper:
                grouper.close(posed, failed)
            continue
        xy, desc = detect(detector, gray, max_side)
        p2d, p3d, refs = scan_matches(xy, desc, index, conf)
        res = localize(p2d, p3d, refs, index, camera, conf)
        if "reason" in res:
            failed[i] = res["reason"]
        else:
            posed[i] = {"frame": i, "cam_from_world": res["cam_from_world"].matrix().tolist(),
                        "inliers": res["inliers"], "matches": res["matches"], "refs": res["refs"]}
        if grouper:
            grouper.add(i, FrameFeatures(desc, rotation_groups.bearings(camera, xy), p2d, p3d),
                        i in posed, posed, failed)
        progress.update(extra=f"{len(posed)} posed")
    if grouper:
        grouper.close(posed, failed)
        if grouper.posed:
            log.info("rotation groups posed %d frame(s) PnP could not pose alone", grouper.posed)
    log.info("PnP: %d/%d frames posed (%d run) in %.1f s", len(posed), len(names), len(run),
             time.perf_counter() - t0)
    posed_list = [posed[i] for i in sorted(posed)]
    failed_list = [{"frame": i, "reason": r} for i, r in sorted(failed.items())]
    write_pnp(out, len(names), posed_list, failed_list)
