"""The interface every detection backend implements.

A backend scores, for each query of one clip, every frame 0 .. query_frame-1 against the query's
visual crop and returns that frame's top-k boxes (best first, scores in [0, 1]) in the query's
original_width × original_height pixels. It sees all of a clip's queries at once so that each frame
is read and described once, whatever the number of queries."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol

from ...formats.clip_detections import ScoredBox
from ..framestore import CropSpec, FrameStore

FrameBoxes = list[tuple[int, list[ScoredBox]]]


@dataclass(frozen=True)
class QueryJob:
    key: tuple[int, str]         # (annotation_index, query_set)
    crop: CropSpec
    query_frame: int
    source: str                  # where the query came from, for error messages
    query: object = None         # the vq3d.formats.queries.Query (precomputed matching needs it)

    @property
    def frames(self) -> range:
        """The frames EgoLoc/Ego4D score: everything before the query frame."""
        return range(0, self.query_frame)


class Backend(Protocol):
    name: str

    def detect(self, store: FrameStore, jobs: list[QueryJob], top_k: int) -> dict[tuple[int, str], FrameBoxes]:
        ...


def scale_box(x1, y1, x2, y2, sx: float, sy: float, score: float, size: tuple[int, int]) -> ScoredBox:
    """A box from working-image pixels to original pixels (sx, sy = original / working), clipped."""
    w, h = size
    return ScoredBox(float(min(max(x1 * sx, 0.0), w)), float(min(max(y1 * sy, 0.0), h)),
                     float(min(max(x2 * sx, 0.0), w)), float(min(max(y2 * sy, 0.0), h)), float(score))
