"""The synthetic dataset's ground truth (`<synth>/gt/`, written by vq3d.synth.generate, renamed by
the Ego4D-layout replica, read by benchmarks and tests to score each stage):

- `gt/poses/<clip>.json`: the clip's true poses in the camera-pose format (formats/poses.py);
- `gt/boxes/<clip>.json`: {"frames": [{object index (str): {"bbox": [x1, y1, x2, y2], ...}} per
  clip frame]}: every object's true 2D box in every frame it is visible in;
- `gt/clips.json`: {clip_uid: {video_uid, scan_uid, video_start_sec, video_end_sec, source_fps,
  clip_fps, n_frames, source_frames: [source frame index per clip frame], ...}};
- `gt/queries.json`: [{clip_uid, video_uid, scan_uid, annotation_index, query_set, object_index,
  object_title, centre_scan, centre_annotation, query_frame, response_track: [first, last],
  visual_crop_frame}];
- `gt/objects.json`: {scan_uid: [{index, title, kind, twin, centre_scan, centre_annotation, size,
  yaw}]};
- `replica.json` (the replica's root): what the Ego4D-layout replica made (conf, clips, scans).
The index files are written indented (people read them)."""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np

from ..errors import InputError
from ._common import dump_json, load_json
from .poses import ClipPoses, read_poses, write_poses

CLIPS, QUERIES, OBJECTS = "clips.json", "queries.json", "objects.json"


def _typed(path, data, kind: type, what: str):
    if not isinstance(data, kind):
        raise InputError(path, f"{what} must be a JSON {'object' if kind is dict else 'list'}")
    return data


def poses_path(gt_dir, clip_uid: str) -> Path:
    return Path(gt_dir) / "poses" / f"{clip_uid}.json"


def boxes_path(gt_dir, clip_uid: str) -> Path:
    return Path(gt_dir) / "boxes" / f"{clip_uid}.json"


def write_gt_poses(gt_dir, clip_uid: str, cam_from_world) -> None:
    mats = np.asarray(cam_from_world, dtype=float)
    write_poses(poses_path(gt_dir, clip_uid), {clip_uid: ClipPoses(np.ones(len(mats), bool), mats)})


def read_gt_poses(gt_dir, clip_uid: str) -> ClipPoses:
    path = poses_path(gt_dir, clip_uid)
    poses = read_poses(path)
    if clip_uid not in poses:
        raise InputError(path, f"no poses for clip {clip_uid}")
    return poses[clip_uid]


def write_gt_boxes(gt_dir, clip_uid: str, frames: list[dict]) -> None:
    dump_json(boxes_path(gt_dir, clip_uid), {"frames": [{str(o): b for o, b in fb.items()} for fb in frames]})


def read_gt_boxes(gt_dir, clip_uid: str) -> list[dict[str, dict]]:
    """Per clip frame, {object index (str): its box entry}."""
    path = boxes_path(gt_dir, clip_uid)
    data = _typed(path, load_json(path, "ground-truth boxes file"), dict, "ground-truth boxes file")
    return _typed(path, data.get("frames"), list, "frames")


def write_gt_index(gt_dir, clips: dict, queries: list, objects: dict) -> None:
    for name, obj in ((CLIPS, clips), (QUERIES, queries), (OBJECTS, objects)):
        dump_json(Path(gt_dir) / name, obj, indent=1)


def read_gt_clips(gt_dir) -> dict[str, dict]:
    path = Path(gt_dir) / CLIPS
    return _typed(path, load_json(path, "ground-truth clips file"), dict, "ground-truth clips file")


def read_gt_queries(gt_dir) -> list[dict]:
    path = Path(gt_dir) / QUERIES
    return _typed(path, load_json(path, "ground-truth queries file"), list, "ground-truth queries file")


def read_gt_objects(gt_dir) -> dict[str, list]:
    path = Path(gt_dir) / OBJECTS
    return _typed(path, load_json(path, "ground-truth objects file"), dict, "ground-truth objects file")


def write_replica_summary(path: str | os.PathLike, summary: dict) -> None:
    dump_json(path, summary, indent=1)


def read_replica_summary(path: str | os.PathLike) -> dict:
    return _typed(path, load_json(path, "replica summary"), dict, "replica summary")
