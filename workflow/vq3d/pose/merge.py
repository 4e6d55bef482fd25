"""Stage pose_merge: one world→camera pose per clip frame in the scan frame (EgoLoc-V1 rule).

1. Sim(3) per sub-model. The render-based scan_from_model of pose_register is refined (or, for a
   sub-model the renders could not register, found) with the frames PnP posed inside the
   sub-model: their centres in the sub-model and in the scan join the renders' as RANSAC
   correspondences (`refine_with_pnp`). Dozens of frames spread along the trajectory constrain
   the rotation far better than a handful of renders. A sub-model still without one takes it from
   the frames it shares with aligned sub-models (`chain_through_overlaps`: overlapping SfM
   windows, pose.sfm_window_frames).
2. Priority: a frame posed in a registered sub-model takes that pose (the largest sub-model wins
   when it is in several); PnP fills the frames SfM missed. A frame with both is rejected when
   the two camera centres are more than `max_disagreement_m` apart (one of them is wrong and we
   cannot tell which).
3. Gaps of at most `interpolate_max_gap` frames between two posed frames: slerp + linear centre.

Every sub-model's scan_from_model (or why it has none) is saved for predict, which maps the
sub-model's points into the scan frame with the similarity these poses were made with
(vq3d.formats.pose_internal, scan_from_model.json). The scan frame is the world of every pose
here: cam_from_scan is the pose file's cam_from_world."""

from __future__ import annotations

import logging
from pathlib import Path

import numpy as np
import pycolmap

from ..errors import InputError
from .. import geometry
from ..formats.pose_internal import (ModelAlignment, read_pnp, read_registration,
                                     read_registration_report, read_render_correspondences,
                                     write_scan_from_model, write_summary)
from ..formats.poses import ClipPoses, write_poses
from . import colmap_io, sim3

log = logging.getLogger(__name__)

# A Sim(3) from frame centres: its median residual must stay under this fraction of the centres'
# RMS spread, i.e. the centres fix its scale to about this relative error.
MAX_SCALE_ERROR = 0.1


def load_models(sfm_dir: Path, names: list[str]) -> dict[int, dict[int, pycolmap.Rigid3d]]:
    """{model k: {frame index: cam_from_model}} for every sub-model in sfm_dir/models."""
    frame_of = {name: i for i, name in enumerate(names)}
    models_dir = Path(sfm_dir) / "models"
    out = {}
    if not models_dir.is_dir():
        return out
    for sub in sorted(models_dir.iterdir()):
        if not (sub.is_dir() and sub.name.isdigit()):
            continue
        rec = colmap_io.read_model(sub)
        out[int(sub.name)] = {frame_of[rec.image(i).name]: rec.image(i).cam_from_world()
                              for i in rec.reg_image_ids() if rec.image(i).name in frame_of}
    return out


def fit_scan_from_model(cam_from_model: dict[int, pycolmap.Rigid3d],
                        pnp_cam_from_scan: dict[int, pycolmap.Rigid3d],
                        renders: tuple[np.ndarray, np.ndarray], initial: pycolmap.Sim3d | None,
                        conf: dict) -> tuple[pycolmap.Sim3d | None, dict]:
    """scan_from_model from render + PnP-frame centre pairs (`renders`: centres in the model and
    in the scan; `initial`: pose_register's), and what it was built from."""
    frames = sorted(set(cam_from_model) & set(pnp_cam_from_scan))
    min_frames = int(conf["sim3_min_pnp_frames"])
    info = {"source": "renders" if initial is not None else None, "pnp_frames": len(frames),
            "pnp_inliers": 0}
    if not conf["refine_with_pnp"] or len(frames) < min_frames:
        return initial, info
    src = np.concatenate([renders[0], [geometry.camera_centre(cam_from_model[i]) for i in frames]]).reshape(-1, 3)
    tgt = np.concatenate([renders[1], [geometry.camera_centre(pnp_cam_from_scan[i]) for i in frames]]).reshape(-1, 3)
    fit = sim3.ransac_sim3(src, tgt, float(conf["register_max_error_m"]))
    n_frame_inliers = 0 if fit is None else int(fit.inliers[len(renders[0]):].sum())
    if fit is None or n_frame_inliers < min_frames:
        return initial, info
    # Centres of a walking camera are nearly coplanar (constant head height), so they leave the
    # tilt weakly determined; PnP rotations pin it: R_scan_from_model = R_cam_from_scanᵀ R_cam_from_model.
    inlier_frames = [f for f, ok in zip(frames, fit.inliers[len(renders[0]):]) if ok]
    rot = sim3.robust_mean_rotation(np.stack(
        [pnp_cam_from_scan[i].rotation.matrix().T @ cam_from_model[i].rotation.matrix()
         for i in inlier_frames]))
    sim = sim3.sim3_with_rotation(rot, src[fit.inliers], tgt[fit.inliers])
    residuals = np.linalg.norm(geometry.apply_sim3(sim, src[fit.inliers]) - tgt[fit.inliers], axis=1)
    threshold = float(conf["register_max_error_m"])
    tgt_in = tgt[fit.inliers]
    spread = float(np.sqrt(((tgt_in - tgt_in.mean(0)) ** 2).sum(1).mean()))
    residual = float(np.median(residuals))
    if sim.scale <= 0 or residual > threshold or residual > MAX_SCALE_ERROR * spread:
        # Centres that hardly spread (a camera turning on the spot) fit any small scale within
        # the RANSAC threshold, and PnP rotations that disagree with them give a negative one:
        # neither fixes the sub-model's scale, which its poses and predict's SfM depth need.
        info["pnp_inliers"] = n_frame_inliers
        info["rejected"] = (f"{n_frame_inliers} PnP frames spread {spread:.2f} m (RMS), scale "
                            f"{sim.scale:.3g}, median residual {residual:.3f} m: the scale is not "
                            f"fixed (needs a positive scale and a residual under {threshold:g} m "
                            f"and {MAX_SCALE_ERROR:g} × the spread)")
        return initial, info
    info.update(source="renders+pnp" if initial is not None else "pnp", pnp_inliers=n_frame_inliers,
                residual_median_m=residual)
    return sim, info


def chain_through_overlaps(models: dict[int, dict[int, pycolmap.Rigid3d]],
                           scan_from_submodel: dict[int, pycolmap.Sim3d], sim_info: dict[int, dict],
                           pnp_cam_from_scan: dict[int, pycolmap.Rigid3d], conf: dict) -> list[int]:
    """Give a Sim(3) to sub-models that have none of their own (too few renders and PnP frames,
    e.g. an SfM window over a stretch PnP cannot pose) from the frames they share with aligned
    ones: SfM windows share `sfm_window_overlap` frames, COLMAP's own splits up to
    max_model_overlap. The shared frames' scan poses (and the sub-model's own PnP frames) enter
    fit_scan_from_model as its frame correspondences, so the same RANSAC, rotation and
    `sim3_min_pnp_frames` rules apply. Repeated until nothing changes (alignment travels along a
    chain of windows); returns the sub-models aligned this way, in order."""
    chained = []
    none = (np.zeros((0, 3)), np.zeros((0, 3)))
    grew = True
    while grew:
        grew = False
        aligned = sfm_poses(models, scan_from_submodel)
        for k in sorted(models):
            if k in scan_from_submodel:
                continue
            shared = {i: aligned[i] for i in models[k] if i in aligned}
            if len(shared) < int(conf["sim3_min_pnp_frames"]):
                continue
            own = pnp_cam_from_scan if conf["refine_with_pnp"] else {}
            sim, info = fit_scan_from_model(models[k], {**own, **shared}, none, None,
                                            {**conf, "refine_with_pnp": True})
            if sim is None:
                continue
            scan_from_submodel[k] = sim
            sim_info[k] = {**info, "source": "overlap", "overlap_frames": len(shared)}
            chained.append(k)
            grew = True
    return chained


def sfm_poses(models: dict[int, dict[int, pycolmap.Rigid3d]],
              scan_from_submodel: dict[int, pycolmap.Sim3d]) -> dict[int, pycolmap.Rigid3d]:
    """cam_from_scan of every frame in a registered sub-model (the largest sub-model wins)."""
    posed: dict[int, tuple[int, pycolmap.Rigid3d]] = {}
    for k, scan_from_model in scan_from_submodel.items():
        size = len(models[k])
        for i, cam_from_model in models[k].items():
            if i not in posed or posed[i][0] < size:
                posed[i] = (size, geometry.cam_from_scan(scan_from_model, cam_from_model))
    return {i: pose for i, (_, pose) in posed.items()}


def merge(n: int, sfm_cam_from_scan: dict[int, pycolmap.Rigid3d],
          pnp_cam_from_scan: dict[int, pycolmap.Rigid3d], max_disagreement_m: float,
          max_gap: int) -> tuple[list, list[str], list[dict], list[float]]:
    """(cam_from_scan or None per frame, source per frame, rejected frames, sfm–pnp distances)."""
    poses: list = [None] * n
    source = ["none"] * n
    rejected, distances = [], []
    for i in range(n):
        a, b = sfm_cam_from_scan.get(i), pnp_cam_from_scan.get(i)
        if a is not None and b is not None:
            d = float(np.linalg.norm(geometry.camera_centre(a) - geometry.camera_centre(b)))
            distances.append(d)
            if d > max_disagreement_m:
                rejected.append({"frame": i, "distance_m": d})
                continue
        if a is not None:
            poses[i], source[i] = a, "sfm"
        elif b is not None:
            poses[i], source[i] = b, "pnp"
    posed = [i for i in range(n) if poses[i] is not None]
    for lo, hi in zip(posed, posed[1:]):
        if 1 < hi - lo <= max_gap + 1:
            for i in range(lo + 1, hi):
                poses[i] = geometry.interpolate(poses[lo], poses[hi], (i - lo) / (hi - lo))
                source[i] = "interpolated"
    return poses, source, rejected, distances


def alignments(models: dict[int, dict], scan_from_submodel: dict[int, pycolmap.Sim3d],
               sim_info: dict[int, dict], report: dict[int, dict], conf: dict) -> list[ModelAlignment]:
    """What predict needs of each sub-model: its scan_from_model, or why there is none."""
    out = []
    for k in sorted(models):
        sim = scan_from_submodel.get(k)
        reason = None
        if sim is None:  # a registered sub-model always has one: the renders' at least
            info = sim_info[k]
            reason = (f"renders: {report.get(k, {}).get('reason') or 'not registered'}; PnP: "
                      + (info.get("rejected") or f"{info['pnp_inliers']} of {info['pnp_frames']} "
                         f"frames agree, need {conf['sim3_min_pnp_frames']}" if conf["refine_with_pnp"]
                         else "not used (pose.refine_with_pnp: false)"))
        out.append(ModelAlignment(k, len(models[k]), sim, sim_info[k]["source"] if sim is not None else None, reason))
    return out


def main(frames_dir, sfm_dir, registration, pnp, poses, summary, scan_from_model, clip_uid, conf):
    names = colmap_io.list_frames(frames_dir)
    n = len(names)
    n_pnp, pnp_posed = read_pnp(pnp)
    if n_pnp != n:
        raise InputError(pnp, f"PnP covers {n_pnp} frames but {frames_dir} holds {n}")
    pnp_cam_from_scan = {i: pose for i, (pose, _) in pnp_posed.items()}
    models = load_models(Path(sfm_dir), names)
    initial = read_registration(registration)
    renders = read_render_correspondences(registration)
    missing = sorted(set(initial) - set(models))
    if missing:
        raise InputError(registration, f"registered sub-model(s) {missing} not found in {sfm_dir}/models")

    scan_from_submodel, sim_info = {}, {}
    for k in models:
        sim, sim_info[k] = fit_scan_from_model(models[k], pnp_cam_from_scan,
                                               renders.get(k, (np.zeros((0, 3)), np.zeros((0, 3)))),
                                               initial.get(k), conf)
        if sim is not None:
            scan_from_submodel[k] = sim
    chained = chain_through_overlaps(models, scan_from_submodel, sim_info, pnp_cam_from_scan, conf)
    if chained:
        log.info("sub-model(s) %s aligned through frames shared with aligned ones", chained)
    cam_from_scan, source, rejected, distances = merge(
        n, sfm_poses(models, scan_from_submodel), pnp_cam_from_scan,
        float(conf["max_disagreement_m"]), int(conf["interpolate_max_gap"]))

    good = np.array([p is not None for p in cam_from_scan], dtype=bool)
    matrices = np.full((n, 3, 4), np.nan)
    for i, p in enumerate(cam_from_scan):
        if p is not None:
            matrices[i] = p.matrix()
    write_poses(poses, {clip_uid: ClipPoses(good, matrices)})

    report = {m.get("model"): m for m in read_registration_report(registration)}
    write_scan_from_model(scan_from_model, clip_uid,
                          alignments(models, scan_from_submodel, sim_info, report, conf))
    counts = {s: source.count(s) for s in ("sfm", "pnp", "interpolated", "none")}
    write_summary(summary, {
        "clip_uid": clip_uid, "frames": n, "posed": counts, "source": source,
        "rejected_disagreement": rejected,
        "sfm_pnp_distance_m": {"median": float(np.median(distances)) if distances else None,
                               "count": len(distances)},
        "models": [{"model": k, "images": len(models[k]), "used": k in scan_from_submodel,
                    "sim3": sim_info[k],
                    "register_status": report.get(k, {}).get("status"),
                    "register_reason": report.get(k, {}).get("reason"),
                    "register_residual_median_m": report.get(k, {}).get("residual_median_m")}
                   for k in sorted(models)],
    })
    log.info("clip %s: %d frames, sfm %d, pnp %d, interpolated %d, none %d, %d rejected "
             "(sfm/pnp centres > %.2f m apart); sub-models used %s of %d", clip_uid, n,
             counts["sfm"], counts["pnp"], counts["interpolated"], counts["none"], len(rejected),
             conf["max_disagreement_m"], sorted(scan_from_submodel), len(models))
