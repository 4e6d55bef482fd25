"""Shared fixtures: the real anchor files beside the checkout, and the repo root."""

import json
import os
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
# VQ3D_ANCHORS: elsewhere, or a missing path to check that the suite skips cleanly without them
ANCHORS = Path(os.environ.get("VQ3D_ANCHORS") or REPO.parent / "shared" / "anchors")


@pytest.fixture
def anchors() -> Path:
    """../shared/anchors (real Ego4D/EgoLoc files); tests using it skip where it is absent."""
    if not ANCHORS.is_dir():
        pytest.skip(f"anchor files not found at {ANCHORS}")
    return ANCHORS


@pytest.fixture(scope="session")
def repo() -> Path:
    return REPO


# ---- builders of small Ego4D/EgoLoc-shaped documents (shapes: docs/formats.md), shared by the tests
# that write their own query, annotation, mapping and intrinsics files ----

def vq2d_box(frame: int, x, y, w, h, size: tuple[int, int] | None = None) -> dict:
    """A VQ2D box (visual crop or response-track entry) in clip frame `frame`; `size`: the
    video's (original_width, original_height)."""
    box = {"frame_number": frame, "x": x, "y": y, "width": w, "height": h}
    if size:
        box.update(rotation=0, original_width=size[0], original_height=size[1])
    return box


def vq2d_query_set(query_frame: int, crop: dict, *, title: str | None = None, track=None, **extra) -> dict:
    qs = {"is_valid": True, "query_frame": query_frame, **({"object_title": title} if title else {}),
          "visual_crop": crop, **extra}
    if track is not None:
        qs["response_track"] = track
    return qs


def vq2d_clip(clip_uid: str, annotations: list[dict], *, start: float = 0.0, end: float, fps: float = 5.0,
              **extra) -> dict:
    """A VQ2D clip; `annotations`: one {query set id: query set} per annotation."""
    return {"clip_uid": clip_uid, "video_start_sec": start, "video_end_sec": end, "clip_fps": fps,
            "clip_start_sec": 0.0, "clip_end_sec": end - start, **extra,
            "annotations": [{"query_sets": qs} for qs in annotations]}


def vq2d_doc(videos: dict[str, list[dict]], split: str = "val") -> dict:
    """A VQ2D query file: {video_uid: [clips]}."""
    return {"version": "1", "videos": [{"video_uid": v, "split": split, "clips": clips}
                                       for v, clips in videos.items()]}


def vq3d_box(centre, size=(0.2, 0.2, 0.2)) -> dict:
    """A VQ3D annotation box (annotation frame), no rotation."""
    return {"position": dict(zip("xyz", centre)), "rotation": {"x": 0.0, "y": 0.0, "z": 0.0},
            "dimension": dict(zip("xyz", size))}


def vq3d_clip(clip_uid: str, annotations: list[dict | None] | None = None) -> dict:
    """A VQ3D clip; `annotations`: {query set id: query set} per annotation, None for an empty
    `{}` annotation; no list at all: a clip without an annotations key."""
    clip = {"clip_uid": clip_uid}
    if annotations is not None:
        clip["annotations"] = [{} if a is None else {"query_sets": a} for a in annotations]
    return clip


def vq3d_doc(videos: list[tuple[str, str, list[dict]]], split: str = "val") -> dict:
    """A VQ3D annotation file from [(video_uid, scan_uid, [clips])]."""
    return {"version": "1", "videos": [{"video_uid": v, "split": split, "scan_uid": s, "clips": clips}
                                       for v, s, clips in videos]}


def write_doc(path: Path, doc) -> Path:
    """Write a JSON document for a test to read; returns the path."""
    path.write_text(json.dumps(doc))
    return path
