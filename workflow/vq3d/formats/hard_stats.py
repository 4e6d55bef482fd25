"""The hard synthetic tier's calibration table (vq3d/synth/hard_stats.json): quantile tables of
the anchors' VQ3D val statistics and the real fisheye cameras, derived from the anchors by
benchmarks/hard_anchor_stats.py --write-table and shipped with the package."""

from __future__ import annotations

import os

from ..errors import InputError
from ._common import load_object

CAMERA_KEYS = ("scan", "width", "height", "f", "cx", "cy", "k1", "k2")


def read_hard_stats(path: str | os.PathLike) -> dict:
    """The table, checked: every quantile row as long as `levels`, every camera complete."""
    data = load_object(path, "hard-tier statistics table")
    for key in ("levels", "quantiles", "cameras"):
        if key not in data:
            raise InputError(path, f"missing key {key!r}")
    levels = data["levels"]
    for name, row in data["quantiles"].items():
        if not isinstance(row, list) or len(row) != len(levels):
            raise InputError(path, f"quantiles.{name}: {len(levels)} values expected (one per level)")
    for i, cam in enumerate(data["cameras"]):
        missing = [k for k in CAMERA_KEYS if k not in cam]
        if missing:
            raise InputError(path, f"cameras[{i}]: missing {', '.join(missing)}")
    return data

