"""Poses from a shared file instead of our own posing: EgoLoc/Ego4D camera-pose JSON, either one
file holding every clip or a folder of `<clip_uid>.json`, checked and rewritten per clip so the
rest of the workflow reads them exactly as it reads ours."""

from __future__ import annotations

import logging
from pathlib import Path

from ..errors import InputError
from ..formats.pose_internal import write_summary
from ..formats.poses import read_poses, write_poses

log = logging.getLogger(__name__)


def main(frames_dir, source, poses, summary, clip_uid) -> None:
    source = Path(source)
    path = source / f"{clip_uid}.json" if source.is_dir() else source
    if not path.exists():
        raise InputError(path, f"precomputed poses for clip {clip_uid} not found")
    clip = read_poses(path).get(clip_uid)
    if clip is None:
        raise InputError(path, f"no entry for clip {clip_uid} in the precomputed pose file")
    frames = len(list(Path(frames_dir).glob("color_*.jpg")))
    if len(clip) != frames:
        raise InputError(path, f"clip {clip_uid} has {len(clip)} poses but {frames} frames in {frames_dir}")
    good = int(clip.good.sum())
    log.info("clip %s: %d/%d frames posed by %s", clip_uid, good, frames, path)
    write_poses(poses, {clip_uid: clip})
    write_summary(summary, {
        "clip_uid": clip_uid, "frames": frames, "source_file": str(path),
        "posed": {"precomputed": good, "none": frames - good},
        "source": ["precomputed" if g else "none" for g in clip.good],
    })
