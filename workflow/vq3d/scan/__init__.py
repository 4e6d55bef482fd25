"""The scan side of posing: one small interface that every scene source implements.

The pose stages need five things of the scan a clip was recorded in, and get them only here:
- `mesh()`: the textured surface (None where the source has none);
- `surface()`: the geometry predict's `scan` depth casts rays into (a synthetic scan's mesh.ply,
  a Matterport scan's OBJ);
- `reference_views()`: images with known cam_from_world and metric depth, for PnP;
- `geo_renders()`: images with known camera centres (EgoLoc's geo_register), for Sim(3) registration;
- `render_camera()`: the camera of those renders, None where unknown (EgoLoc's real renders);
- the name mapping from the scan name the annotations use to the folder holding it
  (`vq3d.formats.scan_names`, applied once per clip by `vq3d.dataset.clip_refs`: ClipRef.scan_folder).
Intrinsics of the clip camera come from scan_to_intrinsics.json keyed by the annotation scan name
(`vq3d.formats.intrinsics`), not from the scan.

Sources (layouts recognised by `open_scan`):
- `SynthScan`: vq3d's own scans (`vq3d.synth.scan`): refs/ and geo_register/ in the folder (or
  EgoLoc's geo_register/ alone: registration only).
- `MatterportScan`: a real Matterport scan as Ego4D's `3d` dataset delivers it (a textured OBJ +
  MTL + texture images, with its point cloud), whose reference views and geo renders the per-scan
  `scan_refs` rule renders from the mesh (`vq3d.scan.refs`). EgoLoc's real geo renders, placed in
  the scan folder as `geo_register/`, are used instead of rendered ones when present.
A new source (ScanNet's RGB-D scans: posed frames with depth) is one more class with these methods
plus a branch in `open_scan`; the pose stages stay as they are."""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol

import cv2
import numpy as np
import pycolmap

from ..errors import InputError
from ..formats import scan_refs as fmt
from .. import geometry
from ..formats.matterpak import mtl_textures, obj_material_libraries, read_obj_mesh
from ..formats.ply import read_ply_mesh


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
        return geometry.to_world(self.cam_from_world, pts_cam), ok


class Scan(Protocol):
    uid: str
    root: Path

    def mesh(self) -> Path | None: ...
    def surface(self) -> Path | None: ...
    def reference_views(self) -> list[RefView]: ...
    def reference_views_path(self) -> Path: ...
    def geo_renders(self) -> tuple[Path, dict[str, np.ndarray]]: ...
    def render_camera(self) -> pycolmap.Camera | None: ...


def load_ref_views(refs_dir) -> list[RefView]:
    """Reference views of a refs/ folder (`vq3d.formats.scan_refs`) as posed, liftable views."""
    camera_dict, records = fmt.read_ref_views(refs_dir)
    path = Path(refs_dir) / fmt.POSES
    camera = fmt.read_camera(path, camera_dict, "camera")
    views = []
    for r in records:
        try:
            cam_from_world = geometry.rigid(r.cam_from_world)
        except ValueError as exc:
            raise InputError(path, f"images.{r.name}.cam_from_world: {exc}") from None
        views.append(RefView(r.name, r.image, r.depth, camera, cam_from_world))
    return views


def scan_camera(folder) -> pycolmap.Camera | None:
    """The renders' camera from `folder/scan.json` ("camera"), None when there is none."""
    path = Path(folder) / "scan.json"
    if not path.is_file():
        return None
    data = fmt.load_json(path, "scan description")
    if not isinstance(data, dict):
        raise InputError(path, "scan description must be an object")
    if data.get("camera") is None:
        return None
    return fmt.read_camera(path, fmt.field(path, data, "camera", dict, ""), "camera")


class _Rendered:
    """Views and renders kept in a folder laid out like a synth scan (scan.json, refs/, geo_register/)."""

    def __init__(self, uid: str, root: Path, views_dir: Path):
        self.uid, self.root, self.views_dir = uid, root, views_dir

    def mesh(self) -> Path | None:
        return None

    def surface(self) -> Path | None:
        """The scan's geometry for ray casting (predict's `scan` depth), None where it has none."""
        return self.mesh()

    def reference_views(self) -> list[RefView]:
        return load_ref_views(self.views_dir / "refs")

    def reference_views_path(self) -> Path:
        """Where the reference views are (for messages)."""
        return Path(self.views_dir or self.root) / "refs"

    def geo_renders(self) -> tuple[Path, dict[str, np.ndarray]]:
        geo_dir = self.views_dir / "geo_register"
        return geo_dir, fmt.read_geo(geo_dir)

    def render_camera(self) -> pycolmap.Camera | None:
        return scan_camera(self.views_dir)


class SynthScan(_Rendered):
    """vq3d's own layout: a synthetic scan (views and renders made by the generator), or a folder
    of EgoLoc's geo renders alone (registration works; PnP has no views to use)."""

    def __init__(self, root: Path):
        super().__init__(root.name, root, root)

    def surface(self) -> Path | None:
        ply = self.root / "mesh.ply"  # the generator's room surfaces (vq3d.synth.scan)
        return ply if ply.is_file() else None

    def reference_views(self) -> list[RefView]:
        if not (self.root / "refs").is_dir():
            raise InputError(self.root / "refs" / fmt.POSES,
                             "no reference views for PnP: this scan folder holds geo renders only and "
                             "no textured mesh *.obj to render views from (or set pose.pnp: false)")
        return super().reference_views()


MESH_EXTS = (".obj",)


def find_mesh(root: Path) -> Path | None:
    """The scan's textured mesh: the one OBJ in the folder or one level below (a MatterPak)."""
    found = sorted(p for pat in ("*.obj", "*/*.obj") for p in root.glob(pat) if p.is_file())
    if len(found) > 1:
        raise InputError(root, f"{len(found)} meshes found ({', '.join(p.name for p in found[:4])}): "
                               "a scan folder holds one textured OBJ")
    return found[0] if found else None


def check_mesh_files(obj: Path) -> None:
    """The OBJ's material libraries and their texture images exist (a partial download otherwise
    renders untextured and PnP fails hours later)."""
    for mtl in obj_material_libraries(obj):
        if not mtl.is_file():
            raise InputError(mtl, f"material library named by {obj.name} does not exist")
        for tex in mtl_textures(mtl):
            if not tex.is_file():
                raise InputError(tex, f"texture named by {mtl.name} does not exist")


class MatterportScan(_Rendered):
    """A Matterport scan (Ego4D `3d`): textured OBJ; views rendered from it into `rendered`."""

    def __init__(self, root: Path, mesh: Path, rendered: Path | None):
        super().__init__(root.name, root, rendered)
        self._mesh = mesh

    def mesh(self) -> Path:
        return self._mesh

    def _need_rendered(self, what: str) -> Path:
        if self.views_dir is None or not (self.views_dir / "refs" / fmt.POSES).is_file():
            where = self.views_dir or "the scan_refs output"
            raise InputError(where, f"{what} of Matterport scan {self.root} not rendered yet "
                                    "(the scan_refs rule, `vq3d scan-refs`, renders them from its mesh)")
        return self.views_dir

    def reference_views(self) -> list[RefView]:
        self._need_rendered("reference views")
        return super().reference_views()

    def geo_renders(self) -> tuple[Path, dict[str, np.ndarray]]:
        own = self.root / "geo_register"
        if (own / "geo.txt").is_file():  # EgoLoc's real renders, where the user placed them
            return own, fmt.read_geo(own)
        self._need_rendered("geo renders")
        return super().geo_renders()

    def render_camera(self) -> pycolmap.Camera | None:
        if (self.root / "geo_register" / "geo.txt").is_file():
            return scan_camera(self.root)
        return super().render_camera()


def read_surface(path: Path) -> tuple[np.ndarray, np.ndarray]:
    """(vertices N×3, triangles M×3) of a scan surface: a synthetic mesh.ply or a MatterPak OBJ."""
    if Path(path).suffix.lower() == ".ply":
        return read_ply_mesh(path)
    return read_obj_mesh(path)


def open_scan(scan_dir: str | os.PathLike, rendered: str | os.PathLike | None = None) -> Scan:
    """The scan in `scan_dir`, by its layout; `rendered` is the scan_refs rule's output for it."""
    root = Path(scan_dir)
    if not root.is_dir():
        raise InputError(root, "scan folder does not exist")
    if (root / "refs").is_dir():
        return SynthScan(root)
    mesh = find_mesh(root)
    if mesh is not None:
        check_mesh_files(mesh)
        return MatterportScan(root, mesh, Path(rendered) if rendered else None)
    if (root / "geo_register").is_dir():
        return SynthScan(root)
    present = sorted(p.name + ("/" if p.is_dir() else "") for p in root.iterdir())
    listing = ", ".join(present[:8]) + (f" and {len(present) - 8} more" if len(present) > 8 else "") or "nothing"
    raise InputError(root, "not a scan folder of a known layout: expected a Matterport scan (a textured "
                           "mesh *.obj with its .mtl and texture images, as Ego4D's 3d dataset "
                           "delivers it) or a vq3d synthetic scan (refs/poses.json, geo_register/); "
                           f"found {listing}")
