"""What the configured dataset is made of: its files and its clips.

Both dataset kinds are described the same way, so every later stage runs one code path:
`dataset_files(config)` gives the annotation/query/mapping/intrinsics files, the videos and scans
folders; `clip_refs(config)` lists the clips (uid, video, scan) with every id validated before any
job is built from it."""

from __future__ import annotations

import json
import os
from dataclasses import dataclass
from pathlib import Path

from .errors import InputError
from .ids import check_id, check_scan_id
from .synth import layout


@dataclass(frozen=True)
class ClipRef:
    clip_uid: str
    video_uid: str
    scan_uid: str


def synth_dir(config: dict) -> Path:
    return Path(config["data_dir"]) / "synth"


def dataset_files(config: dict) -> dict[str, Path | None]:
    """Paths of the dataset's files for the configured split (None where not given)."""
    split = config["dataset"]["split"]
    if config["dataset"]["kind"] == "synth":
        root = synth_dir(config)
        return {
            "annotations": root / layout.FILES[f"annotations_{split}"],
            "queries": root / layout.FILES[f"queries_{split}"],
            "mapping": root / layout.FILES[f"mapping_{split}"],
            "intrinsics": root / layout.FILES["intrinsics"],
            "template": root / layout.FILES["annotations_test"],
            "videos_dir": root / layout.FILES["videos"],
            "scans_dir": root / layout.FILES["scans"],
            "gt_dir": root / layout.FILES["gt"],
        }
    ego = config["ego4d"]

    def opt(key):
        return Path(ego[key]) if ego.get(key) else None

    videos_dir = opt("videos_dir") or Path(config["data_dir"]) / "ego4d" / ego["source"]
    return {
        "annotations": opt("annotations"),
        "queries": opt("queries"),
        "mapping": opt("mapping"),
        "intrinsics": opt("intrinsics"),
        "template": opt("annotations") if split == "test" else None,
        "videos_dir": videos_dir,
        "scans_dir": opt("scans_dir") or Path(config["data_dir"]) / "ego4d" / "scans",
        "gt_dir": None,
    }


def clip_refs(config: dict) -> list[ClipRef]:
    """The clips of the configured dataset and split, ids validated, in a stable order."""
    if config["dataset"]["kind"] == "synth":
        return [ClipRef(c.clip_uid, c.video_uid, c.scan_uid) for c in layout.clips(config["synth"])]
    return read_vq3d_clip_refs(dataset_files(config)["annotations"])


def read_vq3d_clip_refs(path: str | os.PathLike) -> list[ClipRef]:
    """Clip/video/scan uids of a VQ3D annotation file (val annotations or test template)."""
    path = Path(path)
    try:
        data = json.loads(path.read_text())
    except FileNotFoundError:
        raise InputError(path, "VQ3D annotation file does not exist") from None
    except json.JSONDecodeError as exc:
        raise InputError(path, f"not valid JSON ({exc})") from None
    if not isinstance(data, dict) or not isinstance(data.get("videos"), list):
        raise InputError(path, "expected a VQ3D annotation file with a top-level 'videos' list")
    refs: dict[str, ClipRef] = {}
    for vi, video in enumerate(data["videos"]):
        where = f"{path} videos[{vi}]"
        video_uid = check_id(video.get("video_uid"), what="video_uid", source=where)
        scan = video.get("scan_uid")
        if scan is None:
            raise InputError(path, f"videos[{vi}] ({video_uid}) has no 'scan_uid'")
        scan_uid = check_scan_id(scan, source=where)
        for ci, clip in enumerate(video.get("clips") or []):
            clip_uid = check_id(clip.get("clip_uid"), what="clip_uid", source=f"{where}.clips[{ci}]")
            refs.setdefault(clip_uid, ClipRef(clip_uid, video_uid, scan_uid))
    if not refs:
        raise InputError(path, "no clips found under 'videos[].clips[]'")
    return list(refs.values())
