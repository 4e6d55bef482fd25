"""Prediction files: EgoLoc/Ego4D results files and challenge submissions.

All are a VQ3D annotation tree (see vq3d_annotations) whose query sets carry predictions. Query
frame poses are always 4×4 world→camera in the **Matterport** frame. Three key families exist, and
the family (so the world frame of `pred_3d_vec_world`) is read from the file's own keys:
- submission (the test template filled; what the challenge server takes and our submission rule
  writes; EgoLoc vq3d/json_parser.py `reformat_vq3d_test_v2`): per query set `pred_3d_vec_world`,
  `pred_3d_vec_query_frame`, `query_frame_pose`, any may be null, all in the **Matterport** frame:
  pred_3d_vec_query_frame = query_frame_pose · [pred_3d_vec_world, 1]. Checked on EgoLoc's real
  test submission (which scored on the server): that identity holds for every query, and its
  predictions of each scan lie within ~0.6 m (median) of the val objects' Matterport centres but
  0.8–6 m from their annotation-frame centres. Recognised by a `query_frame_pose` key.
- EgoLoc results (egoloc_val_*, baseline_val_*; EgoLoc vq3d/mv_aggregate.py `predict_for_frame_j`):
  the val annotations plus `pred_3d_vec_world` (annotation frame), `mp_pred_3d_vec_world`,
  `mp_pred_3d_vec_query_frame` (= query_frame_pose · [mp_pred_3d_vec_world, 1]),
  `pred_3d_vec_query_frame` (the camera vector with the annotation rotation applied),
  `mp_gt_3d_vec_{0,1}` (camera vectors of annotators 1 and 2: 0-based names), ... Recognised by
  `mp_pred_3d_vec_world`; takes precedence (these files carry `query_frame_pose` too).
- Ego4D results (siam_rcnn_residual_kys_val.json; episodic-memory VQ3D/VQ3D/scripts/run.py):
  `pred_3d_vec_world` (Matterport: run.py lifts with scan-frame poses and eval.py's `accuracy`
  turns the annotation centre by Rz(−90°) to meet it), `pred_3d_vec` (camera vector of the query
  frame), and from prepare_ground_truth_for_queries.py `gt_3d_vec_world_{1,2}`, `gt_3d_vec_{1,2}`
  (1-based annotator names). No pose is stored: the angle is only defined against the file's own
  `gt_3d_vec_{1,2}`. Recognised by `pred_3d_vec` or `gt_3d_vec_world_1`.
A file with predictions but none of these keys (e.g. a bare `pred_3d_vec_world`) is ambiguous:
reading it needs `world_frame=` (CLI `--pred-frame`), and the error says so."""

from __future__ import annotations

import copy
import os
from dataclasses import dataclass, field as dc_field

import numpy as np

from ..errors import InputError
from ._common import load_json, vector
from .submission import HEADER
from .vq3d_annotations import annotation_to_matterport, iter_query_sets, matterport_to_annotation

WHAT = "VQ3D predictions file"
Key = tuple[str, int, str]

ANNOTATION = "annotation"
MATTERPORT = "matterport"
SUBMISSION, EGOLOC, EGO4D = "submission", "egoloc", "ego4d"
# family -> frame of pred_3d_vec_world
FAMILY_FRAME = {SUBMISSION: MATTERPORT, EGOLOC: ANNOTATION, EGO4D: MATTERPORT}
# family -> {annotator: key of its stored camera-frame ground-truth vector}
GT_CAMERA_KEYS = {EGOLOC: {1: "mp_gt_3d_vec_0", 2: "mp_gt_3d_vec_1"},
                  EGO4D: {1: "gt_3d_vec_1", 2: "gt_3d_vec_2"}}


@dataclass
class Prediction:
    """One query's prediction, normalised: `world_mp` in the Matterport frame, `query_frame` in
    true camera coordinates of the query frame, `query_frame_pose` 4×4 cam_from_world (Matterport)."""

    key: Key
    world_mp: np.ndarray | None = None
    query_frame: np.ndarray | None = None
    query_frame_pose: np.ndarray | None = None
    video_uid: str | None = None
    scan_uid: str | None = None
    raw: dict = dc_field(default_factory=dict)
    family: str | None = None
    # pred_3d_vec_world as stored, and the ground truth the file itself carries (Ego4D's eval.py
    # scores L2 against `gt_3d_vec_world_1` and the angle against `gt_3d_vec_{1,2}` of the file).
    world_stored: np.ndarray | None = None
    gt_world_stored: np.ndarray | None = None
    gt_camera_stored: dict = dc_field(default_factory=dict)

    @property
    def world(self) -> np.ndarray | None:
        """The prediction in the annotation frame (that of the VQ3D box centres)."""
        return None if self.world_mp is None else matterport_to_annotation(self.world_mp)

    def camera_vector(self) -> np.ndarray | None:
        """Predicted vector in the query camera: stored, or pose · world where only those exist."""
        if self.query_frame is not None:
            return self.query_frame
        if self.query_frame_pose is not None and self.world_mp is not None:
            return (self.query_frame_pose @ np.append(self.world_mp, 1.0))[:3]
        return None


def _pose4(path, value, where) -> np.ndarray:
    """A 4×4 pose (a 3×4 gets the row [0, 0, 0, 1])."""
    arr = vector(path, value, where, shape=np.shape(value) if _is_3x4(value) else (4, 4))
    return np.vstack([arr, [0, 0, 0, 1]]) if arr.shape == (3, 4) else arr


def _is_3x4(value) -> bool:
    return (isinstance(value, list) and len(value) == 3
            and all(isinstance(r, list) and len(r) == 4 for r in value))


def detect_family(path, raw) -> str | None:
    """The key family of a predictions file (module doc), from the keys of its query sets; None
    when no query set has any of the keys that name one."""
    keys = set()
    for *_, qs, _ in iter_query_sets(path, raw):
        keys.update(qs)
    if "mp_pred_3d_vec_world" in keys:
        return EGOLOC
    if "query_frame_pose" in keys:
        return SUBMISSION
    if "pred_3d_vec" in keys or "gt_3d_vec_world_1" in keys:
        return EGO4D
    return None


def read_results(path: str | os.PathLike, *, world_frame: str | None = None) -> dict[Key, Prediction]:
    """Every query set of a results file or submission, keyed (clip_uid, ai, query_set); queries
    with nothing predicted are present with None fields (so Succ/QwP count them). The family and
    so the frame of pred_3d_vec_world come from the file's keys (module doc); `world_frame`
    (ANNOTATION or MATTERPORT) overrides that, and is required where the keys do not tell."""
    if world_frame not in (None, ANNOTATION, MATTERPORT):
        raise ValueError(f"world_frame must be {ANNOTATION!r} or {MATTERPORT!r}")
    raw = load_json(path, WHAT)
    family = detect_family(path, raw)
    out = {}
    for video_uid, scan, clip_uid, ai, qset, qs, qw in iter_query_sets(path, raw):
        def vec(k):
            v = qs.get(k)
            return None if v is None else vector(path, v, f"{qw}.{k}")

        pose = qs.get("query_frame_pose")
        pose = None if pose is None else _pose4(path, pose, f"{qw}.query_frame_pose")
        world = vec("pred_3d_vec_world")
        if family is None and world_frame is None and world is not None:
            raise InputError(path, f"{qw}: cannot tell the frame of pred_3d_vec_world: the file "
                                   "has none of the keys that name it (query_frame_pose: a "
                                   "submission, Matterport; mp_pred_3d_vec_world: EgoLoc results; "
                                   "pred_3d_vec or gt_3d_vec_world_1: Ego4D results); give it "
                                   "with --pred-frame annotation|matterport (world_frame=)")
        if family == EGOLOC and world_frame is None:
            world_mp, qf = vec("mp_pred_3d_vec_world"), vec("mp_pred_3d_vec_query_frame")
        else:
            frame = world_frame or FAMILY_FRAME.get(family, MATTERPORT)  # None: nothing predicted
            world_mp = world if frame == MATTERPORT or world is None else annotation_to_matterport(world)
            qf_key = "pred_3d_vec" if family == EGO4D else "pred_3d_vec_query_frame"
            # a camera vector is frame-free only if the file says which frame it came from
            qf = vec(qf_key) if frame == MATTERPORT or family == EGO4D else None
        gt_cam = {a: vec(k) for a, k in GT_CAMERA_KEYS.get(family, {}).items()
                  if qs.get(k) is not None}
        out[(clip_uid, ai, qset)] = Prediction(
            key=(clip_uid, ai, qset), world_mp=world_mp, query_frame=qf, query_frame_pose=pose,
            video_uid=video_uid, scan_uid=scan, raw=qs, family=family, world_stored=world,
            gt_world_stored=vec("gt_3d_vec_world_1") if family == EGO4D else None,
            gt_camera_stored=gt_cam)
    return out


def _listify(v):
    return None if v is None else np.asarray(v, dtype=float).tolist()


def fill_submission(annotations_raw: dict, predictions: dict[Key, Prediction | dict]) -> dict:
    """The challenge submission: a copy of the annotation tree (test template or val annotations)
    with the template's `version`/`challenge` header (formats.submission.HEADER) and pred_3d_vec_world, pred_3d_vec_query_frame and query_frame_pose set on every query set
    (null where `predictions` has nothing), all in the Matterport frame (see module doc).
    Predictions are Prediction objects or dicts of those three fields (Matterport frame). Where a
    pose and a world point exist but no query-frame vector, it is pose · world. A prediction for a
    query the template does not have is a bug upstream and raises ValueError."""
    out = {**HEADER, **{k: v for k, v in copy.deepcopy(annotations_raw).items() if k not in HEADER}}
    seen = set()
    for _, _, clip_uid, ai, qset, qs, _ in iter_query_sets("<annotations>", out):
        key = (clip_uid, ai, qset)
        p = predictions.get(key)
        seen.add(key)
        if isinstance(p, Prediction):
            world, qf, pose = p.world_mp, p.camera_vector(), p.query_frame_pose
        elif isinstance(p, dict):
            world, qf, pose = (p.get("pred_3d_vec_world"), p.get("pred_3d_vec_query_frame"),
                               p.get("query_frame_pose"))
            if pose is not None and qf is None and world is not None:
                qf = (np.asarray(pose, dtype=float) @ np.append(np.asarray(world, dtype=float), 1.0))[:3]
        elif p is None:
            world = qf = pose = None
        else:
            raise TypeError(f"prediction for {key} must be a Prediction or a dict")
        qs["pred_3d_vec_world"] = _listify(world)
        qs["pred_3d_vec_query_frame"] = _listify(qf)
        qs["query_frame_pose"] = _listify(pose)
    extra = set(predictions) - seen
    if extra:
        raise ValueError(f"{len(extra)} predictions name queries absent from the annotations, "
                         f"e.g. {sorted(extra)[:3]}")
    return out
