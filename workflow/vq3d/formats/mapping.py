"""mapping_vq2d_to_vq3d_queries_annotations_{val,test}.json: joins each VQ3D query to the VQ2D
query (in the VQ2D query file) of the same clip and object.

Despite the file name, the *keys* are VQ3D and the values VQ2D:
{video_uid: {clip_uid: {str(vq3d_ai): {vq3d_qset: {"ai": vq2d_ai, "qset_id": vq2d_qset}}}}}.
Checked on the anchors: VQ3D clip 6c641082 has annotations [{}, {"3": "binding wire", ...}] and
its mapping is {"0": {}, "1": {"3": {"ai": 0, ...}}}; "binding wire" is VQ2D annotation 0, set 3.
A VQ3D annotation that is `{}` maps to {}. This is how Ego4D's VQ3D run.py reads it: it walks
the VQ3D annotations and looks up the VQ2D query whose detections to lift."""

from __future__ import annotations

import os
from dataclasses import dataclass
from functools import cached_property

from ..errors import InputError
from ._common import dump_json, field, load_json, uid

WHAT = "VQ2D→VQ3D mapping file"

Key = tuple[str, int, str]  # (clip_uid, annotation_index, query_set)


@dataclass
class QueryMapping:
    """vq3d_to_vq2d[(clip, vq3d_ai, vq3d_qset)] = (clip, vq2d_ai, vq2d_qset); `video_of` keeps
    each clip's video."""

    vq3d_to_vq2d: dict[Key, Key]
    video_of: dict[str, str]
    raw: dict

    def to_vq2d(self, clip_uid: str, annotation_index: int, query_set: str) -> Key | None:
        """The VQ2D query of a VQ3D query (None if the file maps it to nothing)."""
        return self.vq3d_to_vq2d.get((clip_uid, int(annotation_index), str(query_set)))

    @cached_property
    def _inverse(self) -> dict[Key, Key]:
        return {v: k for k, v in self.vq3d_to_vq2d.items()}

    def to_vq3d(self, clip_uid: str, annotation_index: int, query_set: str) -> Key | None:
        """The VQ3D query of a VQ2D query (None if no VQ3D query uses it)."""
        return self._inverse.get((clip_uid, int(annotation_index), str(query_set)))


def read_mapping(path: str | os.PathLike) -> QueryMapping:
    return mapping_from_json(load_json(path, WHAT), path)


def mapping_from_json(raw, path: str | os.PathLike = "<memory>") -> QueryMapping:
    if not isinstance(raw, dict):
        raise InputError(path, f"{WHAT} must be a JSON object keyed by video_uid")
    table: dict[Key, Key] = {}
    video_of: dict[str, str] = {}
    for video_uid, clips in raw.items():
        uid(path, video_uid, "video_uid", "top-level key")
        if not isinstance(clips, dict):
            raise InputError(path, f"{video_uid} must map clip_uid → annotations")
        for clip_uid, anns in clips.items():
            where = f"{video_uid}.{clip_uid}"
            uid(path, clip_uid, "clip_uid", where)
            video_of[clip_uid] = video_uid
            if not isinstance(anns, dict):
                raise InputError(path, f"{where} must map annotation index → query sets")
            for ai, sets in anns.items():
                if not str(ai).isdigit() or not isinstance(sets, dict):
                    raise InputError(path, f"{where}.{ai}: expected a numeric key and an object")
                for qset, target in sets.items():
                    w = f"{where}.{ai}.{qset}"
                    vq2d_ai = field(path, target, "ai", int, w)
                    vq2d_qset = field(path, target, "qset_id", str, w)
                    table[(clip_uid, int(ai), str(qset))] = (clip_uid, vq2d_ai, vq2d_qset)
    return QueryMapping(vq3d_to_vq2d=table, video_of=video_of, raw=raw)


def mapping_to_json(m: QueryMapping) -> dict:
    """JSON for `m`; annotation indices that map nothing ({} in the source) are kept from raw."""
    out: dict = {}
    for video_uid, clips in (m.raw or {}).items():
        for clip_uid, anns in clips.items():
            for ai in anns:
                out.setdefault(video_uid, {}).setdefault(clip_uid, {}).setdefault(str(ai), {})
    for (clip_uid, ai, qset), (_, vai, vqset) in m.vq3d_to_vq2d.items():
        video_uid = m.video_of[clip_uid]
        out.setdefault(video_uid, {}).setdefault(clip_uid, {}).setdefault(str(ai), {})[qset] = {
            "ai": vai, "qset_id": vqset}
    return out


def write_mapping(path: str | os.PathLike, m: QueryMapping) -> None:
    dump_json(path, mapping_to_json(m))
