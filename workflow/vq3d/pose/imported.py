"""Poses from a shared file instead of our own posing: EgoLoc/Ego4D camera-pose JSON, either one
file holding every clip or a folder of `<clip_uid>.json`, checked and rewritten per clip so the
rest of the workflow reads them exactly as it reads ours.

A shared file holds one entry per clip frame *in its maker's count*. Ego4D's rule
(VQ2D/convert_videos_to_clips.py `frames_to_select`, also EgoLoc's extract_clips_from_videos.py)
includes the end frame, `(end − start)/6 + 1` frames, while a half-open cut of the same window
(or a clip whose last frame lies past the video's end) has one fewer; both start at the clip's
first frame. So a count that differs from our frames by exactly one is the other convention: the
last entry is dropped, or a no-pose entry appended, and the summary says so. A larger difference
is a different clip or frame rate and is refused."""

from __future__ import annotations

import logging
from pathlib import Path

import numpy as np

from ..errors import InputError
from ..formats.clip_frames import count_frames
from ..formats.pose_internal import write_summary
from ..formats.poses import ClipPoses, read_poses, write_poses

log = logging.getLogger(__name__)


def fit_count(clip: ClipPoses, frames: int, path, clip_uid: str, frames_dir) -> tuple[ClipPoses, str | None]:
    """`clip` with exactly `frames` entries: the one-frame convention difference is absorbed
    (module doc) and named in the returned note; anything more is an InputError."""
    n = len(clip)
    if n == frames:
        return clip, None
    if abs(n - frames) > 1:
        raise InputError(path, f"clip {clip_uid} has {n} poses but {frames} frames in "
                               f"{frames_dir}: more than the one-frame difference between the "
                               "Ego4D (end frame included) and half-open frame counts; wrong clip, "
                               "another frame rate, or frames cut from another window?")
    if n == frames + 1:
        note = f"dropped the last of {n} poses (the file counts the clip's end frame; we have {frames})"
        good, cfw = clip.good[:frames], clip.cam_from_world[:frames]
    else:
        note = f"appended a no-pose entry to {n} poses (the file stops one frame short of our {frames})"
        good = np.append(clip.good, False)
        cfw = np.concatenate([clip.cam_from_world, np.full((1, 3, 4), np.nan)])
    log.warning("%s: clip %s: %s", path, clip_uid, note)
    return ClipPoses(good, cfw), note


def main(frames_dir, source, poses, summary, clip_uid) -> None:
    source = Path(source)
    path = source / f"{clip_uid}.json" if source.is_dir() else source
    if not path.exists():
        raise InputError(path, f"precomputed poses for clip {clip_uid} not found")
    clip = read_poses(path).get(clip_uid)
    if clip is None:
        raise InputError(path, f"no entry for clip {clip_uid} in the precomputed pose file")
    frames = count_frames(frames_dir)
    in_file = len(clip)
    clip, adjusted = fit_count(clip, frames, path, clip_uid, frames_dir)
    good = int(clip.good.sum())
    log.info("clip %s: %d/%d frames posed by %s", clip_uid, good, frames, path)
    write_poses(poses, {clip_uid: clip})
    write_summary(summary, {
        "clip_uid": clip_uid, "frames": frames, "source_file": str(path),
        "posed": {"precomputed": good, "none": frames - good},
        "poses_in_file": in_file, "count_adjusted": adjusted,
        "source": ["precomputed" if g else "none" for g in clip.good],
    })
