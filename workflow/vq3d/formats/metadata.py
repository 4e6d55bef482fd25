"""clip_names_val_test.json: {"clips": [{"clip_uid", "split", "scan_uid"}]}, the VQ3D clips of
val and test with the Matterport scan each was filmed in; and the VQ3D clip/video lists of Ego4D's
`3d` dataset (written by the replica)."""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

from ..errors import InputError
from ._common import as_list, dump_json, field, load_json, scan_uid, uid


@dataclass
class ClipName:
    clip_uid: str
    split: str
    scan_uid: str


def read_clip_names(path: str | os.PathLike) -> list[ClipName]:
    raw = load_json(path, "clip names file")
    if not isinstance(raw, dict):
        raise InputError(path, "clip names file must be an object with 'clips'")
    out = []
    for i, c in enumerate(as_list(path, raw, "clips", "")):
        w = f"clips[{i}]"
        out.append(ClipName(
            clip_uid=uid(path, field(path, c, "clip_uid", str, w), "clip_uid", w),
            split=field(path, c, "split", str, w),
            scan_uid=scan_uid(path, field(path, c, "scan_uid", str, w), f"{w}.scan_uid")))
    return out


def write_clip_names(path: str | os.PathLike, clips: list[ClipName]) -> None:
    dump_json(path, {"clips": [{"clip_uid": c.clip_uid, "split": c.split, "scan_uid": c.scan_uid}
                               for c in clips]})


# ---- Ego4D's `3d` dataset: the VQ3D clip and video lists ----
VQ3D_CLIP_LIST = "all_clips_for_vq3d_v1.json"    # {"clips": [{"clip_uid", "split"}]}
VQ3D_VIDEO_LIST = "all_videos_for_vq3d_v1.json"  # {"videos": [{"video_uid", "split"}]}


def write_vq3d_lists(folder: str | os.PathLike, clips: list[tuple[str, str]],
                     videos: list[tuple[str, str]]) -> list[str]:
    """Both lists into `folder` from (uid, split) pairs, in the order given; their names."""
    folder = Path(folder)
    dump_json(folder / VQ3D_CLIP_LIST, {"clips": [{"clip_uid": c, "split": s} for c, s in clips]}, indent=1)
    dump_json(folder / VQ3D_VIDEO_LIST, {"videos": [{"video_uid": v, "split": s} for v, s in videos]}, indent=1)
    return [VQ3D_CLIP_LIST, VQ3D_VIDEO_LIST]
