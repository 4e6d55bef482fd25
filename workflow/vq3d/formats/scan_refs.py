"""A scan's reference views for PnP: images with known world->camera pose and metric z-depth.

Folder layout (the synthetic scans' `refs/`, and what the `scan_refs` rule renders from a mesh):
- `poses.json`: `{"camera": {"model", "width", "height", "params"}` (COLMAP camera, pixel centres
  at +0.5), `"images": {"ref_000.jpg": {"cam_from_world": 3×4}}}` (world->camera, scan frame);
  optional `"source"` (how the views were made, free-form).
- beside each image `ref_000_depth.npy`: float32 H×W z-depth in metres (0 or NaN: no surface).
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np
import pycolmap

from ..atomic import atomic_path
from ..errors import InputError
from ._common import dump_json, field, load_json, vector

POSES = "poses.json"


def read_camera(path, cam: dict, where: str) -> pycolmap.Camera:
    """A COLMAP camera from {"model", "width", "height", "params"}, checked."""
    model = field(path, cam, "model", str, where)
    # pycolmap answers an unknown model with an opaque allocation error: name the choices here.
    if model not in pycolmap.CameraModelId.__members__:
        raise InputError(path, f"{where}.model {model!r} is not a COLMAP camera model "
                               f"(e.g. PINHOLE, RADIAL_FISHEYE)")
    params = field(path, cam, "params", list, where)
    try:
        camera = pycolmap.Camera(model=model, width=field(path, cam, "width", int, where),
                                 height=field(path, cam, "height", int, where),
                                 params=np.asarray(params, float))
    except (ValueError, TypeError, RuntimeError) as exc:
        raise InputError(path, f"{where} is not a valid COLMAP camera: {exc}") from None
    if not camera.verify_params():
        raise InputError(path, f"{where}: {len(params)} params do not fit camera model {model}")
    return camera


def depth_name(image_name: str) -> str:
    return f"{Path(image_name).stem}_depth.npy"


@dataclass
class RefRecord:
    """One reference view as stored: image path, depth map, 3×4 cam_from_world."""
    name: str
    image: Path
    depth: np.ndarray
    cam_from_world: np.ndarray


def read_ref_views(refs_dir: str | os.PathLike) -> tuple[dict, list[RefRecord]]:
    """(camera dict, views) of a reference-view folder; every file and field is checked."""
    refs_dir = Path(refs_dir)
    path = refs_dir / POSES
    data = load_json(path, "reference view poses")
    camera = field(path, data, "camera", dict, "")
    width, height = field(path, camera, "width", int, "camera"), field(path, camera, "height", int, "camera")
    views = []
    for name, v in sorted(field(path, data, "images", dict, "").items()):
        where = f"images.{name}"
        m = vector(path, field(path, v, "cam_from_world", list, where), where + ".cam_from_world", shape=(3, 4))
        image = refs_dir / name
        if not image.is_file():
            raise InputError(image, f"reference image named in {path} ({where}) does not exist")
        depth_path = refs_dir / depth_name(name)
        try:
            depth = np.load(depth_path).astype(np.float32)
        except (OSError, ValueError) as exc:
            raise InputError(depth_path, f"depth map of {where} cannot be read: {exc}") from None
        if depth.shape != (height, width):
            raise InputError(depth_path, f"depth is {depth.shape}, the reference camera is {height}x{width}")
        views.append(RefRecord(name, image, depth, np.asarray(m, float)))
    if not views:
        raise InputError(path, "no reference views")
    return camera, views


def write_ref_view(refs_dir: str | os.PathLike, name: str, bgr: np.ndarray, depth: np.ndarray,
                   jpeg_quality: int = 95) -> None:
    """One view's image and depth (each atomically); `write_ref_poses` lists it afterwards."""
    refs_dir = Path(refs_dir)
    with atomic_path(refs_dir / name, suffix=Path(name).suffix) as tmp:
        if not cv2.imwrite(str(tmp), bgr, [cv2.IMWRITE_JPEG_QUALITY, int(jpeg_quality)]):
            raise OSError(f"cannot write {refs_dir / name}")
    with atomic_path(refs_dir / depth_name(name), suffix=".npy") as tmp:
        np.save(tmp, np.nan_to_num(depth.astype(np.float32), nan=0.0))


def write_ref_poses(refs_dir: str | os.PathLike, camera: dict, cam_from_world: dict[str, np.ndarray],
                    source: str | None = None) -> None:
    data = {"camera": camera,
            "images": {n: {"cam_from_world": np.asarray(m, float)[:3].tolist()} for n, m in cam_from_world.items()}}
    if source:
        data["source"] = source
    dump_json(Path(refs_dir) / POSES, data)


def write_scan_json(scan_dir: str | os.PathLike, scan_uid: str, camera: dict | None = None,
                    **extra) -> None:
    """`scan_dir/scan.json`: {"scan_uid", "camera" (COLMAP dict of the renders, optional), ...};
    read by vq3d.scan (its renders' camera)."""
    data = {"scan_uid": scan_uid, **extra}
    if camera is not None:
        data["camera"] = camera
    dump_json(Path(scan_dir) / "scan.json", data)


def write_geo(geo_dir: str | os.PathLike, centres: dict[str, np.ndarray]) -> None:
    """EgoLoc's `geo.txt`: one `name X Y Z` line per render (camera centre, scan frame)."""
    lines = [f"{n} {float(c[0])!r} {float(c[1])!r} {float(c[2])!r}" for n, c in centres.items()]
    with atomic_path(Path(geo_dir) / "geo.txt") as tmp:
        tmp.write_text("\n".join(lines) + "\n")


def read_geo(geo_dir: str | os.PathLike) -> dict[str, np.ndarray]:
    """{render name: camera centre in the scan frame} of a geo_register folder (EgoLoc's
    `geo.txt`, lines `name X Y Z`); every listed render must exist, and a Sim(3) needs 3."""
    geo_dir = Path(geo_dir)
    geo_txt = geo_dir / "geo.txt"
    if not geo_txt.is_file():
        raise InputError(geo_txt, "geo render list does not exist (expected lines 'name X Y Z')")
    centres = {}
    for n, line in enumerate(geo_txt.read_text().splitlines(), 1):
        if not line.strip():
            continue
        parts = line.split()
        try:
            if len(parts) != 4:
                raise ValueError
            xyz = np.array([float(v) for v in parts[1:]])
            if not np.all(np.isfinite(xyz)):
                raise ValueError
        except ValueError:
            raise InputError(geo_txt, f"line {n}: expected 'name X Y Z', got {line.strip()!r:.80}") from None
        if not (geo_dir / parts[0]).is_file():
            raise InputError(geo_dir / parts[0], f"render listed on line {n} of geo.txt does not exist")
        centres[parts[0]] = xyz
    if len(centres) < 3:
        raise InputError(geo_txt, f"{len(centres)} renders listed, a Sim(3) needs at least 3")
    return centres
