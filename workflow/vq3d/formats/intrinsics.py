"""scan_to_intrinsics*.json: per Matterport scan, COLMAP RADIAL_FISHEYE intrinsics per video
resolution, keyed by the Python repr of a tuple of strings: {"unict_Baker_32": {"('1920', '1080')":
{"f", "cx", "cy", "k1", "k2"}}}."""

from __future__ import annotations

import os
import re
from dataclasses import dataclass

import numpy as np

from ..errors import InputError
from ._common import dump_json, field, load_json, scan_uid

WHAT = "intrinsics file"
_KEY_RE = re.compile(r"^\(\s*'(\d+)'\s*,\s*'(\d+)'\s*\)$")


@dataclass
class Fisheye:
    """COLMAP RADIAL_FISHEYE camera: one focal length, principal point, two radial terms."""

    width: int
    height: int
    f: float
    cx: float
    cy: float
    k1: float
    k2: float

    @property
    def K(self) -> np.ndarray:
        return np.array([[self.f, 0.0, self.cx], [0.0, self.f, self.cy], [0.0, 0.0, 1.0]])

    @property
    def colmap_params(self) -> list[float]:
        return [self.f, self.cx, self.cy, self.k1, self.k2]

    def scaled(self, width: int, height: int) -> "Fisheye":
        """The same lens on frames resized to width×height. Radial terms act on normalized
        coordinates, so they stay; f, cx, cy scale with the image (aspect ratio must be kept)."""
        sx, sy = width / self.width, height / self.height
        if abs(sx - sy) > 0.01 * max(sx, sy):
            raise ValueError(
                f"cannot scale {self.width}x{self.height} intrinsics to {width}x{height}: "
                "aspect ratio differs")
        return Fisheye(width, height, self.f * sx, self.cx * sx, self.cy * sy, self.k1, self.k2)


def resolution_key(width: int, height: int) -> str:
    return f"('{int(width)}', '{int(height)}')"


class IntrinsicsTable(dict):
    """{scan_uid: {(w, h): Fisheye}} that remembers the file it was read from, so that `lookup`
    names that file in its errors even when the caller does not pass `source`."""

    source: str | None = None


def read_intrinsics(path: str | os.PathLike) -> dict[str, dict[tuple[int, int], Fisheye]]:
    return intrinsics_from_json(load_json(path, WHAT), path)


def intrinsics_from_json(raw, path: str | os.PathLike = "<memory>") -> dict[str, dict[tuple[int, int], Fisheye]]:
    if not isinstance(raw, dict):
        raise InputError(path, f"{WHAT} must be an object keyed by scan_uid")
    out = IntrinsicsTable()
    out.source = str(path)
    for scan, per_res in raw.items():
        scan_uid(path, scan, "top-level key")
        if not isinstance(per_res, dict) or not per_res:
            raise InputError(path, f"{scan} must map \"('W', 'H')\" → intrinsics")
        out[scan] = {}
        for key, p in per_res.items():
            m = _KEY_RE.match(key)
            if not m:
                raise InputError(path, f"{scan}: resolution key {key!r} is not of the form \"('W', 'H')\"")
            w, h = int(m.group(1)), int(m.group(2))
            where = f"{scan}.{key}"
            vals = {k: float(field(path, p, k, float, where)) for k in ("f", "cx", "cy", "k1", "k2")}
            if vals["f"] <= 0:
                raise InputError(path, f"{where}.f must be positive, got {vals['f']}")
            out[scan][(w, h)] = Fisheye(w, h, **vals)
    return out


def intrinsics_to_json(intr: dict[str, dict[tuple[int, int], Fisheye]]) -> dict:
    return {scan: {resolution_key(w, h): {"f": c.f, "cx": c.cx, "cy": c.cy, "k1": c.k1, "k2": c.k2}
                   for (w, h), c in per_res.items()}
            for scan, per_res in intr.items()}


def write_intrinsics(path: str | os.PathLike, intr: dict[str, dict[tuple[int, int], Fisheye]]) -> None:
    dump_json(path, intrinsics_to_json(intr))


def lookup(intr: dict[str, dict[tuple[int, int], Fisheye]], scan_uid: str, width: int, height: int,
           *, source: str | os.PathLike | None = None) -> Fisheye:
    """Intrinsics of `scan_uid` for frames of width×height. An exact resolution wins; otherwise a
    native resolution with the same aspect ratio is scaled (frames extracted at reduced size).
    Errors name `source`, by default the file `intr` was read from."""
    source = source or getattr(intr, "source", None) or "intrinsics"
    if scan_uid not in intr:
        raise InputError(source, f"no intrinsics for scan_uid {scan_uid!r} (have: {sorted(intr)})")
    per_res = intr[scan_uid]
    if (width, height) in per_res:
        return per_res[(width, height)]
    for (w, h), cam in sorted(per_res.items(), reverse=True):
        if abs(w * height - h * width) <= 0.01 * w * height:
            return cam.scaled(width, height)
    raise InputError(source, f"scan_uid {scan_uid!r} has intrinsics for {sorted(per_res)} "
                             f"but none for {width}x{height} or a resolution of the same aspect ratio")
