"""`vq3d synth --layout ego4d`: the synthetic world (same scenes, same ground truth) laid out exactly
as the ego4d CLI, Ego4D's episodic-memory repository and EgoLoc deliver the real data, so that the
`dataset.kind: ego4d` path runs on it unchanged. docs/replica.md describes every file and where
each fact comes from; in short (OUT = the folder written):

- OUT/ego4d/v2/<dataset>/: the tree `ego4d --output_directory OUT/ego4d --version v2_1` leaves,
  each dataset folder with the `manifest.csv` the CLI downloads beside its files:
  `annotations` (vq_val.json, vq_test_unannotated.json, vq3d_val.json, vq3d_test_unannotated.json),
  `clips` (30 fps canonical clips `<clip_uid>.mp4`), `full_scale` (`<video_uid>.mp4`),
  `3d` (the VQ3D clip/video lists) and `3d_scans` (one tar per scan: a MatterPak, matterpak.py).
  `vq3d serve-replica` serves exactly these files from a local S3 (replica_s3.py).
- OUT/episodic-memory/VQ3D/data/: scan_to_intrinsics.json, the VQ2D<->VQ3D mappings and the test
  template, as Ego4D's repository ships them.
- OUT/EgoLoc/: data/metadata/ and 2d_retrieval/data/ (the VQ2D-style query files of the VQ3D clips)
  and data/geo_register/<scan folder>/geo_N.jpg + geo.txt, as EgoLoc's repository ships them.
- OUT/scan_names.json: annotation scan name -> scan folder (Ego4D hard-codes this table).
- OUT/gt/: the synthetic ground truth under the replica's uids; OUT/replica.json: what was made.

Real-data traits reproduced: uuid4 uids with `source_clip_uid` != `clip_uid` (only `clip_uid` is
in the clips manifest), scan names with spaces mapped to `unict_3dscan_NNN` folders, 30 fps
videos, 16:9 and 4:3 videos (1920x1080 / 1440x1080, or those divided by `scale`) with the
stringified-resolution intrinsics keys, clips that start at the video's first frame (one with
Ego4D's `video_start_sec` ~ -0.0123 s and `video_start_frame` 0), end frames counted inclusively
(`video_end_frame` = start + 30 * length, as the anchors' clips)."""

from __future__ import annotations

import argparse
import hashlib
import json
import logging
import shutil
import tarfile
import uuid
from pathlib import Path

import numpy as np

from ..atomic import atomic_dir
from ..config import defaults
from ..errors import InputError
from ..formats.intrinsics import intrinsics_from_json, intrinsics_to_json, read_intrinsics, write_intrinsics
from ..formats.manifest import write_manifest
from ..formats.mapping import mapping_from_json, mapping_to_json, read_mapping, write_mapping
from ..formats.metadata import ClipName, write_clip_names, write_vq3d_lists
from ..formats.queries import queries_from_json, queries_to_json, read_queries, write_queries
from ..formats.scan_names import EGO4D_SCAN_NAMES, write_scan_names
from ..formats.synth_gt import (read_gt_boxes, read_gt_clips, read_gt_objects, read_gt_poses,
                                read_gt_queries, write_gt_boxes, write_gt_index, write_gt_poses,
                                write_replica_summary)
from ..formats.vq3d_annotations import read_vq3d, vq3d_from_json, vq3d_to_json, write_vq3d
from ..video.ffmpeg import run_ffmpeg
from . import generate as synth
from . import layout
from .matterpak import write_matterpak
from .scene import build_scene

log = logging.getLogger(__name__)

SOURCE_FPS = 30               # Ego4D canonical videos and clips
CLI_VERSION = "v2_1"          # what `ego4d --version` is given; the CLI writes to its major, v2/
CLI_DIR = "v2"
MANIFEST_BUCKET = "ego4d-consortium-sharing"
VIDEO_BUCKET = "ego4d-unict-milan"  # ego4d/cli/universities.py: unict -> this bucket
FULL_RESOLUTIONS = [(1920, 1080), (1440, 1080)]
SCALES = (1, 2, 3, 4, 6)      # keep both sides even (H.264 4:2:0)
NEG_START_SEC = -0.012304733333333331  # the anchors' 7 negative-start clips all have this value
# Where each delivered file goes, relative to OUT.
ANNOTATIONS = f"ego4d/{CLI_DIR}/annotations"
EPISODIC = "episodic-memory/VQ3D/data"
EGOLOC_META = "EgoLoc/data/metadata"
EGOLOC_2D = "EgoLoc/2d_retrieval/data"
GEO_REGISTER = "EgoLoc/data/geo_register"


def options(conf: dict | None = None) -> dict:
    """The replica's options over their defaults (the schema's `$defs.replica`), checked."""
    from ..config import tool_options

    return tool_options("replica", conf, "synth --layout ego4d")


def resolutions(scale: int) -> list[tuple[int, int]]:
    if scale not in SCALES:
        raise InputError("synth --scale", f"must be one of {', '.join(map(str, SCALES))}, got {scale}")
    return [(w // scale, h // scale) for w, h in FULL_RESOLUTIONS]


def scan_names(scenes: int) -> list[tuple[str, str]]:
    """(annotation scan name, scan folder) per scene: Ego4D's four, then more in the same style."""
    real = list(EGO4D_SCAN_NAMES.items())
    return [real[s] if s < len(real) else (f"unict_Synthetic room {s + 1}_{31 + s}", f"unict_3dscan_{s + 1:03d}")
            for s in range(scenes)]


def _uid(seed: int, *parts) -> str:
    """A deterministic uuid4-shaped uid (lower-case, as Ego4D's)."""
    digest = hashlib.sha256(json.dumps([seed, *parts]).encode()).digest()
    return str(uuid.UUID(bytes=digest[:16], version=4))


def _rename(obj, names: dict):
    """Every string value and dict key found in `names` replaced by its new name."""
    if isinstance(obj, dict):
        return {names.get(k, k): _rename(v, names) for k, v in obj.items()}
    if isinstance(obj, list):
        return [_rename(v, names) for v in obj]
    if isinstance(obj, str):
        return names.get(obj, obj)
    return obj


# Each delivered file goes through its format's reader and writer: read (checked), renamed as
# JSON, written back through the writer (which checks it again).
_DOCS = {"queries": (read_queries, queries_to_json, queries_from_json, write_queries),
         "vq3d": (read_vq3d, vq3d_to_json, vq3d_from_json, write_vq3d),
         "mapping": (read_mapping, mapping_to_json, mapping_from_json, write_mapping),
         "intrinsics": (read_intrinsics, intrinsics_to_json, intrinsics_from_json, write_intrinsics)}


def _read(kind: str, path: Path) -> dict:
    read, to_json, _, _ = _DOCS[kind]
    return to_json(read(path))


def _write(kind: str, path: Path, doc: dict) -> None:
    _, _, from_json, write = _DOCS[kind]
    write(path, from_json(doc, path))


def _select_frames(src: Path, dst: Path, first: int, last: int | None) -> None:
    """Re-encode source frames first..last (inclusive; None: to the end) at 30 fps, frame-exact."""
    expr = f"gte(n\\,{first})" if last is None else f"between(n\\,{first}\\,{last})"
    run_ffmpeg(["-i", str(src), "-vf", f"select={expr},setpts=N/({SOURCE_FPS}*TB)", "-r", str(SOURCE_FPS),
                "-an", "-c:v", "libx264", "-preset", "veryfast", "-crf", "18", "-pix_fmt", "yuv420p",
                str(dst)], what=dst.name)


def write_replica(out_dir, conf: dict | None = None, workers: int | None = None) -> dict:
    """Generate the synthetic world and write it in the Ego4D layout to `out_dir` (atomically)."""
    c = options(conf)
    if float(c["clip_seconds"]) != int(c["clip_seconds"]):
        raise InputError("synth --clip-seconds", "the Ego4D layout needs whole seconds (frame-exact clip ends)")
    sizes = resolutions(int(c["scale"]))
    sconf = {"seed": c["seed"], "scenes": c["scenes"], "clips_per_scene": c["clips_per_scene"],
             "queries_per_clip": c["queries_per_clip"], "width": sizes[0][0], "height": sizes[0][1],
             "source_fps": SOURCE_FPS, "clip_seconds": int(c["clip_seconds"]),
             # Of the synthetic scan the replica keeps the geo renders only (the ego4d path renders
             # its own views from the MatterPak): as many views as geo renders.
             "ref_views": defaults("scan_refs")["geo"]}
    out_dir = Path(out_dir)
    with atomic_dir(out_dir) as tmp:
        world = tmp / ".synth"
        synth.generate(world, sconf, workers=workers, resolutions=sizes)
        summary = _convert(world, tmp, synth._conf(sconf), c)
        shutil.rmtree(world)
    log.info("Ego4D-layout replica written to %s (%d clips, %d scans)", out_dir, len(summary["clips"]),
             len(summary["scans"]))
    return summary


def _convert(world: Path, out: Path, sconf: dict, c: dict) -> dict:
    seed, fps, L = sconf["seed"], SOURCE_FPS, int(sconf["clip_seconds"])
    names: dict[str, str] = {}
    scans = scan_names(sconf["scenes"])
    gt_clips = read_gt_clips(world / "gt")
    lead = {}  # scene -> seconds cut from the front of its video (its first clip then starts at frame 0)
    clips_info = {}
    for s, (scan_name, folder) in enumerate(scans):
        names[layout.scan_uid(seed, s)] = scan_name
        names[layout.video_uid(seed, s)] = _uid(seed, "video", s)
        # Scene 0's first clip starts at the video's first frame with Ego4D's negative start, scene
        # 2's at frame 0 with start 0.0 (as most anchor clips); the others keep the lead-in.
        lead[s] = synth.LEAD_S if s in (0, 2) else 0
    for clip in layout.clips(sconf):
        names[clip.clip_uid] = _uid(seed, "clip", clip.scene, clip.index)
        names[f"{clip.clip_uid}-a0"] = _uid(seed, "annotation", clip.scene, clip.index)

    # --- videos: full-scale (trimmed where a clip starts at frame 0) and canonical clips
    full = out / f"ego4d/{CLI_DIR}/full_scale"
    clips_dir = out / f"ego4d/{CLI_DIR}/clips"
    full.mkdir(parents=True)
    clips_dir.mkdir(parents=True)
    video_rows, clip_rows = [], []
    for s in range(sconf["scenes"]):
        src = world / "videos" / f"{layout.video_uid(seed, s)}.mp4"
        vuid = names[layout.video_uid(seed, s)]
        dst = full / f"{vuid}.mp4"
        if lead[s]:
            _select_frames(src, dst, lead[s] * fps, None)
        else:
            shutil.copyfile(src, dst)
        video_rows.append([vuid, f"s3://{VIDEO_BUCKET}/public/{CLI_VERSION}/full_scale/{vuid}.mp4", "[EM]"])
    timing = {}
    for clip in layout.clips(sconf):
        g = gt_clips[clip.clip_uid]
        start = int(round(g["video_start_sec"])) - lead[clip.scene]
        vsf = start * fps
        negative = clip.index == 0 and clip.scene == 0
        timing[clip.clip_uid] = (start, vsf, negative)
        cuid = names[clip.clip_uid]
        _select_frames(full / f"{names[clip.video_uid]}.mp4", clips_dir / f"{cuid}.mp4", vsf, vsf + L * fps)
        clip_rows.append([cuid, f"s3://{VIDEO_BUCKET}/public/{CLI_VERSION}/clips/{cuid}.mp4", "[EM]"])
        clips_info[cuid] = {"video_uid": names[clip.video_uid], "scan_name": scans[clip.scene][0],
                            "scan_folder": scans[clip.scene][1], "video_start_frame": vsf,
                            "video_start_sec": NEG_START_SEC if negative else float(start),
                            "width": None, "height": None, "synth_clip_uid": clip.clip_uid}
    write_manifest(full / "manifest.csv", ["video_uid", "s3_path", "benchmarks"], video_rows)
    write_manifest(clips_dir / "manifest.csv", ["video_uid", "s3_path", "benchmarks"], clip_rows)

    # --- annotation files: the generator's, renamed and re-timed
    def retime_vq2d(data):
        for v in data["videos"]:
            for cl in v["clips"]:
                synth_uid = next(k for k, n in names.items() if n == cl["clip_uid"])
                start, vsf, negative = timing[synth_uid]
                shift = cl["video_start_frame"] - vsf
                cl.update(video_start_sec=NEG_START_SEC if negative else float(start),
                          video_end_sec=(NEG_START_SEC if negative else float(start)) + L,
                          video_start_frame=vsf, video_end_frame=vsf + L * fps, clip_start_sec=0,
                          clip_end_sec=L - 1 / fps if negative else float(L), clip_start_frame=0,
                          clip_end_frame=L * fps - 1 if negative else L * fps,
                          source_clip_uid=_uid(seed, "source_clip", synth_uid))
                for a in cl["annotations"]:
                    for q in a["query_sets"].values():
                        q["query_video_frame"] -= shift
                        for box in [q["visual_crop"], *q.get("response_track", [])]:
                            box["video_frame_number"] -= shift
                        info = clips_info[cl["clip_uid"]]
                        info["width"], info["height"] = q["visual_crop"]["original_width"], q["visual_crop"]["original_height"]
        return data

    F = layout.FILES
    vq2d_val = retime_vq2d(_rename(_read("queries", world / F["queries_val"]), names))
    vq2d_test = retime_vq2d(_rename(_read("queries", world / F["queries_test"]), names))
    vq3d_val = _rename(_read("vq3d", world / F["annotations_val"]), names)
    vq3d_test = _rename(_read("vq3d", world / F["annotations_test"]), names)
    for d in (vq2d_val, vq2d_test, vq3d_val, vq3d_test):
        d.update(date="replica", manifest=f"s3://{MANIFEST_BUCKET}/public/v1/full_scale/manifest.csv")
    # The two repositories' test templates differ in their header (the anchors): Ego4D's has
    # version "1" and no challenge key, EgoLoc's version "1.0" and the challenge name.
    template_ego4d = {k: v for k, v in vq3d_test.items() if k != "challenge"}
    template_ego4d["version"] = "1"
    template_egoloc = {**vq3d_test, "version": "1.0", "challenge": "ego4d_vq3d_challenge"}
    mapping = {s: _rename(_read("mapping", world / F[f"mapping_{s}"]), names) for s in ("val", "test")}
    intrinsics = _rename(_read("intrinsics", world / F["intrinsics"]), names)
    ann = out / ANNOTATIONS
    files = {"vq_val.json": ("queries", vq2d_val), "vq_test_unannotated.json": ("queries", vq2d_test),
             "vq3d_val.json": ("vq3d", vq3d_val), "vq3d_test_unannotated.json": ("vq3d", vq3d_test)}
    for name, (kind, data) in files.items():
        _write(kind, ann / name, data)
    write_manifest(ann / "manifest.csv", ["file_uid", "s3_path", "type"],
              [[Path(n).stem, f"s3://{MANIFEST_BUCKET}/public/{CLI_VERSION}/annotations/{n}", "file"] for n in files])
    epi = out / EPISODIC
    _write("intrinsics", epi / "scan_to_intrinsics.json", intrinsics)
    _write("vq3d", epi / "vq3d_test_unannotated_template.json", template_ego4d)
    for s in ("val", "test"):
        _write("mapping", epi / f"mapping_vq2d_to_vq3d_queries_annotations_{s}.json", mapping[s])
    meta = out / EGOLOC_META
    _write("queries", meta / "vq_val_vq3d.json", vq2d_val)
    _write("queries", out / EGOLOC_2D / "vq_test_vq3d.json", vq2d_test)
    _write("vq3d", meta / "vq3d_val.json", vq3d_val)
    _write("vq3d", meta / "vq3d_test_unannotated_template.json", template_egoloc)
    for s in ("val", "test"):
        _write("mapping", meta / f"mapping_vq2d_to_vq3d_queries_annotations_{s}.json", mapping[s])
    split_clips = [ClipName(cu, sp, info["scan_name"]) for sp in ("val", "test") for cu, info in clips_info.items()]
    write_clip_names(meta / "clip_names_val_test.json", split_clips)

    # --- the 3d datasets: VQ3D clip/video lists, and one MatterPak tar per scan
    d3 = out / f"ego4d/{CLI_DIR}/3d"
    videos = sorted({(sp, i["video_uid"]) for sp in ("val", "test") for i in clips_info.values()})
    lists = write_vq3d_lists(d3, [(c.clip_uid, c.split) for c in split_clips], [(v, sp) for sp, v in videos])
    write_manifest(d3 / "manifest.csv", ["file_uid", "s3_path", "type"],
              [[Path(n).stem, f"s3://{MANIFEST_BUCKET}/public/{CLI_VERSION}/3d/{n}", "file"] for n in lists])
    d3s = out / f"ego4d/{CLI_DIR}/3d_scans"
    d3s.mkdir(parents=True)
    scan_rows, scans_info = [], {}
    n_obj = max(sconf["queries_per_clip"] + 1, 3)
    for s, (scan_name, folder) in enumerate(scans):
        scene = build_scene(np.random.default_rng([seed, s, 1]), n_obj)  # as generate._render_scene
        pak = out / ".pak" / folder
        info = write_matterpak(scene, pak, folder, seed=seed)
        with tarfile.open(d3s / f"{folder}.tar", "w") as tar:
            tar.add(pak, arcname=folder)
        scan_rows.append([folder, f"s3://{MANIFEST_BUCKET}/public/{CLI_VERSION}/3d_scans/{folder}.tar", "file"])
        geo_src = world / "scans" / layout.scan_uid(seed, s) / "geo_register"
        shutil.copytree(geo_src, out / GEO_REGISTER / folder)
        scans_info[scan_name] = {"folder": folder, "mesh": info["obj"], "faces": info["faces"]}
    shutil.rmtree(out / ".pak")
    write_manifest(d3s / "manifest.csv", ["file_uid", "s3_path", "type"], scan_rows)
    write_scan_names(out / "scan_names.json", {n: f for n, f in scans})

    # --- ground truth under the replica's names (clip frames keep their indices)
    gt = out / "gt"
    for clip in layout.clips(sconf):
        cuid = names[clip.clip_uid]
        write_gt_poses(gt, cuid, read_gt_poses(world / "gt", clip.clip_uid).cam_from_world)
        write_gt_boxes(gt, cuid, _rename(read_gt_boxes(world / "gt", clip.clip_uid), names))
    new_clips = {}
    for su, g in gt_clips.items():
        start, vsf, negative = timing[su]
        shift = int(round(g["video_start_sec"])) * fps - vsf
        new_clips[names[su]] = {**_rename(g, names), "video_start_sec": clips_info[names[su]]["video_start_sec"],
                                "video_end_sec": clips_info[names[su]]["video_start_sec"] + L,
                                "source_frames": [f - shift for f in g["source_frames"]],
                                "scan_folder": clips_info[names[su]]["scan_folder"]}
    write_gt_index(gt, new_clips, _rename(read_gt_queries(world / "gt"), names),
                   _rename(read_gt_objects(world / "gt"), names))
    summary = {"layout": "ego4d", "cli_version": CLI_VERSION, "conf": c, "source_fps": fps,
               "resolutions": [list(r) for r in resolutions(int(c["scale"]))], "clips": clips_info,
               "scans": scans_info}
    write_replica_summary(out / "replica.json", summary)
    return summary


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--scale", type=int,
                        help="--layout ego4d: video size = 1920x1080 / 1440x1080 divided by this "
                             f"(default {options()['scale']}; 1 = Ego4D's full size)")
