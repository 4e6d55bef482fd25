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
  exactly like EgoLoc's geo_register files): renders from viewpoints spread through the room at
  eye height, for Sim(3) registration of a clip's SfM model.
"""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np

from ..formats.ply import write_ply_mesh
from ..formats.scan_refs import write_geo, write_ref_poses, write_ref_view, write_scan_json
from ..geometry import camera_centre
from .camera import Pinhole, cam_from_world, look_rotation, yaw_pitch_forward
from .render import Renderer
from .scene import Scene


def _viewpoints(scene: Scene, rng: np.random.Generator, n: int, z_range, pitch_range) -> list[np.ndarray]:
    """Cameras on a jittered grid over the walkable area, each looking a different way."""
    poses = []
    lo, hi = scene.walk_min, scene.walk_max
    for k in range(n):
        xy = lo + rng.random(2) * (hi - lo)
        yaw = 2 * np.pi * (k / n) + rng.uniform(-0.3, 0.3)
        fwd = yaw_pitch_forward(yaw, rng.uniform(*pitch_range))
        centre = np.array([xy[0], xy[1], rng.uniform(*z_range)])
        poses.append(cam_from_world(look_rotation(fwd, rng.uniform(-0.03, 0.03)), centre))
    return poses


def write_mesh(scene: Scene, path: Path) -> None:
    verts, colors, faces = [], [], []
    for q in scene.quads:
        col = scene.textures[q.tex][-1].reshape(-1, 3).mean(0)[::-1]  # BGR → RGB
        base = len(verts)
        verts.extend(q.corners)
        colors.extend([col] * 4)
        faces.extend([(base, base + 1, base + 2), (base, base + 2, base + 3)])
    write_ply_mesh(path, verts, colors, faces)


def write_scan(scene: Scene, scan_uid: str, out: Path, rng: np.random.Generator, width: int, height: int,
               n_refs: int = 24, n_geo: int = 20) -> None:
    out.mkdir(parents=True)
    cam = Pinhole(width, height, 0.55 * width, 0.55 * width, width / 2, height / 2)
    renderer = Renderer(scene, cam)
    write_scan_json(out, scan_uid, cam.as_dict(), room_size=scene.size.tolist())
    write_mesh(scene, out / "mesh.ply")
    refs = out / "refs"
    refs.mkdir()
    images = {}
    for k, pose in enumerate(_viewpoints(scene, rng, n_refs, (1.3, 1.8), (-0.5, 0.0))):
        img, invz, _ = renderer.render(pose, want_ids=False)
        name = f"ref_{k:03d}.jpg"
        depth = np.where(invz > 0, 1.0 / np.maximum(invz, 1e-9), 0).astype(np.float32)
        write_ref_view(refs, name, img, depth, 95)
        images[name] = pose
    write_ref_poses(refs, cam.as_dict(), images)
    geo = out / "geo_register"
    geo.mkdir()
    centres = {}
    for k, pose in enumerate(_viewpoints(scene, rng, n_geo, (1.5, 1.7), (-0.35, -0.1))):
        img, _, _ = renderer.render(pose, want_ids=False)
        cv2.imwrite(str(geo / f"geo_{k}.jpg"), img, [cv2.IMWRITE_JPEG_QUALITY, 95])
        centres[f"geo_{k}.jpg"] = camera_centre(pose)
    write_geo(geo, centres)
