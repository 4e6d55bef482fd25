"""The synthetic "Matterport scan" of a room: what a real scan provides to localize against.

Folder layout (`scans/<scan_uid>/`), all coordinates in the scan frame (metres, z up):
- `scan.json`: `{"scan_uid", "room_size": [W, D, H], "camera": {model PINHOLE, width, height,
  params [fx, fy, cx, cy]}}` (the camera of every render below; COLMAP pixel convention).
- `mesh.ply`: binary little-endian PLY of the room's surfaces (two triangles per quad, vertex
  colour = the surface's mean texture colour).
- `refs/ref_%03d.jpg`, `refs/ref_%03d_depth.npy` (float32 z-depth in metres, 0 = no surface) and
  `refs/poses.json`: `{"camera": {...}, "images": {"ref_000.jpg": {"cam_from_world": 3×4}}}`
  (world→camera): renders with full known poses and depth, for PnP relocalization.
- `geo_register/geo_%d.jpg` + `geo_register/geo.txt` (`name X Y Z`: camera centre of each render,
  exactly like EgoLoc's geo_register files): some of those views, for Sim(3) registration of a
  clip's SfM model.

The views stand in for what rule scan_refs renders from a real scan's mesh, so they are planned
and rendered the same way: `vq3d.scan.refs.plan_views` with the schema's `scan_refs` defaults (a
1 m grid over the floor, 8 headings, 640×480 at 80°; at most 150 views, 30 of them geo renders),
drawn by this package's textured renderer (the synthetic mesh.ply holds no textures).
`synth.ref_views` caps the count below scan_refs' 150 (small test datasets).
"""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np

from ..formats.ply import write_ply_mesh
from ..formats.scan_refs import write_geo, write_ref_poses, write_ref_view, write_scan_json
from ..geometry import camera_centre
from ..scan.render import downscaled
from .camera import Pinhole
from .render import Renderer
from .scene import Scene


def write_mesh(scene: Scene, path: Path) -> None:
    verts, colors, faces = [], [], []
    for q in scene.quads:
        col = scene.textures[q.tex][-1].reshape(-1, 3).mean(0)[::-1]  # BGR → RGB
        base = len(verts)
        verts.extend(q.corners)
        colors.extend([col] * 4)
        faces.extend([(base, base + 1, base + 2), (base, base + 2, base + 3)])
    write_ply_mesh(path, verts, colors, faces)


class PlanRenderer:
    """The renderer interface `vq3d.scan.refs.plan_views` expects (render(cam_from_world,
    downscale) -> BGR, z-depth in metres with 0 = no surface) over the synthetic renderer."""

    def __init__(self, scene: Scene, cam: Pinhole):
        self.scene, self.cam = scene, cam
        self._renderers = {1: Renderer(scene, cam)}

    def render(self, cam_from_world: np.ndarray, downscale: int = 1) -> tuple[np.ndarray, np.ndarray]:
        if downscale not in self._renderers:
            c = self.cam
            self._renderers[downscale] = Renderer(self.scene, Pinhole(
                *downscaled(c.width, c.height, (c.fx, c.fy, c.cx, c.cy), downscale)))
        img, invz, _ = self._renderers[downscale].render(np.asarray(cam_from_world, float)[:3], want_ids=False)
        return img, np.where(invz > 0, 1.0 / np.maximum(invz, 1e-9), 0).astype(np.float32)


def write_scan(scene: Scene, scan_uid: str, out: Path, max_views: int | None = None) -> int:
    """Write the scan folder (module doc); returns the number of reference views."""
    from ..config import defaults
    from ..scan.refs import geo_picks, plan_views, render_camera

    conf = defaults("scan_refs")
    if max_views is not None:
        conf["max_views"] = min(int(max_views), int(conf["max_views"]))
    w, h, f = render_camera(conf)
    cam = Pinhole(w, h, f, f, w / 2, h / 2)
    renderer = PlanRenderer(scene, cam)
    poses = plan_views(renderer, np.array([np.zeros(3), scene.size]), 0.0, conf)
    if len(poses) < 3:
        raise RuntimeError(f"synthetic scan {scan_uid}: only {len(poses)} reference viewpoint(s) planned")
    out.mkdir(parents=True)
    write_scan_json(out, scan_uid, cam.as_dict(), room_size=scene.size.tolist())
    write_mesh(scene, out / "mesh.ply")
    refs, geo = out / "refs", out / "geo_register"
    refs.mkdir()
    geo.mkdir()
    geo_pick = geo_picks(len(poses), int(conf["geo"]))
    images, centres = {}, {}
    for k, pose in enumerate(poses):
        img, depth = renderer.render(pose)
        name = f"ref_{k:03d}.jpg"
        write_ref_view(refs, name, img, depth, 95)
        images[name] = pose
        if k in geo_pick:
            gname = f"geo_{len(centres)}.jpg"
            cv2.imwrite(str(geo / gname), img, [cv2.IMWRITE_JPEG_QUALITY, 95])
            centres[gname] = camera_centre(pose)
    write_ref_poses(refs, cam.as_dict(), images)
    write_geo(geo, centres)
    return len(poses)
