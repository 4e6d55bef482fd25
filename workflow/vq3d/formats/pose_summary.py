"""summary.json of pose_merge (`R/pose/<clip>/summary.json`): the shape is in
formats/pose_internal.py's docstring; this module is its reader and writer.

The report reads the pose source of every frame from it: the counts in `posed` and the per-frame
`source` list. Either one is enough: counts are derived from `source` when `posed` is missing."""

from __future__ import annotations

import os
from dataclasses import dataclass, field

from ..errors import InputError
from ._common import dump_json, load_object

# Pose sources, in the order they are stacked and listed (vq3d.pose.merge's summary names).
SOURCES = ("sfm", "pnp", "interpolated", "none")


def write_summary(path: str | os.PathLike, summary: dict) -> None:
    dump_json(path, summary)


@dataclass
class Coverage:
    clip_uid: str
    counts: dict[str, int]                              # source -> frames, SOURCES keys first
    per_frame: list[str] | None = field(default=None)   # source of each frame, if known

    @property
    def frames(self) -> int:
        return sum(self.counts.values())


def read_coverage(path: str | os.PathLike) -> Coverage:
    """The pose sources of one clip from its pose summary file."""
    data = load_object(path, "pose summary file")
    clip_uid = data.get("clip_uid")
    if not isinstance(clip_uid, str):
        raise InputError(path, "missing field clip_uid (a string)")
    per_frame = data.get("source")
    if per_frame is not None:
        if not isinstance(per_frame, list) or not all(isinstance(s, str) for s in per_frame):
            raise InputError(path, "source must be a list of strings, one per frame")
    posed = data.get("posed")
    if posed is not None:
        if not isinstance(posed, dict):
            raise InputError(path, "posed must be an object {source: frame count}")
        for k, v in posed.items():
            if not isinstance(v, int) or isinstance(v, bool) or v < 0:
                raise InputError(path, f"posed.{k} must be a non-negative integer, got {v!r}")
        counts = dict(posed)
    elif per_frame is not None:
        counts = {s: per_frame.count(s) for s in dict.fromkeys(per_frame)}
    else:
        raise InputError(path, "neither posed (counts by source) nor source (per frame) is given")
    if per_frame is not None and len(per_frame) != sum(counts.values()):
        raise InputError(path, f"source lists {len(per_frame)} frames but posed counts "
                               f"{sum(counts.values())}")
    # Known sources first, in a fixed order; any other name the merge stage adds comes after.
    ordered = {s: int(counts.get(s, 0)) for s in SOURCES}
    ordered.update({s: int(n) for s, n in sorted(counts.items()) if s not in SOURCES})
    return Coverage(clip_uid, ordered, per_frame)
