"""Reading a clip's frames (`color_%07d.jpg`) and cutting visual crops, with clear errors.

Boxes in query files are in original_width × original_height pixels; frames may have been decoded
smaller (frames.max_side), so every box is scaled by the frame's actual size."""

from __future__ import annotations

import logging
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np

from ..errors import InputError
from ..formats.clip_frames import frame_name

log = logging.getLogger(__name__)



@dataclass(frozen=True)
class CropSpec:
    """A visual crop: frame number and (x, y, width, height) in original_width × original_height."""

    frame: int
    x: float
    y: float
    width: float
    height: float
    original_width: int
    original_height: int

    @classmethod
    def of(cls, box) -> "CropSpec":
        return cls(int(box.frame), float(box.x), float(box.y), float(box.width), float(box.height),
                   int(box.original_width), int(box.original_height))


class FrameStore:
    def __init__(self, frames_dir: str | Path):
        self.dir = Path(frames_dir)
        if not self.dir.is_dir():
            raise InputError(self.dir, "frames folder does not exist")

    def path(self, fno: int) -> Path:
        return self.dir / frame_name(fno)

    def read(self, fno: int, gray: bool = False) -> np.ndarray:
        path = self.path(fno)
        img = cv2.imread(str(path), cv2.IMREAD_GRAYSCALE if gray else cv2.IMREAD_COLOR)
        if img is None:
            what = "is missing" if not path.exists() else "cannot be decoded as an image"
            raise InputError(path, f"clip frame {fno} {what}")
        return img

    def check_range(self, stop: int) -> None:
        """Fail early, naming the first missing frame of 0 .. stop-1 (before hours of scoring)."""
        for fno in range(stop):
            if not self.path(fno).is_file():
                raise InputError(self.path(fno), f"clip frame {fno} is missing (frames 0..{stop - 1} are needed)")


def crop_rect(crop: CropSpec, image_shape: tuple[int, int], source: str) -> tuple[int, int, int, int]:
    """The crop's integer pixel rectangle (x1, y1, x2, y2) in an image of `image_shape` (h, w).

    Raises InputError for a zero-size box or one that lies (mostly) outside the image."""
    h, w = image_shape[:2]
    if not (crop.width > 0 and crop.height > 0):
        raise InputError(source, f"visual_crop has zero or negative size ({crop.width} x {crop.height})")
    if crop.original_width <= 0 or crop.original_height <= 0:
        raise InputError(source, "visual_crop original_width/original_height must be positive")
    sx, sy = w / crop.original_width, h / crop.original_height
    x1, y1 = crop.x * sx, crop.y * sy
    x2, y2 = (crop.x + crop.width) * sx, (crop.y + crop.height) * sy
    cx1, cy1, cx2, cy2 = max(x1, 0), max(y1, 0), min(x2, w), min(y2, h)
    # Annotators' boxes overhang the border by a few pixels in real data: clip those, refuse boxes
    # that are mostly outside (a wrong original size or a corrupt annotation).
    inside = max(cx2 - cx1, 0) * max(cy2 - cy1, 0)
    if inside < 0.5 * (x2 - x1) * (y2 - y1):
        raise InputError(source, f"visual_crop box (x={crop.x}, y={crop.y}, width={crop.width}, "
                                 f"height={crop.height}) lies outside the {crop.original_width}x"
                                 f"{crop.original_height} frame {crop.frame}")
    r = (int(np.floor(cx1)), int(np.floor(cy1)), int(np.ceil(cx2)), int(np.ceil(cy2)))
    if r[2] - r[0] < 2 or r[3] - r[1] < 2:
        raise InputError(source, f"visual_crop is smaller than 2 pixels once scaled to the {w}x{h} frames")
    return r
