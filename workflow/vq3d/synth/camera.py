"""Camera models of the synthetic benchmark.

Pixel coordinates follow COLMAP: the top-left corner of the image is (0, 0), so the centre of
pixel (col, row) is (col + 0.5, row + 0.5). OpenCV treats pixel centres as integers; the renderer
converts (subtracting 0.5) where it calls OpenCV.

`Fisheye` is COLMAP's RADIAL_FISHEYE (f, cx, cy, k1, k2): for a camera-frame point with
normalised coordinates x = (X/Z, Y/Z), r = |x|, theta = atan(r),
theta_d = theta (1 + k1 theta^2 + k2 theta^4) and the distorted normalised point is x * theta_d / r.
"""

from __future__ import annotations

from dataclasses import dataclass

import cv2
import numpy as np

from .. import lens
from ..geometry import pose_at
from ..formats import intrinsics


class Fisheye(intrinsics.Fisheye):
    """The rendering camera: the RADIAL_FISHEYE calibration the dataset publishes, projected and
    undistorted with the same lens model (vq3d.lens) the pipeline uses to read it back."""

    def as_intrinsics(self) -> dict:
        """The scan_to_intrinsics.json entry for this camera."""
        return {intrinsics.resolution_key(self.width, self.height):
                {"f": self.f, "cx": self.cx, "cy": self.cy, "k1": self.k1, "k2": self.k2}}

    def project(self, points_cam: np.ndarray) -> np.ndarray:
        """N×3 camera-frame points (Z > 0) → N×2 distorted pixel coordinates (COLMAP convention)."""
        return lens.project(self, points_cam)


@dataclass(frozen=True)
class Pinhole:
    width: int
    height: int
    fx: float
    fy: float
    cx: float  # COLMAP convention
    cy: float

    def K(self) -> np.ndarray:
        return np.array([[self.fx, 0, self.cx], [0, self.fy, self.cy], [0, 0, 1.0]])

    def as_dict(self) -> dict:
        return {"model": "PINHOLE", "width": self.width, "height": self.height,
                "params": [self.fx, self.fy, self.cx, self.cy]}


def fisheye_for(width: int, height: int, rng: np.random.Generator) -> Fisheye:
    """A small head-mounted fisheye like Ego4D's (their 1920×1080 entries have f≈0.56 W, k1≈0.3);
    a little narrower here so that the pinhole canvas stays affordable."""
    return Fisheye(width, height, f=float(width * rng.uniform(0.6, 0.68)), cx=width / 2, cy=height / 2,
                   k1=float(rng.uniform(0.06, 0.16)), k2=float(rng.uniform(0.0, 0.05)))


def distortion_maps(cam: Fisheye, margin: int = 2) -> tuple[Pinhole, np.ndarray, np.ndarray]:
    """A pinhole canvas (same focal length, so the image centre keeps full sharpness) that covers
    the whole fisheye image, and the cv2.remap maps fisheye pixel → canvas pixel."""
    u = np.arange(cam.width) + 0.5
    v = np.arange(cam.height) + 0.5
    pixels = np.stack(np.broadcast_arrays(u[None, :], v[:, None]), axis=-1).reshape(-1, 2)
    undistorted = lens.undistort_normalized(cam, pixels)
    if not np.all(np.isfinite(undistorted)):
        raise ValueError("fisheye field of view reaches 180°: lower k or raise f")
    xu, yu = (undistorted[:, i].reshape(cam.height, cam.width) for i in (0, 1))
    half_w = int(np.ceil(np.abs(xu).max() * cam.f)) + margin
    half_h = int(np.ceil(np.abs(yu).max() * cam.f)) + margin
    canvas = Pinhole(2 * half_w, 2 * half_h, cam.f, cam.f, float(half_w), float(half_h))
    map_x = (xu * cam.f + canvas.cx - 0.5).astype(np.float32)  # -0.5: COLMAP → OpenCV pixel centres
    map_y = (yu * cam.f + canvas.cy - 0.5).astype(np.float32)
    return canvas, map_x, map_y


def look_rotation(forward: np.ndarray, roll: float = 0.0, up=(0.0, 0.0, 1.0)) -> np.ndarray:
    """world_from_cam rotation (columns: camera x right, y down, z forward) for a z-up world."""
    fwd = np.asarray(forward, np.float64)
    fwd = fwd / np.linalg.norm(fwd)
    right = np.cross(fwd, up)
    right /= np.linalg.norm(right)
    down = np.cross(fwd, right)
    c, s = np.cos(roll), np.sin(roll)
    right, down = c * right + s * down, -s * right + c * down
    return np.stack([right, down, fwd], axis=1)


def yaw_pitch_forward(yaw: float, pitch: float) -> np.ndarray:
    return np.array([np.cos(pitch) * np.cos(yaw), np.cos(pitch) * np.sin(yaw), np.sin(pitch)])


def cam_from_world(world_from_cam_R: np.ndarray, centre: np.ndarray) -> np.ndarray:
    """3×4 world→camera extrinsics [R | t] from a camera's orientation and centre."""
    return pose_at(world_from_cam_R.T, centre)


def remap_fast(map_x: np.ndarray, map_y: np.ndarray):
    """Fixed-point maps for cv2.remap (about twice as fast as float maps)."""
    return cv2.convertMaps(map_x, map_y, cv2.CV_16SC2)
