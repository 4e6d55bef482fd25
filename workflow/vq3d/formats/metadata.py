"""clip_names_val_test.json: {"clips": [{"clip_uid", "split", "scan_uid"}]}, the VQ3D clips of
val and test with the Matterport scan each was filmed in."""

from __future__ import annotations

import os
from dataclasses import dataclass

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
