"""Export a synthetic room as a Matterport "MatterPak": textured OBJ + MTL + texture JPEGs and the
coloured point cloud, the form in which Ego4D's `3d_scans` deliver the real scans.

What a real scan folder holds (facts from the reference code; see docs/replica.md):
- Ego4D's `visualize_render_images.py` opens `scans/<scan folder>/` ("matterpak") and loads the
  first `*.obj` it finds with Open3D (`read_triangle_mesh`, which follows the OBJ's `mtllib` and
  the MTL's `map_Kd` textures); the mesh is in the scan frame the annotations and the pose JSON use
  (metres, z up).
- Ego4d issue #61: the `3d_scans` tars "contain 3D mesh and point cloud information".
MatterPak file names follow Matterport's export: `<model id>.obj`, `<model id>.mtl`, textures
`<model id>_NNN.jpg`, and the point cloud `cloud.xyz` (ASCII, one `x y z r g b` point a line).

The mesh is the scene exactly as the synthetic renderer draws it (same quads, same texture
pixels), so renders of this mesh agree with the synthetic videos up to the renderer's sampling.
"""

from __future__ import annotations

import hashlib
from pathlib import Path

import cv2
import numpy as np

from ..formats.matterpak import CLOUD_NAME, write_cloud, write_mtl, write_obj
from .scene import Scene

_ALPHABET = "ABCDEFGHJKLMNPQRSTUVWXYZabcdefghijkmnopqrstuvwxyz23456789"


def model_id(name: str) -> str:
    """An 11-character Matterport-style model id, a deterministic function of `name`."""
    digest = hashlib.sha256(name.encode()).digest()
    return "".join(_ALPHABET[b % len(_ALPHABET)] for b in digest[:11])


def _quad_uv(q, w: int, h: int) -> np.ndarray:
    """OBJ texture coordinates (u right, v up) of a quad's four corners in its texture."""
    rel = q.corners - q.origin
    s = rel @ q.es / float(q.es @ q.es)
    t = rel @ q.et / float(q.et @ q.et)
    return np.stack([s / w, 1.0 - t / h], axis=1)


def write_matterpak(scene: Scene, out: Path, name: str, jpeg_quality: int = 92,
                    cloud_points_per_m2: float = 400.0, seed: int = 0) -> dict:
    """Write `<id>.obj`, `<id>.mtl`, `<id>_NNN.jpg` and `cloud.xyz` into `out` (created).

    Returns {"obj": name, "mtl": name, "textures": [names], "cloud": name, "faces": n}."""
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    mid = model_id(name)
    used = sorted({q.tex for q in scene.quads})
    tex_names = {}
    for k, tex in enumerate(used):
        tex_names[tex] = f"{mid}_{k:03d}.jpg"
        cv2.imwrite(str(out / tex_names[tex]), scene.textures[tex][0], [cv2.IMWRITE_JPEG_QUALITY, jpeg_quality])
    write_mtl(out / f"{mid}.mtl", f"MatterPak-style materials for {name}",
              [(f"mat_{tex:04d}", tex_names[tex]) for tex in used])

    vertices, uvs, groups = [], [], []
    by_tex: dict[int, list] = {}
    for q in scene.quads:
        by_tex.setdefault(q.tex, []).append(q)
    n_faces = 0
    for tex in used:
        faces = []
        h, w = scene.textures[tex][0].shape[:2]
        for q in by_tex[tex]:
            base = len(vertices) + 1
            order = [0, 1, 2, 3]
            # Counter-clockwise seen from the side the quad is visible from (OBJ front faces).
            if np.cross(q.corners[1] - q.corners[0], q.corners[2] - q.corners[0]) @ q.normal < 0:
                order = [0, 3, 2, 1]
            vertices += list(q.corners)
            uvs += list(_quad_uv(q, w, h))
            a, b, c_, d = (base + i for i in order)
            faces += [(a, b, c_), (a, c_, d)]
        groups.append((f"mat_{tex:04d}", faces))
        n_faces += len(faces)
    write_obj(out / f"{mid}.obj", f"MatterPak-style mesh of {name} (scan frame: metres, z up)",
              f"{mid}.mtl", vertices, uvs, groups)
    _write_cloud(scene, out / CLOUD_NAME, cloud_points_per_m2, np.random.default_rng(seed))
    return {"obj": f"{mid}.obj", "mtl": f"{mid}.mtl", "textures": [tex_names[t] for t in used],
            "cloud": CLOUD_NAME, "faces": n_faces}


def _write_cloud(scene: Scene, path: Path, density: float, rng: np.random.Generator) -> None:
    """Points sampled uniformly on every quad, coloured by the texture pixel under them."""
    chunks = []
    for q in scene.quads:
        tex = scene.textures[q.tex][0]
        h, w = tex.shape[:2]
        rel = q.corners - q.origin
        s = rel @ q.es / float(q.es @ q.es)
        t = rel @ q.et / float(q.et @ q.et)
        area = np.linalg.norm(np.cross(q.corners[1] - q.corners[0], q.corners[3] - q.corners[0]))
        n = max(1, int(round(area * density)))
        a, b = rng.random(n), rng.random(n)
        ss = s.min() + a * (s.max() - s.min())
        tt = t.min() + b * (t.max() - t.min())
        pts = q.origin + ss[:, None] * q.es + tt[:, None] * q.et
        px = tex[np.clip(tt.astype(int), 0, h - 1), np.clip(ss.astype(int), 0, w - 1)][:, ::-1]  # BGR → RGB
        chunks.append(np.hstack([pts, px.astype(np.float64)]))
    cloud = np.vstack(chunks)
    write_cloud(path, cloud[:, :3], cloud[:, 3:])
