"""pycolmap plumbing shared by the pose stages: the clip camera, image listing, feature extraction
and matching of explicit pairs, 2D–3D correspondences through a sub-model, and the absolute-pose
RANSAC options."""

from __future__ import annotations

import logging
from pathlib import Path

import cv2
import numpy as np
import pycolmap

from ..errors import InputError
from ..formats.clip_frames import list_frames  # noqa: F401 (the pose stages' frame listing)

log = logging.getLogger(__name__)

# pycolmap's RANSAC and OpenCV's randomised FLANN trees seed themselves at random: a rerun then
# gave other PnP poses and, through merge's Sim(3) refinement, other predictions (one easy-tier
# query's L2 moved by 5 cm).
RANSAC_SEED = 0


def absolute_pose_options(max_error_px: float) -> pycolmap.AbsolutePoseEstimationOptions:
    """LO-RANSAC absolute-pose options at this inlier threshold, seeded (reruns give the same pose)."""
    est = pycolmap.AbsolutePoseEstimationOptions()
    est.ransac.max_error = float(max_error_px)
    est.ransac.random_seed = RANSAC_SEED
    return est


def image_size(path) -> tuple[int, int]:
    img = cv2.imread(str(path), cv2.IMREAD_UNCHANGED)
    if img is None:
        raise InputError(path, "cannot be read as an image")
    return img.shape[1], img.shape[0]


def read_fisheye(intrinsics, scan_uid: str, width: int, height: int) -> list[float]:
    """RADIAL_FISHEYE [f, cx, cy, k1, k2] of `scan_uid` at resolution (width, height)."""
    from ..formats.intrinsics import lookup, read_intrinsics

    fish = lookup(read_intrinsics(intrinsics), scan_uid, width, height)
    return [fish.f, fish.cx, fish.cy, fish.k1, fish.k2]


def fisheye_camera(params, width: int, height: int) -> pycolmap.Camera:
    return pycolmap.Camera(model="RADIAL_FISHEYE", width=width, height=height,
                           params=np.asarray(params, float))


def device() -> pycolmap.Device:
    """GPU SIFT where this pycolmap was built with CUDA, CPU otherwise."""
    return pycolmap.Device.cuda if pycolmap.has_cuda else pycolmap.Device.cpu


def extraction_options(conf: dict, threads: int = -1) -> pycolmap.FeatureExtractionOptions:
    """SIFT options; `threads`: the job's threads (-1: every CPU, outside a scheduler only)."""
    opts = pycolmap.FeatureExtractionOptions()
    opts.num_threads = int(threads)
    opts.max_image_size = int(conf["sift_max_side"])
    opts.sift.max_num_features = int(conf["sift_max_features"])
    opts.use_gpu = pycolmap.has_cuda
    return opts


def extract(database: Path, image_dir: Path, names: list[str], conf: dict, *,
            camera: pycolmap.Camera | None = None, camera_model: str = "SIMPLE_RADIAL",
            threads: int = -1) -> None:
    """SIFT for `names` into `database`, all sharing one camera. With `camera` its model and
    parameters are given as known priors; without, COLMAP guesses a `camera_model` to refine."""
    reader = pycolmap.ImageReaderOptions()
    if camera is not None:
        reader.camera_model = camera.model.name
        reader.camera_params = ",".join(f"{v:.10g}" for v in camera.params)
    else:
        reader.camera_model = camera_model
    pycolmap.extract_features(database, image_dir, image_names=names,
                              camera_mode=pycolmap.CameraMode.SINGLE, reader_options=reader,
                              extraction_options=extraction_options(conf, threads), device=device())


def match_pairs(database: Path, pairs: list[tuple[str, str]], work_dir: Path,
                threads: int = -1) -> None:
    """Match and geometrically verify an explicit list of image-name pairs."""
    if not pairs:
        return
    pairs_file = Path(work_dir) / "pairs.txt"
    pairs_file.write_text("".join(f"{a} {b}\n" for a, b in pairs))
    opts = pycolmap.ImportedPairingOptions()
    opts.match_list_path = str(pairs_file)
    matching = pycolmap.FeatureMatchingOptions()
    matching.use_gpu = pycolmap.has_cuda
    matching.num_threads = int(threads)
    pycolmap.match_image_pairs(database, matching_options=matching, pairing_options=opts,
                               device=device())


def image_ids(database: Path) -> dict[str, int]:
    db = pycolmap.Database.open(str(database))
    try:
        return {img.name: img.image_id for img in db.read_all_images()}
    finally:
        db.close()


def correspondences_2d3d(db: pycolmap.Database, query_id: int, recon: pycolmap.Reconstruction,
                         model_ids: list[int]) -> tuple[np.ndarray, np.ndarray]:
    """Query keypoints matched (verified inliers) to keypoints of posed model images that carry
    a 3D point: (points2D in query pixels, points3D in the model frame), one per query keypoint."""
    keypoints = db.read_keypoints(query_id)[:, :2]
    point_of_kp: dict[int, int] = {}
    for model_id in model_ids:
        if not db.exists_two_view_geometry(query_id, model_id):
            continue
        matches = db.read_two_view_geometry(query_id, model_id).inlier_matches
        image = recon.image(model_id)
        for q_idx, m_idx in matches:
            p2d = image.point2D(int(m_idx))
            if p2d.has_point3D():
                point_of_kp.setdefault(int(q_idx), p2d.point3D_id)
    if not point_of_kp:
        return np.zeros((0, 2)), np.zeros((0, 3))
    idx = np.fromiter(point_of_kp.keys(), int)
    xyz = np.array([recon.point3D(pid).xyz for pid in point_of_kp.values()])
    # COLMAP keypoints use the pixel-corner convention (centre of the top-left pixel at 0.5).
    return keypoints[idx].astype(float), xyz


def read_model(path) -> pycolmap.Reconstruction:
    """A saved SfM sub-model; a damaged one is bad input named by its folder, not a pycolmap error."""
    try:
        return pycolmap.Reconstruction(str(path))
    except (RuntimeError, ValueError) as exc:
        raise InputError(path, f"cannot read the COLMAP sub-model ({exc})") from None
