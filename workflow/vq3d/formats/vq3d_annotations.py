"""VQ3D annotation files: vq3d_val.json (two annotators' 3D boxes per query) and the test template
vq3d_test_unannotated_template.json (same tree, query sets empty `{}`).

Shape: {"version", ..., "videos": [{"video_uid", "split", "scan_uid", "clips": [{"clip_uid",
"annotations": [{"query_sets": {"1": {"object_title", "3d_annotation_1", "3d_annotation_2"}}}
or {} ]}]}]}. Box centres are in the *annotation* frame, which is the Matterport scan frame rotated
90° about z: (x, y, z)_mp = (y, −x, z)_annotation (see annotation_to_matterport)."""

from __future__ import annotations

import copy
import os
from dataclasses import dataclass, field as dc_field
from pathlib import Path

import numpy as np

from ..errors import InputError
from ..ids import check_id, check_scan_id
from ._common import as_dict, as_list, dump_json, field, load_json, scan_uid, uid, xyz

WHAT = "VQ3D annotation file"


@dataclass
class Box3D:
    """One annotator's 3D box, annotation frame: centre, Euler rotation (rad), size (m)."""

    position: np.ndarray
    rotation: np.ndarray
    dimension: np.ndarray

    def to_json(self) -> dict:
        return {k: dict(zip("xyz", (float(v) for v in getattr(self, k))))
                for k in ("position", "rotation", "dimension")}


@dataclass
class VQ3DQuery:
    video_uid: str
    clip_uid: str
    scan_uid: str
    annotation_index: int
    query_set: str
    object_title: str | None = None
    gt1: Box3D | None = None
    gt2: Box3D | None = None

    @property
    def key(self) -> tuple[str, int, str]:
        return (self.clip_uid, self.annotation_index, self.query_set)


@dataclass
class VQ3DFile:
    queries: list[VQ3DQuery]
    raw: dict = dc_field(default_factory=dict)

    def by_key(self) -> dict[tuple[str, int, str], VQ3DQuery]:
        return {q.key: q for q in self.queries}


def annotation_to_matterport(xyz_annotation) -> np.ndarray:
    """(x, y, z)_mp = (y, −x, z)_annotation; works on (3,) or (N, 3)."""
    a = np.asarray(xyz_annotation, dtype=float)
    return np.stack([a[..., 1], -a[..., 0], a[..., 2]], axis=-1)


def matterport_to_annotation(xyz_mp) -> np.ndarray:
    """Inverse of annotation_to_matterport: (x, y, z)_annotation = (−y, x, z)_mp."""
    m = np.asarray(xyz_mp, dtype=float)
    return np.stack([-m[..., 1], m[..., 0], m[..., 2]], axis=-1)


def read_box3d(path, obj, where: str) -> Box3D:
    if not isinstance(obj, dict):
        raise InputError(path, f"{where} must be an object")
    parts = {k: xyz(path, field(path, obj, k, dict, where), f"{where}.{k}")
             for k in ("position", "rotation", "dimension")}
    return Box3D(**parts)


def iter_query_sets(path, raw: dict):
    """Walk the videos→clips→annotations→query_sets tree shared by annotations, templates, results
    and submissions; yields (video_uid, scan_uid, clip_uid, ai, qset, qs_dict, where)."""
    if not isinstance(raw, dict):
        raise InputError(path, "must be a JSON object with 'videos'")
    seen = set()
    for vi, video in enumerate(as_list(path, raw, "videos", "")):
        vw = f"videos[{vi}]"
        video_uid = uid(path, field(path, video, "video_uid", str, vw), "video_uid", vw)
        scan = field(path, video, "scan_uid", str, vw, optional=True)
        scan = scan_uid(path, scan, f"{vw}.scan_uid") if scan is not None else None
        for ci, clip in enumerate(as_list(path, video, "clips", vw)):
            cw = f"{vw}.clips[{ci}]"
            clip_uid = uid(path, field(path, clip, "clip_uid", str, cw), "clip_uid", cw)
            for ai, ann in enumerate(as_list(path, clip, "annotations", cw)):
                aw = f"{cw}.annotations[{ai}]"
                if not isinstance(ann, dict):
                    raise InputError(path, f"{aw} must be an object")
                sets = as_dict(path, ann, "query_sets", aw, optional=True) or {}
                for qset, qs in sets.items():
                    qw = f"{aw}.query_sets.{qset}"
                    if not isinstance(qs, dict):
                        raise InputError(path, f"{qw} must be an object")
                    key = (clip_uid, ai, str(qset))
                    if key in seen:
                        raise InputError(path, f"{qw}: query {key} appears twice")
                    seen.add(key)
                    yield video_uid, scan, clip_uid, ai, str(qset), qs, qw


def read_vq3d(path: str | os.PathLike) -> VQ3DFile:
    return vq3d_from_json(load_json(path, WHAT), path)


def vq3d_from_json(raw, path: str | os.PathLike = "<memory>") -> VQ3DFile:
    queries = []
    for video_uid, scan, clip_uid, ai, qset, qs, qw in iter_query_sets(path, raw):
        if scan is None:
            raise InputError(path, f"{qw}: its video has no scan_uid")
        gts = [read_box3d(path, qs[k], f"{qw}.{k}") if qs.get(k) is not None else None
               for k in ("3d_annotation_1", "3d_annotation_2")]
        queries.append(VQ3DQuery(
            video_uid=video_uid, clip_uid=clip_uid, scan_uid=scan, annotation_index=ai,
            query_set=qset, object_title=field(path, qs, "object_title", str, qw, optional=True),
            gt1=gts[0], gt2=gts[1]))
    return VQ3DFile(queries=queries, raw=raw)


def rebuild_tree(raw: dict, entries: dict, clips: list[tuple[str, str, str | None]]) -> dict:
    """A VQ3D-shaped document from `raw` (unmodelled keys kept) holding exactly `clips`
    [(video_uid, clip_uid, scan_uid)] and, per (clip_uid, ai, qset), the query-set dict in `entries`.
    Empty annotations `{}` of `raw` are kept where they were, so indices do not shift."""
    raw = raw or {}
    out = {k: copy.deepcopy(v) for k, v in raw.items() if k != "videos"}
    out.setdefault("version", "1")
    raw_videos = {v.get("video_uid"): v for v in raw.get("videos", []) if isinstance(v, dict)}
    raw_clips = {c.get("clip_uid"): c for v in raw_videos.values()
                 for c in v.get("clips", []) if isinstance(c, dict)}
    per_clip: dict[str, dict[tuple[int, str], dict]] = {}
    for (clip_uid, ai, qset), qs in entries.items():
        per_clip.setdefault(clip_uid, {})[(ai, qset)] = qs
    videos: dict[str, dict] = {}
    for video_uid, clip_uid, scan in clips:
        if video_uid not in videos:
            base = raw_videos.get(video_uid, {})
            videos[video_uid] = {**{k: copy.deepcopy(v) for k, v in base.items() if k != "clips"},
                                 "video_uid": video_uid, "clips": []}
            if scan is not None:
                videos[video_uid]["scan_uid"] = scan
        base_clip = raw_clips.get(clip_uid, {})
        clip = {k: copy.deepcopy(v) for k, v in base_clip.items() if k != "annotations"}
        clip["clip_uid"] = clip_uid
        wanted = per_clip.get(clip_uid, {})
        base_anns = base_clip.get("annotations", [])
        n_ann = max([len(base_anns)] + [ai + 1 for ai, _ in wanted])
        anns = []
        for ai in range(n_ann):
            base_ann = base_anns[ai] if ai < len(base_anns) else {}
            ann = {k: copy.deepcopy(v) for k, v in base_ann.items() if k != "query_sets"}
            order = list(base_ann.get("query_sets", {})) + sorted(
                q for a, q in wanted if a == ai and q not in base_ann.get("query_sets", {}))
            sets = {q: wanted[(ai, q)] for q in order if (ai, q) in wanted}
            if sets or "query_sets" in base_ann:
                ann["query_sets"] = sets
            anns.append(ann)
        clip["annotations"] = anns
        videos[video_uid]["clips"].append(clip)
    out["videos"] = list(videos.values())
    return out


def clips_of(raw: dict) -> list[tuple[str, str, str | None]]:
    """(video_uid, clip_uid, scan_uid) of every clip of a VQ3D-shaped document, in order."""
    return [(v["video_uid"], c["clip_uid"], v.get("scan_uid"))
            for v in raw.get("videos", []) for c in v.get("clips", [])]


def vq3d_to_json(vf: VQ3DFile) -> dict:
    raw_sets = {(c, ai, q): qs for _, _, c, ai, q, qs, _ in iter_query_sets("<raw>", vf.raw)} \
        if vf.raw else {}
    entries = {}
    clips = clips_of(vf.raw) if vf.raw else []
    known = {c for _, c, _ in clips}
    for q in vf.queries:
        qs = copy.deepcopy(raw_sets.get(q.key, {}))
        if q.object_title is not None:
            qs["object_title"] = q.object_title
        for k, gt in (("3d_annotation_1", q.gt1), ("3d_annotation_2", q.gt2)):
            if gt is not None:
                qs[k] = gt.to_json()
        entries[q.key] = qs
        if q.clip_uid not in known:
            clips.append((q.video_uid, q.clip_uid, q.scan_uid))
            known.add(q.clip_uid)
    return rebuild_tree(vf.raw, entries, clips)


def write_vq3d(path: str | os.PathLike, vf: VQ3DFile) -> None:
    dump_json(path, vq3d_to_json(vf))


@dataclass(frozen=True)
class VQ3DClip:
    clip_uid: str
    video_uid: str
    scan_uid: str     # the scan's name in the annotations


def read_vq3d_clips(path: str | os.PathLike) -> list[VQ3DClip]:
    """Clip/video/scan uids of a VQ3D annotation file (val annotations or test template).

    Every id is validated and every clip must hold at least one query set: a clip whose
    annotations are all empty would cost hours of frames, detection and posing for nothing."""
    path = Path(path)
    data = load_json(path, WHAT)
    if not isinstance(data, dict):
        raise InputError(path, "VQ3D annotation file must be a JSON object with 'videos'")
    refs: dict[str, VQ3DClip] = {}
    no_query: list[str] = []
    for vi, video in enumerate(as_list(path, data, "videos", "")):
        vw = f"videos[{vi}]"
        if not isinstance(video, dict):
            raise InputError(path, f"{vw} must be an object, got {type(video).__name__}")
        # Unsafe ids raise UnsafeIdError (naming the file and the place), as everywhere ids are read.
        video_uid = check_id(field(path, video, "video_uid", str, vw), what="video_uid",
                             source=f"{path} {vw}")
        if video.get("scan_uid") is None:
            raise InputError(path, f"{vw} ({video_uid}) has no 'scan_uid'")
        scan = check_scan_id(field(path, video, "scan_uid", str, vw), source=f"{path} {vw}")
        for ci, clip in enumerate(as_list(path, video, "clips", vw)):
            cw = f"{vw}.clips[{ci}]"
            if not isinstance(clip, dict):
                raise InputError(path, f"{cw} must be an object, got {type(clip).__name__}")
            clip_uid = check_id(field(path, clip, "clip_uid", str, cw), what="clip_uid",
                                source=f"{path} {cw}")
            anns = as_list(path, clip, "annotations", cw, optional=True) or []
            if not any(isinstance(a, dict) and a.get("query_sets") for a in anns):
                no_query.append(f"{cw} (clip {clip_uid})")
            refs.setdefault(clip_uid, VQ3DClip(clip_uid, video_uid, scan))
    if not refs:
        raise InputError(path, "no clips found under 'videos[].clips[]'")
    if no_query:
        more = f" and {len(no_query) - 1} more" if len(no_query) > 1 else ""
        raise InputError(path, f"{no_query[0]}{more} has no query (no annotation has a query "
                               "set): remove the clip or add its queries")
    return list(refs.values())
