"""Files between the pose stages (all JSON, written atomically, poses world→camera in the scan frame).

registration.json (pose_register) — one entry per SfM sub-model, failures kept with their reason:
    {"renders": int,                      # geo renders with a known centre (geo.txt)
     "models": [{"model": int,            # index k of sfm_dir/models/<k>
                 "images": int,           # clip frames registered in the sub-model
                 "status": "ok" | "failed",
                 "reason": str | null,    # why it failed, e.g. "2 renders registered, need 3"
                 "renders_registered": int,   # renders posed by PnP inside the sub-model
                 "renders_inliers": int,      # of those, Sim(3) RANSAC inliers
                 "residual_median_m": float | null, "residual_max_m": float | null,  # inliers
                 "scan_from_model": {"scale": float, "matrix": 3×4 [s·R | t]} | null,
                 "renders_detail": [{"name": str, "pnp_inliers": int,
                                     "centre_model": [x,y,z], "centre_scan": [x,y,z],
                                     "residual_m": float | null,
                                     "inlier": bool}]}]}

pnp.json (pose_pnp) — frame i is color_{i:07d}.jpg:
    {"frames": int,
     "posed": [{"frame": int, "cam_from_world": 3×4, "inliers": int, "matches": int,
                "refs": [str]}],          # reference views that gave the 2D–3D matches
     "failed": [{"frame": int, "reason": str}]}

summary.json (pose_merge):
    {"clip_uid": str, "frames": int,
     "posed": {"sfm": int, "pnp": int, "interpolated": int, "none": int},
     "source": [ "sfm" | "pnp" | "interpolated" | "none" per frame ],
     "rejected_disagreement": [{"frame": int, "distance_m": float}],
     "sfm_pnp_distance_m": {"median": float | null, "count": int},
     "models": [{"model": int, "status": str, "reason": str | null, "images": int,
                 "residual_median_m": float | null}]}
"""

from __future__ import annotations

import numpy as np
import pycolmap

from ..errors import InputError
from ..geometry import orthonormalise
from ._common import as_list, dump_json, field, load_json, vector


# ---- registration.json -----------------------------------------------------------------------

def sim3_to_json(scan_from_model: pycolmap.Sim3d) -> dict:
    return {"scale": float(scan_from_model.scale),
            "matrix": np.asarray(scan_from_model.matrix(), float).tolist()}


def write_registration(path, registration: dict) -> None:
    dump_json(path, registration)


def read_registration(path) -> dict[int, pycolmap.Sim3d]:
    """scan_from_model of every sub-model whose registration succeeded, keyed by model index."""
    data = load_json(path, "registration file")
    models = as_list(path, data, "models", "")
    out = {}
    for i, entry in enumerate(models):
        where = f"models[{i}]"
        k = field(path, entry, "model", int, where)
        status = field(path, entry, "status", str, where)
        if status not in ("ok", "failed"):
            raise InputError(path, f"{where}.status must be 'ok' or 'failed', got {status!r}")
        if status != "ok":
            continue
        sim = field(path, entry, "scan_from_model", dict, where)
        matrix = vector(path, field(path, sim, "matrix", list, where + ".scan_from_model"),
                        where + ".scan_from_model.matrix", shape=(3, 4))
        scale = float(np.cbrt(np.linalg.det(matrix[:, :3])))
        if not scale > 0:
            raise InputError(path, f"{where}.scan_from_model.matrix has no positive scale")
        out[k] = pycolmap.Sim3d(scale, pycolmap.Rotation3d(_orthonormal(matrix[:, :3] / scale)),
                                matrix[:, 3])
    return out


def read_registration_report(path) -> list[dict]:
    """The per-model entries as written (for the summary)."""
    return as_list(path, load_json(path, "registration file"), "models", "")


def read_render_correspondences(path) -> dict[int, tuple[np.ndarray, np.ndarray]]:
    """Per sub-model, the Sim(3)-inlier renders' centres: (in the sub-model, in the scan) n×3."""
    out = {}
    for i, entry in enumerate(read_registration_report(path)):
        k = field(path, entry, "model", int, f"models[{i}]")
        src, tgt = [], []
        for j, d in enumerate(as_list(path, entry, "renders_detail", f"models[{i}]")):
            where = f"models[{i}].renders_detail[{j}]"
            if field(path, d, "inlier", bool, where):
                src.append(vector(path, field(path, d, "centre_model", list, where), where + ".centre_model"))
                tgt.append(vector(path, field(path, d, "centre_scan", list, where), where + ".centre_scan"))
        out[k] = (np.reshape(src, (-1, 3)), np.reshape(tgt, (-1, 3)))
    return out


_orthonormal = orthonormalise


# ---- pnp.json --------------------------------------------------------------------------------

def write_pnp(path, frames: int, posed: list[dict], failed: list[dict]) -> None:
    dump_json(path, {"frames": frames, "posed": posed, "failed": failed})


def read_pnp(path) -> tuple[int, dict[int, tuple[pycolmap.Rigid3d, int]]]:
    """(frame count, {frame: (cam_from_world, inliers)})."""
    data = load_json(path, "PnP result file")
    frames = field(path, data, "frames", int, "")
    out = {}
    for i, entry in enumerate(as_list(path, data, "posed", "")):
        where = f"posed[{i}]"
        frame = field(path, entry, "frame", int, where)
        if not 0 <= frame < frames:
            raise InputError(path, f"{where}.frame {frame} outside 0..{frames - 1}")
        m = vector(path, field(path, entry, "cam_from_world", list, where), where + ".cam_from_world",
                   shape=(3, 4))
        out[frame] = (pycolmap.Rigid3d(np.hstack([_orthonormal(m[:, :3]), m[:, 3:]])),
                      field(path, entry, "inliers", int, where))
    return frames, out


def write_summary(path, summary: dict) -> None:
    dump_json(path, summary)


# ---- sfm.json (pose_sfm, beside models/) -------------------------------------------------------

SFM_INFO = "sfm.json"


def write_sfm_info(sfm_dir, frames: int, camera: dict, models: list[dict], seconds: dict) -> None:
    """sfm_dir/sfm.json: {"frames", "camera": {"model", "width", "height", "params"},
    "models": [{"dir", "images", "points3D"}] (largest first), "seconds": {stage: s}}."""
    from pathlib import Path

    dump_json(Path(sfm_dir) / SFM_INFO, {"frames": frames, "camera": camera, "models": models,
                                         "seconds": seconds})


def read_sfm_info(sfm_dir) -> dict:
    from pathlib import Path

    path = Path(sfm_dir) / SFM_INFO
    data = load_json(path, "SfM summary")
    if not isinstance(data, dict):
        raise InputError(path, "SfM summary must be a JSON object")
    field(path, data, "frames", int, "")
    field(path, data, "camera", dict, "")
    for i, m in enumerate(as_list(path, data, "models", "")):
        field(path, m, "dir", str, f"models[{i}]")
        field(path, m, "images", int, f"models[{i}]")
    return data
