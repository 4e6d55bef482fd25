"""`mesh.ply` of a vq3d synthetic scan folder: binary little-endian PLY, vertices (float x, y, z
in the scan frame, uchar red, green, blue) and triangles (uchar count 3, int indices); read by
no stage (a viewer's copy of the room, like the real scans' meshes). Written atomically."""

from __future__ import annotations

import os

import numpy as np

from ..atomic import atomic_path


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
