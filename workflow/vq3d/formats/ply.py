"""`mesh.ply` of a vq3d synthetic scan folder: binary little-endian PLY, vertices (float x, y, z
in the scan frame, uchar red, green, blue) and triangles (uchar count 3, int indices); the scan
surface predict's `scan` depth casts rays into (vq3d.scan.read_surface). Written atomically."""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np

from ..atomic import atomic_path
from ..errors import InputError


def write_ply_mesh(path: str | os.PathLike, vertices: np.ndarray, colours: np.ndarray,
                   faces: np.ndarray) -> None:
    """vertices N×3 (metres), colours N×3 RGB (clipped to 0..255), faces M×3 vertex indices."""
    va, fa = np.asarray(vertices), np.asarray(faces)
    v = np.zeros(len(va), dtype=[("x", "<f4"), ("y", "<f4"), ("z", "<f4"), ("red", "u1"), ("green", "u1"),
                                 ("blue", "u1")])
    v["x"], v["y"], v["z"] = va[:, 0], va[:, 1], va[:, 2]
    ca = np.clip(np.asarray(colours), 0, 255).astype(np.uint8)
    v["red"], v["green"], v["blue"] = ca[:, 0], ca[:, 1], ca[:, 2]
    f = np.zeros(len(fa), dtype=[("n", "u1"), ("a", "<i4"), ("b", "<i4"), ("c", "<i4")])
    f["n"], f["a"], f["b"], f["c"] = 3, fa[:, 0], fa[:, 1], fa[:, 2]
    header = (f"ply\nformat binary_little_endian 1.0\nelement vertex {len(v)}\n"
              "property float x\nproperty float y\nproperty float z\n"
              "property uchar red\nproperty uchar green\nproperty uchar blue\n"
              f"element face {len(f)}\nproperty list uchar int vertex_indices\nend_header\n")
    with atomic_path(path, suffix=".ply") as tmp, open(tmp, "wb") as fh:
        fh.write(header.encode())
        fh.write(v.tobytes())
        fh.write(f.tobytes())


_VERTEX = [("x", "<f4"), ("y", "<f4"), ("z", "<f4"), ("red", "u1"), ("green", "u1"), ("blue", "u1")]
_HEADER = ["format binary_little_endian 1.0", "element vertex {n}", "property float x", "property float y",
           "property float z", "property uchar red", "property uchar green", "property uchar blue",
           "element face {m}", "property list uchar int vertex_indices", "end_header"]


def read_ply_mesh(path: str | os.PathLike) -> tuple[np.ndarray, np.ndarray]:
    """(vertices N×3 float64, triangles M×3 int64) of a mesh.ply in write_ply_mesh's layout."""
    data = Path(path).read_bytes()
    end = data.find(b"end_header\n")
    if not data.startswith(b"ply\n") or end < 0:
        raise InputError(path, "not a PLY file (no 'ply' magic or no end_header)")
    lines = data[4:end + len(b"end_header")].decode("ascii", "replace").splitlines()
    try:
        n, m = int(lines[1].split()[2]), int(lines[8].split()[2])
    except (IndexError, ValueError):
        n = m = -1
    expected = [h.format(n=n, m=m) for h in _HEADER]
    if lines != expected:
        raise InputError(path, "PLY header is not vq3d's mesh layout (binary little-endian float "
                               "x y z, uchar red green blue, uchar-int triangle lists)")
    body = data[end + len(b"end_header\n"):]
    vsize, fsize = np.dtype(_VERTEX).itemsize, 13
    if len(body) != n * vsize + m * fsize:
        raise InputError(path, f"{len(body)} data bytes, expected {n * vsize + m * fsize} for {n} "
                               f"vertices and {m} triangles (truncated?)")
    v = np.frombuffer(body, dtype=_VERTEX, count=n)
    f = np.frombuffer(body, dtype=[("n", "u1"), ("a", "<i4"), ("b", "<i4"), ("c", "<i4")], count=m,
                      offset=n * vsize)
    if m and (np.any(f["n"] != 3) or min(f["a"].min(), f["b"].min(), f["c"].min()) < 0
              or max(f["a"].max(), f["b"].max(), f["c"].max()) >= n):
        raise InputError(path, "faces must be triangles indexing existing vertices")
    vertices = np.stack([v["x"], v["y"], v["z"]], axis=1).astype(np.float64)
    return vertices, np.stack([f["a"], f["b"], f["c"]], axis=1).astype(np.int64)
