"""Files between the pose stages and from pose to predict (all JSON, written atomically; poses
world→camera in the scan frame, a similarity as {"scale": s, "matrix": 3×4 [s·R | t]}).

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
                "refs": [str],            # reference views that gave the 2D–3D matches
                "group": {"first": int, "last": int, "frames_with_inliers": int}}],
               # "group" only on a frame posed by its rotation group (inliers and matches are the
               # group's; vq3d.pose.rotation_groups)
     "failed": [{"frame": int, "reason": str}]}

summary.json (pose_merge):
    {"clip_uid": str, "frames": int,
     "posed": {"sfm": int, "pnp": int, "interpolated": int, "none": int},
     "source": [ "sfm" | "pnp" | "interpolated" | "none" per frame ],
     "rejected_disagreement": [{"frame": int, "distance_m": float}],
     "sfm_pnp_distance_m": {"median": float | null, "count": int},
     "models": [{"model": int, "images": int, "used": bool,   # used: has a scan_from_model
                 "sim3": {"source": str | null, "pnp_frames": int, "pnp_inliers": int,
                          "residual_median_m": float},       # (the last with PnP frames only)
                 "register_status": str | null, "register_reason": str | null,
                 "register_residual_median_m": float | null}]}

scan_from_model.json (pose_merge → predict) — the Sim(3) merge took each SfM sub-model into the
scan frame with (the one its poses in the pose file were made with), so predict maps the
sub-model's points with the same similarity instead of fitting one again:
    {"clip_uid": str,
     "models": [{"model": int,            # index k of sfm_dir/models/<k>, every sub-model
                 "images": int,           # clip frames registered in it
                 "scan_from_model": {"scale": float, "matrix": 3×4 [s·R | t]} | null,
                 "source": "renders" | "renders+pnp" | "pnp" | null,  # what the Sim(3) rests on
                 "reason": str | null}]}  # why there is none
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pycolmap

from ..errors import InputError
from ..geometry import rigid, sim3
from ._common import as_list, dump_json, field, load_json, load_object, uid, vector


# ---- registration.json -----------------------------------------------------------------------

def sim3_to_json(tgt_from_src: pycolmap.Sim3d) -> dict:
    return {"scale": float(tgt_from_src.scale),
            "matrix": np.asarray(tgt_from_src.matrix(), float).tolist()}


def sim3_from_json(path, value, where: str) -> pycolmap.Sim3d:
    """The Sim3d of a {"scale", "matrix"} entry (the scale is the matrix's; "scale" is for readers)."""
    matrix = vector(path, field(path, value, "matrix", list, where), where + ".matrix", shape=(3, 4))
    try:
        return sim3(matrix)
    except ValueError:
        raise InputError(path, f"{where}.matrix has no positive scale") from None


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
        out[k] = sim3_from_json(path, field(path, entry, "scan_from_model", dict, where),
                                where + ".scan_from_model")
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
        out[frame] = (rigid(m), field(path, entry, "inliers", int, where))
    return frames, out


from .pose_summary import write_summary  # noqa: E402,F401  (summary.json: formats/pose_summary.py)


# ---- scan_from_model.json (pose_merge → predict) ---------------------------------------------

SIM3_SOURCES = ("renders", "renders+pnp", "pnp", "overlap")


@dataclass
class ModelAlignment:
    """How one SfM sub-model sits in the scan frame: its scan_from_model, or why it has none."""

    model: int
    images: int
    scan_from_model: pycolmap.Sim3d | None
    source: str | None = None   # one of SIM3_SOURCES where scan_from_model is set
    reason: str | None = None   # where it is not


def write_scan_from_model(path, clip_uid: str, models: list[ModelAlignment]) -> None:
    dump_json(path, {"clip_uid": clip_uid, "models": [
        {"model": m.model, "images": m.images,
         "scan_from_model": None if m.scan_from_model is None else sim3_to_json(m.scan_from_model),
         "source": m.source, "reason": m.reason} for m in models]})


def read_scan_from_model(path, clip_uid: str | None = None) -> dict[int, ModelAlignment]:
    """{model k: its alignment}; `clip_uid`, when given, must be the file's."""
    data = load_json(path, "sub-model alignment file")
    got = uid(path, field(path, data, "clip_uid", str, ""), "clip_uid", "clip_uid")
    if clip_uid is not None and got != clip_uid:
        raise InputError(path, f"clip_uid is {got!r}, expected {clip_uid!r}")
    out = {}
    for i, entry in enumerate(as_list(path, data, "models", "")):
        where = f"models[{i}]"
        k = field(path, entry, "model", int, where)
        if k in out:
            raise InputError(path, f"{where}.model {k} is listed twice")
        value = field(path, entry, "scan_from_model", dict, where, optional=True)
        source = field(path, entry, "source", str, where, optional=True)
        reason = field(path, entry, "reason", str, where, optional=True)
        if value is None:
            sim = None
            if reason is None:
                raise InputError(path, f"{where} has neither a scan_from_model nor a reason")
        else:
            sim = sim3_from_json(path, value, where + ".scan_from_model")
            if source not in SIM3_SOURCES:
                raise InputError(path, f"{where}.source must be one of {SIM3_SOURCES}, got {source!r}")
        out[k] = ModelAlignment(k, field(path, entry, "images", int, where), sim, source, reason)
    return out


# ---- sfm.json (pose_sfm, beside models/) -------------------------------------------------------

SFM_INFO = "sfm.json"


def write_sfm_info(sfm_dir, frames: int, camera: dict, models: list[dict], seconds: dict) -> None:
    """sfm_dir/sfm.json: {"frames", "camera": {"model", "width", "height", "params"},
    "models": [{"dir", "images", "points3D"}] (largest first), "seconds": {stage: s}}."""
    dump_json(Path(sfm_dir) / SFM_INFO, {"frames": frames, "camera": camera, "models": models,
                                         "seconds": seconds})


def read_sfm_info(sfm_dir) -> dict:
    path = Path(sfm_dir) / SFM_INFO
    data = load_object(path, "SfM summary")
    field(path, data, "frames", int, "")
    field(path, data, "camera", dict, "")
    for i, m in enumerate(as_list(path, data, "models", "")):
        field(path, m, "dir", str, f"models[{i}]")
        field(path, m, "images", int, f"models[{i}]")
    return data
