"""What the configured dataset is made of: its files and its clips.

Both dataset kinds are described the same way, so every later stage runs one code path:
`dataset_files(config)` gives the annotation/query/mapping/intrinsics files, the videos and scans
folders; `clip_refs(config)` lists the clips (uid, video, scan name, scan folder) with every id
validated before any job is built from it, and (ego4d) every clip checked to have a query, to be
in the query file, and its scan name mapped to a scan folder (`ego4d.scan_names`, see
vq3d.formats.scan_names: the annotations say `unict_Scooter mechanic_31`, the folder is
`unict_3dscan_001`)."""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

from .errors import InputError
from .formats.vq3d_annotations import read_vq3d_clips
from .synth import layout


@dataclass(frozen=True)
class ClipRef:
    clip_uid: str
    video_uid: str
    scan_uid: str     # the scan's name in the annotations (keys scan_to_intrinsics.json)
    scan_folder: str  # its folder under the scans folder (== scan_uid for the synthetic scans)


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
        return [ClipRef(c.clip_uid, c.video_uid, c.scan_uid, c.scan_uid) for c in layout.clips(config["synth"])]
    files = dataset_files(config)
    refs = read_vq3d_clip_refs(files["annotations"])
    if files["queries"] is not None and Path(files["queries"]).is_file():
        check_clips_in_queries(refs, files["queries"], files["annotations"])
    return map_scan_folders(refs, config["ego4d"]["scan_names"], files["annotations"])


def map_scan_folders(refs: list[ClipRef], scan_names, annotations) -> list[ClipRef]:
    """Each clip's scan folder from the scan name mapping (None: Ego4D's own table); every scan
    name of the annotation file must be mapped, all unmapped ones are named at once."""
    from .formats.scan_names import BUILTIN, read_scan_names

    table = read_scan_names(scan_names)
    source = str(scan_names) if scan_names else BUILTIN
    missing = sorted({r.scan_uid for r in refs if r.scan_uid not in table})
    if missing:
        known = ", ".join(repr(n) for n in sorted(table))
        raise InputError(annotations, f"scan name(s) {', '.join(map(repr, missing))} have no scan folder "
                                      f"in {source} (it maps {known}); set ego4d.scan_names to a JSON "
                                      "file {scan name: folder} that maps them")
    return [ClipRef(r.clip_uid, r.video_uid, r.scan_uid, table[r.scan_uid]) for r in refs]


def check_clips_in_queries(refs: list[ClipRef], queries, annotations) -> None:
    """Every clip of the annotation file must be in the query file (its timing and visual crops
    are there): checked before any job is built, not hours later in the clip's frames job."""
    from .formats.queries import read_queries

    clips = read_queries(queries).clips
    missing = [r.clip_uid for r in refs if r.clip_uid not in clips]
    if missing:
        hint = (" (are the two files of different splits?)" if len(missing) == len(refs) else "")
        raise InputError(queries, f"{len(missing)} of the {len(refs)} clips of {annotations} are not "
                                  f"in this query file, e.g. {missing[0]}{hint}")


def read_vq3d_clip_refs(path: str | os.PathLike) -> list[ClipRef]:
    """Clip/video/scan uids of a VQ3D annotation file (val annotations or test template), every
    id validated and every clip holding a query set (vq3d.formats.vq3d_annotations.read_vq3d_clips)."""
    return [ClipRef(c.clip_uid, c.video_uid, c.scan_uid, c.scan_uid) for c in read_vq3d_clips(path)]
