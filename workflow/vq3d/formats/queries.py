"""VQ2D-style query files for the VQ3D clips (vq_val_vq3d.json, vq_test_vq3d.json).

Shape: {"version", "date", "description", "manifest", "videos": [{"video_uid", "split", "clips": [
{"clip_uid", "video_start_sec", ..., "clip_fps", "annotations": [{"query_sets": {"1": {"is_valid",
"query_frame", "visual_crop", "response_track" (val only), "object_title" (val only), ...}}}]}]}]}.
Query sets with `is_valid: false` (no query frame, no crop) are kept in `raw` but are not queries."""

from __future__ import annotations

import copy
import os
from dataclasses import dataclass, field as dc_field

from ..errors import InputError
from ._common import as_dict, as_list, dump_json, field, load_json, uid

WHAT = "VQ2D query file"


@dataclass
class Box:
    """A 2D box in clip frame `frame` (5 fps clip frames), pixels of the original video."""

    frame: int
    x: float
    y: float
    width: float
    height: float
    original_width: int | None = None
    original_height: int | None = None


@dataclass
class ClipTiming:
    """A clip's place in its video. `video_start_frame`/`video_end_frame` are the video's own
    frame numbers of the clip's first and last frame (Ego4D cuts clips by them, end included,
    see vq3d.frames); None where the file has only the times."""

    clip_uid: str
    video_uid: str
    video_start_sec: float
    video_end_sec: float
    clip_fps: float
    clip_start_sec: float
    clip_end_sec: float
    video_start_frame: int | None = None
    video_end_frame: int | None = None


@dataclass
class Query:
    clip_uid: str
    video_uid: str
    annotation_index: int
    query_set: str
    query_frame: int
    visual_crop: Box
    response_track: list[Box] | None = None
    object_title: str | None = None

    @property
    def key(self) -> tuple[str, int, str]:
        return (self.clip_uid, self.annotation_index, self.query_set)


@dataclass
class QueryFile:
    clips: dict[str, ClipTiming]
    queries: list[Query]
    raw: dict = dc_field(default_factory=dict)

    def for_clip(self, clip_uid: str) -> list[Query]:
        return [q for q in self.queries if q.clip_uid == clip_uid]


def read_box(path, obj, where: str) -> Box:
    if not isinstance(obj, dict):
        raise InputError(path, f"{where} must be an object")
    ow = field(path, obj, "original_width", int, where, optional=True)
    oh = field(path, obj, "original_height", int, where, optional=True)
    return Box(
        frame=field(path, obj, "frame_number", int, where),
        x=float(field(path, obj, "x", float, where)),
        y=float(field(path, obj, "y", float, where)),
        width=float(field(path, obj, "width", float, where)),
        height=float(field(path, obj, "height", float, where)),
        original_width=ow,
        original_height=oh,
    )


def box_to_json(box: Box, base: dict | None = None) -> dict:
    out = dict(base or {})
    out.update(frame_number=box.frame, x=box.x, y=box.y, width=box.width, height=box.height)
    if "rotation" not in out:
        out["rotation"] = 0
    if box.original_width is not None:
        out["original_width"] = box.original_width
    if box.original_height is not None:
        out["original_height"] = box.original_height
    return out


_TIMING = ("video_start_sec", "video_end_sec", "clip_fps", "clip_start_sec", "clip_end_sec")
_FRAMES = ("video_start_frame", "video_end_frame")


def read_queries(path: str | os.PathLike) -> QueryFile:
    return queries_from_json(load_json(path, WHAT), path)


def queries_from_json(raw, path: str | os.PathLike = "<memory>") -> QueryFile:
    """The query file held in `raw` (as read from JSON), checked as read_queries checks a file."""
    if not isinstance(raw, dict):
        raise InputError(path, f"{WHAT} must be a JSON object with 'videos'")
    clips: dict[str, ClipTiming] = {}
    queries: list[Query] = []
    for vi, video in enumerate(as_list(path, raw, "videos", "")):
        vw = f"videos[{vi}]"
        video_uid = uid(path, field(path, video, "video_uid", str, vw), "video_uid", vw)
        for ci, clip in enumerate(as_list(path, video, "clips", vw)):
            cw = f"{vw}.clips[{ci}]"
            clip_uid = uid(path, field(path, clip, "clip_uid", str, cw), "clip_uid", cw)
            if clip_uid in clips:
                raise InputError(path, f"{cw}.clip_uid {clip_uid} appears twice")
            t = {k: float(field(path, clip, k, float, cw)) for k in _TIMING}
            if t["clip_fps"] <= 0:
                raise InputError(path, f"{cw}.clip_fps must be positive, got {t['clip_fps']}")
            fr = {k: field(path, clip, k, int, cw, optional=True) for k in _FRAMES}
            if (fr["video_start_frame"] is None) != (fr["video_end_frame"] is None):
                raise InputError(path, f"{cw}: video_start_frame and video_end_frame come together")
            if fr["video_start_frame"] is not None and not (
                    0 <= fr["video_start_frame"] <= fr["video_end_frame"]):
                raise InputError(path, f"{cw}: need 0 <= video_start_frame <= video_end_frame, got "
                                       f"{fr['video_start_frame']}, {fr['video_end_frame']}")
            clips[clip_uid] = ClipTiming(clip_uid=clip_uid, video_uid=video_uid, **t, **fr)
            for ai, ann in enumerate(as_list(path, clip, "annotations", cw)):
                aw = f"{cw}.annotations[{ai}]"
                for qset, qs in as_dict(path, ann, "query_sets", aw).items():
                    qw = f"{aw}.query_sets.{qset}"
                    if not isinstance(qs, dict):
                        raise InputError(path, f"{qw} must be an object")
                    if qs.get("is_valid", True) is False:
                        continue
                    track = as_list(path, qs, "response_track", qw, optional=True)
                    queries.append(Query(
                        clip_uid=clip_uid,
                        video_uid=video_uid,
                        annotation_index=ai,
                        query_set=str(qset),
                        query_frame=field(path, qs, "query_frame", int, qw),
                        visual_crop=read_box(path, qs.get("visual_crop"), f"{qw}.visual_crop"),
                        response_track=None if track is None else [
                            read_box(path, b, f"{qw}.response_track[{i}]") for i, b in enumerate(track)],
                        object_title=field(path, qs, "object_title", str, qw, optional=True),
                    ))
    return QueryFile(clips=clips, queries=queries, raw=raw)


def _query_to_json(q: Query, base: dict | None) -> dict:
    out = copy.deepcopy(base) if base else {"is_valid": True, "errors": [], "warnings": []}
    out["query_frame"] = q.query_frame
    out["visual_crop"] = box_to_json(q.visual_crop, out.get("visual_crop"))
    if q.response_track is not None:
        old = out.get("response_track") or []
        out["response_track"] = [
            box_to_json(b, old[i] if len(old) == len(q.response_track) else None)
            for i, b in enumerate(q.response_track)]
    else:
        out.pop("response_track", None)
    if q.object_title is not None:
        out["object_title"] = q.object_title
    return out


def queries_to_json(qf: QueryFile) -> dict:
    """The JSON document for `qf`: keys of `qf.raw` that are not modelled are preserved; clips and
    queries are exactly those of the dataclasses (invalid raw query sets kept as they were)."""
    raw = qf.raw or {}
    out = {k: copy.deepcopy(v) for k, v in raw.items() if k != "videos"}
    out.setdefault("version", "1")
    raw_videos = {v.get("video_uid"): v for v in raw.get("videos", []) if isinstance(v, dict)}
    raw_clips = {c.get("clip_uid"): c for v in raw_videos.values()
                 for c in v.get("clips", []) if isinstance(c, dict)}
    by_clip: dict[str, dict[tuple[int, str], Query]] = {}
    for q in qf.queries:
        if q.clip_uid not in qf.clips:
            raise ValueError(f"query {q.key} names clip {q.clip_uid} that is not in QueryFile.clips")
        by_clip.setdefault(q.clip_uid, {})[(q.annotation_index, q.query_set)] = q
    videos: dict[str, dict] = {}
    for clip_uid, timing in qf.clips.items():
        if timing.video_uid not in videos:
            base = raw_videos.get(timing.video_uid, {})
            videos[timing.video_uid] = {**{k: copy.deepcopy(v) for k, v in base.items() if k != "clips"},
                                        "video_uid": timing.video_uid, "clips": []}
        base_clip = raw_clips.get(clip_uid, {})
        clip = {k: copy.deepcopy(v) for k, v in base_clip.items() if k != "annotations"}
        clip["clip_uid"] = clip_uid
        for k in _TIMING:
            clip[k] = getattr(timing, k)
        for k in _FRAMES:
            if getattr(timing, k) is not None:
                clip[k] = getattr(timing, k)
        wanted = by_clip.get(clip_uid, {})
        anns = []
        base_anns = base_clip.get("annotations", [])
        n_ann = max([len(base_anns)] + [ai + 1 for ai, _ in wanted])
        for ai in range(n_ann):
            base_ann = base_anns[ai] if ai < len(base_anns) else {}
            ann = {k: copy.deepcopy(v) for k, v in base_ann.items() if k != "query_sets"}
            sets = {}
            for qset, qs in base_ann.get("query_sets", {}).items():
                if (ai, qset) in wanted:
                    sets[qset] = _query_to_json(wanted[(ai, qset)], qs)
                elif isinstance(qs, dict) and qs.get("is_valid", True) is False:
                    sets[qset] = copy.deepcopy(qs)
            for (wai, qset), q in wanted.items():
                if wai == ai and qset not in sets:
                    sets[qset] = _query_to_json(q, None)
            ann["query_sets"] = sets
            ann.setdefault("warnings", [])
            anns.append(ann)
        clip["annotations"] = anns
        videos[timing.video_uid]["clips"].append(clip)
    out["videos"] = list(videos.values())
    return out


def write_queries(path: str | os.PathLike, qf: QueryFile) -> None:
    dump_json(path, queries_to_json(qf))
