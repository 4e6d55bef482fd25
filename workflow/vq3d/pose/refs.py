"""The scan's reference views with depth, read for PnP relocalization (layout of vq3d.synth.scan).

`scan_dir/refs/poses.json` = {"camera": {"model", "width", "height", "params"} (COLMAP camera,
pixel centres at +0.5), "images": {"ref_000.jpg": {"cam_from_world": 3×4}}}; beside each image
`ref_000_depth.npy`: float z-depth in metres per pixel (H×W, 0 or NaN where nothing was rendered)."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np
import pycolmap

from ..errors import InputError
from ..formats._common import field, load_json, vector
from . import geometry


@dataclass
class RefView:
    name: str
    image: Path
    depth: np.ndarray
    camera: pycolmap.Camera
    cam_from_world: pycolmap.Rigid3d

    def gray(self) -> np.ndarray:
        img = cv2.imread(str(self.image), cv2.IMREAD_GRAYSCALE)
        if img is None:
            raise InputError(self.image, "reference image cannot be read")
        return img

    def lift(self, xy: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Scan-frame 3D points of pixels `xy` (COLMAP convention) and a validity mask."""
        h, w = self.depth.shape
        col = np.clip(np.floor(xy[:, 0]).astype(int), 0, w - 1)
        row = np.clip(np.floor(xy[:, 1]).astype(int), 0, h - 1)
        z = self.depth[row, col]
        ok = np.isfinite(z) & (z > 0)
        z = np.where(ok, z, 0.0)
        rays = self.camera.cam_from_img(xy) if len(xy) else np.zeros((0, 2))
        pts_cam = np.hstack([rays * z[:, None], z[:, None]])
        world_from_cam = self.cam_from_world.inverse().matrix()
        return pts_cam @ world_from_cam[:, :3].T + world_from_cam[:, 3], ok


def read_camera(path, cam: dict, where: str) -> pycolmap.Camera:
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


def load_refs(scan_dir) -> list[RefView]:
    refs_dir = Path(scan_dir) / "refs"
    path = refs_dir / "poses.json"
    data = load_json(path, "reference view poses")
    camera = read_camera(path, field(path, data, "camera", dict, ""), "camera")
    views = []
    for name, v in sorted(field(path, data, "images", dict, "").items()):
        where = f"images.{name}"
        m = vector(path, field(path, v, "cam_from_world", list, where), where + ".cam_from_world", shape=(3, 4))
        image = refs_dir / name
        depth_path = refs_dir / f"{Path(name).stem}_depth.npy"
        if not image.is_file():
            raise InputError(image, f"reference image named in {path} ({where}) does not exist")
        try:
            depth = np.load(depth_path).astype(np.float32)
        except (OSError, ValueError) as exc:
            raise InputError(depth_path, f"depth map of {where} cannot be read: {exc}") from None
        if depth.shape != (camera.height, camera.width):
            raise InputError(depth_path, f"depth is {depth.shape}, the reference camera is "
                                         f"{camera.height}x{camera.width}")
        try:
            cam_from_world = geometry.rigid(m)
        except ValueError as exc:
            raise InputError(path, f"{where}.cam_from_world: {exc}") from None
        views.append(RefView(name, image, depth, camera, cam_from_world))
    if not views:
        raise InputError(path, "no reference views")
    return views
