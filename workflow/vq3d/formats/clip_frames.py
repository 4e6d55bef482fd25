"""A clip's frames folder (the frames stage's output, EgoLoc's layout): `color_%07d.jpg`, frame i
= Ego4D clip frame i, numbered from 0 without gaps. The one definition of the name pattern."""

from __future__ import annotations

import re
from pathlib import Path

from ..atomic import write_json
from ..errors import InputError

PATTERN = "color_%07d.jpg"  # printf/ffmpeg form
GLOB = "color_*.jpg"
NAME_RE = re.compile(r"^color_(\d{7})\.jpg$")
INFO = "frames.json"


def frame_name(index: int) -> str:
    return f"color_{index:07d}.jpg"


def frame_index(name: str) -> int | None:
    """The clip frame index of a file name, None for anything else."""
    m = NAME_RE.match(Path(name).name)
    return int(m.group(1)) if m else None


def list_frames(frames_dir) -> list[str]:
    """The frame names of `frames_dir` in frame order; they must be numbered 0..n-1."""
    frames_dir = Path(frames_dir)
    if not frames_dir.is_dir():
        raise InputError(frames_dir, "frames folder does not exist")
    names = sorted(p.name for p in frames_dir.iterdir() if NAME_RE.match(p.name))
    if not names:
        raise InputError(frames_dir, f"no frames named {PATTERN}")
    for i, name in enumerate(names):
        if frame_index(name) != i:
            raise InputError(frames_dir / name, f"frame numbering has a gap: expected {frame_name(i)}")
    return names


def write_frames_info(frames_dir, summary: dict) -> None:
    """frames_dir/frames.json: what the frames stage extracted and from what (vq3d.frames)."""
    write_json(Path(frames_dir) / INFO, summary, indent=1)


def read_frames_info(frames_dir) -> dict:
    from ._common import field, load_object

    path = Path(frames_dir) / INFO
    data = load_object(path, "frames summary")
    field(path, data, "count", int, "")
    return data


def count_frames(frames_dir) -> int:
    """How many frame files a (possibly partial) frames folder holds."""
    return sum(1 for _ in Path(frames_dir).glob(GLOB))
