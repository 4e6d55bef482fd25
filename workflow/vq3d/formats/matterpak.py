"""A Matterport "MatterPak" (Ego4D's `3d_scans`): `<id>.obj` (textured mesh, scan frame: metres, z
up), `<id>.mtl` (its materials, `map_Kd` naming each texture JPEG) and `cloud.xyz` (ASCII point
cloud, one `x y z r g b` point a line). vq3d.synth.matterpak writes them for the replica, vq3d.scan
checks a scan folder's mesh files before rendering it. Facts on the layout: docs/replica.md."""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np

from ..atomic import atomic_path, write_text
from ..errors import InputError

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


def read_obj_mesh(path: str | os.PathLike) -> tuple[np.ndarray, np.ndarray]:
    """(vertices N×3 float64, triangles M×3 int64, 0-based) of an OBJ's `v` and `f` records;
    polygons are fanned into triangles, `a/b/c` corners and negative (relative) indices read."""
    verts, faces = [], []
    with open(path, "rb") as fh:
        for no, raw in enumerate(fh, 1):
            if raw.startswith(b"v "):
                parts = raw.split()
                if len(parts) < 4:
                    raise InputError(path, f"line {no}: vertex needs x y z")
                verts.append((float(parts[1]), float(parts[2]), float(parts[3])))
            elif raw.startswith(b"f "):
                try:
                    idx = [int(c.split(b"/", 1)[0]) for c in raw.split()[1:]]
                except ValueError:
                    raise InputError(path, f"line {no}: face corners must be vertex indices") from None
                if len(idx) < 3:
                    raise InputError(path, f"line {no}: a face needs at least 3 corners")
                idx = [i - 1 if i > 0 else len(verts) + i for i in idx]
                faces.extend((idx[0], idx[k], idx[k + 1]) for k in range(1, len(idx) - 1))
    v = np.asarray(verts, np.float64).reshape(-1, 3)
    f = np.asarray(faces, np.int64).reshape(-1, 3)
    if len(f) and (f.min() < 0 or f.max() >= len(v)):
        raise InputError(path, "a face indexes a vertex that does not exist")
    return v, f
