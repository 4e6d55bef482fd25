"""Real-data check of the registration geometry: SfM of each real Matterport scan's geo renders
(anchors `egoloc/data/geo_register/unict_3dscan_00{1..4}`, 1898×996, no intrinsics given) and a
Sim(3) to the render centres of `geo.txt`.

    python benchmarks/pose_geo_register.py [--anchors ../shared/anchors] [--max-side 1280] [--max-features 4096]
                                           [--work DIR] [--scans unict_3dscan_001 ...]

Per scan: SIFT (≤ --max-side px, one shared SIMPLE_RADIAL camera, focal estimated), exhaustive
matching (30-odd renders, no order to exploit), then both `global_mapping` and
`incremental_mapping` on the same database. For the largest sub-model of each mapper it reports
the renders registered, the Sim(3) residual (RANSAC, 0.1 m) and the leave-one-out centre error:
the Sim(3) fitted without render k predicts k's centre from its SfM centre — the error a clip
frame's position inherits from the render alignment."""

from __future__ import annotations

import argparse
import logging
import tempfile
import time
from pathlib import Path

import numpy as np
import pycolmap

from vq3d.geometry import apply_sim3, camera_centre
from vq3d.pose import colmap_io
from vq3d.pose.sim3 import ransac_sim3
from vq3d.pose.register import read_geo

SCANS = [f"unict_3dscan_00{i}" for i in range(1, 5)]


def leave_one_out(names: list[str], model: np.ndarray, scan: np.ndarray, thr: float) -> np.ndarray:
    """|sim_without_k(model_k) − scan_k| for every k (NaN where the rest cannot fit a Sim(3))."""
    err = np.full(len(names), np.nan)
    for k in range(len(names)):
        rest = np.arange(len(names)) != k
        fit = ransac_sim3(model[rest], scan[rest], thr)
        if fit is not None:
            err[k] = np.linalg.norm(apply_sim3(fit.tgt_from_src, model[k:k + 1])[0] - scan[k])
    return err


def evaluate(rec: pycolmap.Reconstruction, centres_scan: dict, thr: float) -> dict:
    imgs = {rec.image(i).name: camera_centre(rec.image(i).cam_from_world()) for i in rec.reg_image_ids()}
    names = sorted(n for n in imgs if n in centres_scan)
    out = {"registered": len(names), "focal": None, "residual_med": np.nan, "inliers": 0,
           "loo_med": np.nan, "loo_p90": np.nan}
    cams = list(rec.cameras.values())
    if cams:
        out["focal"] = float(cams[0].params[0])
    if len(names) < 4:
        return out
    model = np.stack([imgs[n] for n in names])
    scan = np.stack([centres_scan[n] for n in names])
    fit = ransac_sim3(model, scan, thr)
    if fit is not None:
        out["residual_med"] = float(np.median(fit.residuals[fit.inliers]))
        out["inliers"] = int(fit.inliers.sum())
    loo = leave_one_out(names, model, scan, thr)
    out["loo_med"] = float(np.nanmedian(loo))
    out["loo_p90"] = float(np.nanpercentile(loo, 90))
    return out


def run_scan(scan_dir: Path, work: Path, max_side: int, max_features: int, thr: float) -> dict:
    geo_dir, centres = read_geo(scan_dir)
    names = sorted(centres)
    database = work / "database.db"
    conf = {"sift_max_side": max_side, "sift_max_features": max_features}
    t = {}
    t0 = time.perf_counter()
    colmap_io.extract(database, geo_dir, names, conf, camera=None, camera_model="SIMPLE_RADIAL")
    t["features"] = time.perf_counter() - t0
    t0 = time.perf_counter()
    matching = pycolmap.FeatureMatchingOptions()
    matching.use_gpu = pycolmap.has_cuda
    pycolmap.match_exhaustive(database, matching_options=matching, device=colmap_io.device())
    t["matching"] = time.perf_counter() - t0
    res = {"renders": len(names), "seconds": t}
    for mapper in ("global", "incremental"):
        out = work / mapper
        out.mkdir()
        t0 = time.perf_counter()
        if mapper == "global":
            opts = pycolmap.GlobalPipelineOptions()
            opts.random_seed = 0
            recs = pycolmap.global_mapping(database, geo_dir, out, opts)
        else:
            opts = pycolmap.IncrementalPipelineOptions()
            opts.random_seed = 0
            recs = pycolmap.incremental_mapping(database, geo_dir, out, opts)
        t[mapper] = time.perf_counter() - t0
        sizes = sorted((r.num_reg_images() for r in recs.values()), reverse=True)
        best = max(recs.values(), key=lambda r: r.num_reg_images()) if recs else None
        ev = evaluate(best, centres, thr) if best is not None else {"registered": 0}
        ev["submodels"] = sizes
        res[mapper] = ev
    return res


def fmt(v, scale=100.0, unit="cm"):
    return "–" if v is None or not np.isfinite(v) else f"{scale * v:.1f} {unit}"


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--anchors", type=Path, default=Path(__file__).resolve().parents[2] / "shared" / "anchors")
    ap.add_argument("--max-side", type=int, default=1280)
    ap.add_argument("--max-features", type=int, default=4096)
    ap.add_argument("--threshold", type=float, default=0.1, help="Sim(3) RANSAC inlier distance, m")
    ap.add_argument("--work", type=Path)
    ap.add_argument("--scans", nargs="*", default=SCANS)
    a = ap.parse_args()
    logging.basicConfig(level=logging.WARNING, format="%(name)s: %(message)s")
    work = a.work or Path(tempfile.mkdtemp(prefix="pose_geo_register-"))
    print("| scan | renders | mapper | sub-models | registered | focal px | Sim(3) inliers | "
          "residual median | LOO centre median | LOO p90 | features / matching / mapping s |")
    print("| --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- |")
    for scan in a.scans:
        scan_work = work / scan
        scan_work.mkdir(parents=True, exist_ok=False)
        # read_geo wants <scan_dir>/geo_register/geo.txt; the anchors keep geo_register/<scan>/
        scan_dir = scan_work / "scan"
        scan_dir.mkdir()
        (scan_dir / "geo_register").symlink_to(a.anchors / "egoloc" / "data" / "geo_register" / scan)
        r = run_scan(scan_dir, scan_work, a.max_side, a.max_features, a.threshold)
        t = r["seconds"]
        for mapper in ("global", "incremental"):
            e = r[mapper]
            print(f"| {scan} | {r['renders']} | {mapper} | {e['submodels']} | {e['registered']} | "
                  f"{'–' if e.get('focal') is None else round(e['focal'])} | {e.get('inliers', 0)} | "
                  f"{fmt(e.get('residual_med'))} | {fmt(e.get('loo_med'))} | {fmt(e.get('loo_p90'))} | "
                  f"{t['features']:.0f} / {t['matching']:.0f} / {t[mapper]:.1f} |", flush=True)


if __name__ == "__main__":
    main()
