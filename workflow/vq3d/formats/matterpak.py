"""A Matterport "MatterPak" (Ego4D's `3d_scans`): `<id>.obj` (textured mesh, scan frame: metres, z
up), `<id>.mtl` (its materials, `map_Kd` naming each texture JPEG) and `cloud.xyz` (ASCII point
cloud, one `x y z r g b` point a line). vq3d.synth.matterpak writes them for the replica, vq3d.scan
checks a scan folder's mesh files before rendering it. Facts on the layout: docs/replica.md."""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np

from ..atomic import atomic_path, write_text

CLOUD_NAME = "cloud.xyz"
OBJ_HEAD_BYTES = 1 << 16  # `mtllib` lines stand at the top of an OBJ; do not read a 1 GB mesh


def write_mtl(path: str | os.PathLike, comment: str, materials: list[tuple[str, str]]) -> None:
    """One untinted, unlit-specular material per (name, texture file name)."""
    lines = [f"# {comment}"]
    for name, texture in materials:
        lines += [f"newmtl {name}", "Ka 1.000000 1.000000 1.000000", "Kd 1.000000 1.000000 1.000000",
                  "Ks 0.000000 0.000000 0.000000", "d 1.0", "illum 1", f"map_Kd {texture}", ""]
    write_text(path, "\n".join(lines))


def write_obj(path: str | os.PathLike, comment: str, mtllib: str, vertices: np.ndarray,
              uvs: np.ndarray, groups: list[tuple[str, list[tuple[int, int, int]]]]) -> None:
    """Vertices (N×3) with one texture coordinate each (N×2, u right, v up), then per material
    its triangles as 1-based vertex indices (each vertex's own texture coordinate)."""
    lines = [f"# {comment}", f"mtllib {mtllib}"]
    lines += [f"v {x:.6f} {y:.6f} {z:.6f}" for x, y, z in vertices]
    lines += [f"vt {u:.6f} {v:.6f}" for u, v in uvs]
    for material, faces in groups:
        lines.append(f"usemtl {material}")
        lines += [f"f {a}/{a} {b}/{b} {c}/{c}" for a, b, c in faces]
    write_text(path, "\n".join(lines + [""]))


def obj_material_libraries(obj: str | os.PathLike) -> list[Path]:
    """The MTL files an OBJ names (`mtllib` lines of its head), as paths beside it."""
    obj = Path(obj)
    with open(obj, "rb") as fh:
        head = fh.read(OBJ_HEAD_BYTES).decode("utf-8", "replace")
    return [obj.parent / line.split(None, 1)[1].strip()
            for line in head.splitlines() if line.startswith("mtllib ") and line.split(None, 1)[1:]]


def mtl_textures(mtl: str | os.PathLike) -> list[Path]:
    """The texture images an MTL names (`map_*` lines; the file is the last word), beside it."""
    mtl = Path(mtl)
    out = []
    for line in mtl.read_text(errors="replace").splitlines():
        parts = line.strip().split(None, 1)
        if len(parts) == 2 and parts[0].lower().startswith("map_"):
            out.append(mtl.parent / parts[1].split()[-1])
    return out


def write_cloud(path: str | os.PathLike, points: np.ndarray, rgb: np.ndarray) -> None:
    with atomic_path(path) as tmp:
        np.savetxt(tmp, np.hstack([np.asarray(points, float), np.asarray(rgb, float)]),
                   fmt=["%.5f", "%.5f", "%.5f", "%d", "%d", "%d"])


def read_cloud(path: str | os.PathLike) -> tuple[np.ndarray, np.ndarray]:
    """(N×3 points, N×3 uint8 RGB) of a `cloud.xyz`."""
    data = np.loadtxt(path, ndmin=2)
    return data[:, :3], data[:, 3:6].astype(np.uint8)
