"""The VQ3D challenge submission: header and validation against the test template.

A submission is the challenge's test template (`vq3d_test_unannotated_template.json`) with, on
every query set, `pred_3d_vec_world` (3), `pred_3d_vec_query_frame` (3) and `query_frame_pose`
(4×4 world→camera), each a list of finite numbers or null (Matterport frame; see results.py).
The header is the template's: `version: "1.0"`, `challenge: "ego4d_vq3d_challenge"` (the
template as EgoLoc got it from the challenge, egoloc/data/metadata/vq3d_test_unannotated_template.json,
and EgoLoc's scored submission; the episodic-memory copy of the template predates the two keys,
and Ego4D's VQ2D validator, VQ2D/validate_challenge_predictions.py, demands the same pair with
`ego4d_vq2d_challenge`). results.fill_submission builds one; write_submission validates and
writes it."""

from __future__ import annotations

import math
import os
from dataclasses import dataclass, field as dc_field

from ..errors import InputError
from ._common import dump_json, load_json
from .vq3d_annotations import iter_query_sets

HEADER = {"version": "1.0", "challenge": "ego4d_vq3d_challenge"}
FIELDS = {"pred_3d_vec_world": (3,), "pred_3d_vec_query_frame": (3,), "query_frame_pose": (4, 4)}


@dataclass
class SubmissionCheck:
    """What validate() found: `problems` (one line each, naming the query) and counts."""

    n_queries: int = 0
    n_world: int = 0
    n_pose: int = 0
    problems: list[str] = dc_field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not self.problems


def _shape_problem(value, shape) -> str | None:
    """Why `value` is not null or a nested list of finite numbers of `shape`; None if it is."""
    if value is None:
        return None
    if len(shape) == 2:
        if not isinstance(value, list) or len(value) != shape[0]:
            return f"must be null or {shape[0]}×{shape[1]} numbers"
        for r, row in enumerate(value):
            why = _shape_problem(row, shape[1:])
            if why is not None or row is None:
                return f"row {r} {why or 'is null'}"
        if [float(x) for x in value[3]] != [0.0, 0.0, 0.0, 1.0]:
            return f"last row must be [0, 0, 0, 1], got {value[3]}"
        return None
    if not isinstance(value, list) or len(value) != shape[0]:
        return f"must be null or a list of {shape[0]} numbers"
    for x in value:
        if isinstance(x, bool) or not isinstance(x, (int, float)):
            return f"holds a non-number {x!r}"
        if not math.isfinite(x):
            return f"holds a non-finite {x!r}"
    return None


def validate(submission: dict, template: dict | None = None, *, path="<submission>",
             template_path="<template>") -> SubmissionCheck:
    """Check a submission (parsed JSON) against the template: header, every template query present
    (and no other), each query's three fields present and null or of their shape with finite
    numbers. Without a template only the header and the fields are checked."""
    out = SubmissionCheck()
    if not isinstance(submission, dict):
        raise InputError(path, "a submission must be a JSON object with 'videos'")
    for key, want in HEADER.items():
        if submission.get(key) != want:
            out.problems.append(f"{key} must be {want!r}, got {submission.get(key)!r}")
    got = {}
    for video_uid, _, clip_uid, ai, qset, qs, qw in iter_query_sets(path, submission):
        got[(clip_uid, ai, qset)] = (video_uid, qs, qw)
    if template is not None:
        wanted = {(c, ai, q): v for v, _, c, ai, q, _, _ in iter_query_sets(template_path, template)}
        for key, video_uid in wanted.items():
            if key not in got:
                out.problems.append(f"query (clip {key[0]}, annotation {key[1]}, query set "
                                    f"{key[2]}) of the template is missing")
            elif got[key][0] != video_uid:
                out.problems.append(f"{got[key][2]}: clip {key[0]} is under video {got[key][0]}, "
                                    f"the template has it under {video_uid}")
        for key in sorted(set(got) - set(wanted)):
            out.problems.append(f"{got[key][2]}: query (clip {key[0]}, annotation {key[1]}, "
                                f"query set {key[2]}) is not in the template")
    for key, (_, qs, qw) in got.items():
        out.n_queries += 1
        for name, shape in FIELDS.items():
            if name not in qs:
                out.problems.append(f"{qw} (clip {key[0]}, annotation {key[1]}, query set "
                                    f"{key[2]}): {name} is missing (null where there is none)")
                continue
            why = _shape_problem(qs[name], shape)
            if why:
                out.problems.append(f"{qw}.{name} (clip {key[0]}, annotation {key[1]}, query set "
                                    f"{key[2]}): {why}")
        out.n_world += qs.get("pred_3d_vec_world") is not None
        out.n_pose += qs.get("query_frame_pose") is not None
    return out


def validate_file(path: str | os.PathLike, template: str | os.PathLike | None = None) -> SubmissionCheck:
    sub = load_json(path, "VQ3D submission")
    tmpl = None if template is None else load_json(template, "VQ3D test template")
    return validate(sub, tmpl, path=path, template_path=template)


def write_submission(path: str | os.PathLike, submission: dict, template: dict | None = None, *,
                     template_path: str | os.PathLike | None = None) -> SubmissionCheck:
    """Validate `submission` (against `template` when given) and write it atomically. A
    submission that would not validate is a bug of whoever built it: RuntimeError, nothing written."""
    check = validate(submission, template, path=path, template_path=template_path)
    if not check.ok:
        raise RuntimeError(f"{path}: the submission would not validate: {check.problems[:3]}")
    dump_json(path, submission)
    return check
