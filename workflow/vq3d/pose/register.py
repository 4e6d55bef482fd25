"""Stage pose_register: a Sim(3) from every SfM sub-model to the scan frame (EgoLoc's recipe).

The scan's geo renders (`scan_dir/geo_register/geo_N.jpg`, centres in `geo.txt` as `name X Y Z`)
are matched to keyframes of each sub-model (in a private copy of the SfM database), posed by
absolute pose against the sub-model's 3D points, and their centres in the sub-model are aligned
to the known centres by RANSAC Umeyama. A sub-model that cannot be aligned is reported with the
reason. The renders come through the scan interface (`vq3d.scan`): a synthetic scan's own, EgoLoc's
real ones, or those the scan_refs rule rendered from a Matterport mesh. Render intrinsics: the
scan's render camera when it has one; otherwise a shared SIMPLE_RADIAL camera whose focal
length is estimated per render (the real EgoLoc renders come without intrinsics)."""

from __future__ import annotations

import logging
import shutil
import tempfile
from pathlib import Path

import numpy as np
import pycolmap

from ..errors import InputError
from ..formats.scan_refs import read_geo as read_geo_centres
from ..formats.pose_internal import sim3_to_json, write_registration
from ..geometry import camera_centre
from ..progress import Progress
from ..scan import open_scan
from . import colmap_io
from .sim3 import ransac_sim3

log = logging.getLogger(__name__)


def read_geo(scan_dir) -> tuple[Path, dict[str, np.ndarray]]:
    """geo_register folder and {render name: camera centre in the scan frame} of a scan folder."""
    geo_dir = Path(scan_dir) / "geo_register"
    return geo_dir, read_geo_centres(geo_dir)


def keyframes(recon: pycolmap.Reconstruction, count: int) -> list[int]:
    """Up to `count` registered images spread evenly over the sub-model (by name = frame order)."""
    ids = sorted(recon.reg_image_ids(), key=lambda i: recon.image(i).name)
    if len(ids) <= count:
        return ids
    return [ids[int(round(j))] for j in np.linspace(0, len(ids) - 1, count)]


def pose_query(db, query_id: int, camera: pycolmap.Camera, known: bool, recon, model_ids, conf):
    """cam_from_model and inlier count of one image against a sub-model, or None."""
    pts2d, pts3d = colmap_io.correspondences_2d3d(db, query_id, recon, model_ids)
    min_inliers = int(conf["register_min_inliers"])
    if len(pts2d) < min_inliers:
        return None
    est = colmap_io.absolute_pose_options(conf["pnp_max_error_px"])
    est.estimate_focal_length = not known
    ref = pycolmap.AbsolutePoseRefinementOptions()
    ref.refine_focal_length = not known
    ret = pycolmap.estimate_and_refine_absolute_pose(pts2d, pts3d, camera, est, ref)
    if ret is None or ret["num_inliers"] < min_inliers:
        return None
    return ret["cam_from_world"], int(ret["num_inliers"])


def align_model(k: int, recon, centres_model: dict[str, np.ndarray], inliers_pnp: dict[str, int],
                centres_scan: dict[str, np.ndarray], conf: dict) -> dict:
    names = sorted(centres_model)
    entry = {"model": k, "images": recon.num_reg_images(), "status": "failed", "reason": None,
             "renders_registered": len(names), "renders_inliers": 0,
             "residual_median_m": None, "residual_max_m": None, "scan_from_model": None,
             "renders_detail": [{"name": n, "pnp_inliers": inliers_pnp[n],
                                 "centre_model": centres_model[n].tolist(),
                                 "centre_scan": centres_scan[n].tolist(), "residual_m": None,
                                 "inlier": False} for n in names]}
    min_renders = int(conf["register_min_renders"])
    if len(names) < min_renders:
        entry["reason"] = f"{len(names)} render(s) registered in the sub-model, need {min_renders}"
        return entry
    src = np.stack([centres_model[n] for n in names])
    tgt = np.stack([centres_scan[n] for n in names])
    thr = float(conf["register_max_error_m"])
    fit = ransac_sim3(src, tgt, thr)
    if fit is None or fit.inliers.sum() < min_renders:
        got = 0 if fit is None else int(fit.inliers.sum())
        entry["reason"] = (f"Sim(3) RANSAC found {got} render(s) within {thr} m of geo.txt, "
                           f"need {min_renders}")
        return entry
    for d, r, inl in zip(entry["renders_detail"], fit.residuals, fit.inliers):
        d["residual_m"], d["inlier"] = float(r), bool(inl)
    entry.update(status="ok", renders_inliers=int(fit.inliers.sum()),
                 residual_median_m=float(np.median(fit.residuals[fit.inliers])),
                 residual_max_m=float(np.max(fit.residuals[fit.inliers])),
                 scan_from_model=sim3_to_json(fit.tgt_from_src))
    return entry


def register_models(sfm_dir: Path, geo_dir: Path, centres_scan: dict, conf: dict, work: Path,
                    camera: pycolmap.Camera | None = None, threads: int = -1) -> list[dict]:
    models_dir = sfm_dir / "models"
    recons = {int(p.name): colmap_io.read_model(p) for p in sorted(models_dir.iterdir())
              if p.is_dir() and p.name.isdigit()} if models_dir.is_dir() else {}
    if not recons:
        log.warning("%s holds no sub-model: nothing to register", models_dir)
        return []
    database = work / "database.db"
    shutil.copy(sfm_dir / "database.db", database)
    renders = sorted(centres_scan)
    log.info("extracting SIFT of %d scan renders", len(renders))
    colmap_io.extract(database, geo_dir, renders, conf, camera=camera, threads=threads)
    ids = colmap_io.image_ids(database)
    n_key = int(conf["register_keyframes"])
    key_ids = {k: keyframes(rec, n_key) for k, rec in recons.items()}
    pairs = [(r, recons[k].image(i).name) for k in recons for i in key_ids[k] for r in renders]
    colmap_io.match_pairs(database, pairs, work, threads)
    log.info("matched %d renders to %d keyframes of %d sub-model(s)", len(renders),
             sum(map(len, key_ids.values())), len(recons))

    db = pycolmap.Database.open(str(database))
    try:
        entries = []
        for k, rec in recons.items():
            centres_model, inliers = {}, {}
            # image ids in the copied database equal those in the model (same database).
            model_ids = [ids[rec.image(i).name] for i in key_ids[k]]
            progress = Progress(log, f"sub-model {k}: tried", len(renders), unit="renders")
            for name in renders:
                progress.update()
                cam = db.read_camera(db.read_image(ids[name]).camera_id)
                res = pose_query(db, ids[name], cam, camera is not None, rec, model_ids, conf)
                if res is not None:
                    centres_model[name] = camera_centre(res[0])
                    inliers[name] = res[1]
            entry = align_model(k, rec, centres_model, inliers, centres_scan, conf)
            log.info("sub-model %d (%d images): %d renders posed, %s%s", k, rec.num_reg_images(),
                     len(centres_model), entry["status"],
                     f" ({entry['reason']})" if entry["reason"] else
                     f", median residual {entry['residual_median_m']:.3f} m")
            entries.append(entry)
        return entries
    finally:
        db.close()


def main(sfm_dir, out, scan_dir, conf, scan_refs=None, threads: int = -1):
    """`threads`: the job's (the rule's `threads`; -1: every CPU)."""
    sfm_dir = Path(sfm_dir)
    if not (sfm_dir / "database.db").is_file():
        raise InputError(sfm_dir / "database.db", "SfM database does not exist (run pose_sfm first)")
    scan = open_scan(scan_dir, scan_refs)
    geo_dir, centres_scan = scan.geo_renders()
    with tempfile.TemporaryDirectory(prefix="vq3d-register-") as tmp:
        entries = register_models(sfm_dir, geo_dir, centres_scan, conf, Path(tmp),
                                  scan.render_camera(), threads)
    write_registration(out, {"renders": len(centres_scan), "models": entries})
