"""`vq3d check --configfile my.yaml`: preflight of a real configuration, in seconds, before a
multi-day run. Every problem is one line (`problem: <file or folder>: <what is wrong>`), all of
them at once, and the exit status is 1 when there is any.

Checked (dataset.kind: ego4d): the config against the schema; every annotation, query, mapping,
intrinsics and scan-name file parses; every clip is in the query file and in the VQ2D<->VQ3D
mapping (and the mapping names no clip the annotations lack); every clip's scan name is mapped
to a folder and that folder exists under scans_dir in a layout the pose stages can use (a textured
Matterport mesh with its materials and textures, or vq3d's own); intrinsics exist for every
clip's scan and, where its video is on disk, for the video's resolution (exact, or the same
aspect ratio scaled); every video is on disk or downloadable (the ego4d CLI is installed and the
AWS profile exists); the precomputed files named in the config exist. Nothing is downloaded and
no video is decoded (a header probe gives the resolution)."""

from __future__ import annotations

import argparse
import shutil
import sys
from collections import defaultdict
from dataclasses import replace
from pathlib import Path

from .errors import InputError


class Problems(list):
    def add(self, where, message: str) -> None:
        self.append(f"{where}: {message}" if where else message)

    def add_exc(self, exc: BaseException) -> None:
        from .stage_runner import one_line
        self.append(one_line(str(exc)))


def _parse(problems: Problems, reader, path, what: str):
    """reader(path), or None with the problem recorded (missing file, bad JSON, bad field)."""
    from .ids import UnsafeIdError
    if path is None:
        problems.add("", f"ego4d.{what} is not set")
        return None
    try:
        return reader(path)
    except (InputError, UnsafeIdError, OSError) as exc:
        problems.add_exc(exc)
        return None


def _downloadable(problems: Problems, config: dict, missing: list[str], videos_dir: Path) -> None:
    """Videos not on disk must be downloadable: the ego4d CLI and the AWS profile are there."""
    if not missing:
        return
    example = f"{videos_dir / (missing[0] + '.mp4')}"
    more = f" and {len(missing) - 1} more" if len(missing) > 1 else ""
    cli = shutil.which("ego4d")
    if cli is None:
        try:
            import ego4d.cli.cli  # noqa: F401
        except ImportError:
            problems.add(example, f"video not on disk{more}, and the ego4d CLI is not installed to "
                                  "download them (pip install 'vq3d[download]')")
            return
    try:
        from .download import _check_profile
        _check_profile(config["ego4d"]["aws_profile"])
    except ImportError:
        problems.add(example, f"video not on disk{more}, and boto3 is not installed to download them")
    except InputError as exc:
        problems.add(example, f"video not on disk{more}, and it cannot be downloaded: {exc}")


def video_size(path: Path) -> tuple[int, int] | None:
    """(width, height) from the container header (milliseconds: nothing is decoded beyond it)."""
    import cv2
    cap = cv2.VideoCapture(str(path))
    try:
        if not cap.isOpened():
            return None
        w, h = int(cap.get(cv2.CAP_PROP_FRAME_WIDTH)), int(cap.get(cv2.CAP_PROP_FRAME_HEIGHT))
        return (w, h) if w > 0 and h > 0 else None
    finally:
        cap.release()


def check_ego4d(config: dict, problems: Problems, probe_videos: bool = True) -> dict:
    """All checks of an ego4d configuration; returns counts for the summary line."""
    from .dataset import check_clips_in_queries, dataset_files, map_scan_folders, read_vq3d_clip_refs
    from .formats.intrinsics import lookup, read_intrinsics
    from .formats.mapping import read_mapping
    from .formats.queries import read_queries
    from .formats.scan_names import read_scan_names
    from .scan import open_scan

    files = dataset_files(config)
    ego = config["ego4d"]
    refs = _parse(problems, read_vq3d_clip_refs, files["annotations"], "annotations")
    queries = _parse(problems, read_queries, files["queries"], "queries")
    mapping = _parse(problems, read_mapping, files["mapping"], "mapping")
    intr = _parse(problems, read_intrinsics, files["intrinsics"], "intrinsics")
    for key in ("detections", "peaks", "poses"):
        value = ego["precomputed"][key]
        if value and not Path(value).exists():
            problems.add(value, f"ego4d.precomputed.{key} does not exist")
    if refs is None:
        return {}

    if queries is not None:
        try:
            check_clips_in_queries(refs, files["queries"], files["annotations"])
        except InputError as exc:
            problems.add_exc(exc)
    if mapping is not None:
        clips = {r.clip_uid for r in refs}
        missing = sorted(clips - set(mapping.video_of))
        if missing:
            problems.add(files["mapping"], f"{len(missing)} clip(s) of {files['annotations']} are not in "
                                           f"the VQ2D<->VQ3D mapping, e.g. {missing[0]}")
        extra = sorted(set(mapping.video_of) - clips)
        if extra:
            problems.add(files["mapping"], f"{len(extra)} clip(s) of the mapping are not in "
                                           f"{files['annotations']}, e.g. {extra[0]} (files of different splits?)")
        wrong_video = sorted(r.clip_uid for r in refs if mapping.video_of.get(r.clip_uid, r.video_uid) != r.video_uid)
        if wrong_video:
            problems.add(files["mapping"], f"clip {wrong_video[0]} is under another video than in "
                                           f"{files['annotations']}" + (f" ({len(wrong_video)} clips)" if len(wrong_video) > 1 else ""))

    # scan names -> folders (all unmapped names at once), then each folder once
    try:
        table = read_scan_names(ego["scan_names"])
    except InputError as exc:
        problems.add_exc(exc)
        table = {}
    if table:
        try:
            map_scan_folders(refs, ego["scan_names"], files["annotations"])
        except InputError as exc:  # every unmapped name, in one line
            problems.add_exc(exc)
    refs = [replace(r, scan_folder=table[r.scan_uid]) for r in refs if r.scan_uid in table]
    scans_dir = files["scans_dir"]
    by_scan = defaultdict(list)
    for r in refs:
        by_scan[r.scan_folder].append(r)
    for folder, clips in sorted(by_scan.items()):
        path = scans_dir / folder
        if not path.is_dir():
            problems.add(path, f"scan folder of {clips[0].scan_uid!r} does not exist ({len(clips)} clip(s) "
                               f"use it, e.g. {clips[0].clip_uid}); fetch the scans with `vq3d download --dataset 3d_scans --out DIR --scans-dir SCANS` "
                               "or set ego4d.scans_dir")
            continue
        try:
            scan = open_scan(path)
        except InputError as exc:
            problems.add_exc(exc)
            continue
        if config["pose"]["pnp"] and scan.mesh() is None and not scan.reference_views_path().is_dir():
            problems.add(path, "pose.pnp is on but this scan folder has neither a textured mesh *.obj to "
                               "render reference views from nor refs/ (only geo renders?)")

    # intrinsics per scan, and per resolution where the video is there to tell it
    videos_dir = files["videos_dir"]
    source_clips = ego["source"] == "clips"
    not_on_disk = []
    for r in (refs if intr is not None else []):
        if r.scan_uid not in intr:
            problems.add(files["intrinsics"], f"no intrinsics for scan {r.scan_uid!r} of clip {r.clip_uid}")
    seen_videos = set()
    for r in refs:
        uid = r.clip_uid if source_clips else r.video_uid
        if uid in seen_videos:
            continue
        seen_videos.add(uid)
        video = videos_dir / f"{uid}.mp4"
        if not video.is_file():
            not_on_disk.append(uid)
            continue
        if not (probe_videos and intr is not None and r.scan_uid in intr):
            continue
        size = video_size(video)
        if size is None:
            problems.add(video, "video cannot be read (no video stream OpenCV/FFmpeg can open)")
            continue
        for clip in (c for c in refs if (c.clip_uid if source_clips else c.video_uid) == uid):
            try:
                lookup(intr, clip.scan_uid, *size, source=files["intrinsics"])
            except InputError as exc:
                problems.add(files["intrinsics"], f"clip {clip.clip_uid} ({video.name}, "
                                                  f"{size[0]}x{size[1]}): {str(exc).split(': ', 1)[1]}")
    _downloadable(problems, config, not_on_disk, videos_dir)
    return {"clips": len(refs), "scans": len(by_scan), "videos on disk": len(seen_videos) - len(not_on_disk),
            "videos to download": len(not_on_disk)}


def check(configfile, probe_videos: bool = True) -> Problems:
    from .config import ConfigError, load_config
    problems = Problems()
    try:
        config = load_config(configfile)
    except ConfigError as exc:
        problems.add_exc(exc)
        return problems
    if config["dataset"]["kind"] != "ego4d":
        problems.summary = {"dataset": "synth (generated by the workflow: nothing to check)"}
        return problems
    problems.summary = check_ego4d(config, problems, probe_videos)
    return problems


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--configfile", required=True, help="the config file the run will use")
    parser.add_argument("--no-probe", action="store_true", help="do not read video headers for their resolution")


def run(args: argparse.Namespace) -> int:
    problems = check(args.configfile, probe_videos=not args.no_probe)
    for line in problems:
        print(f"problem: {line}")
    summary = ", ".join(f"{v} {k}" if isinstance(v, int) else f"{k}: {v}"
                        for k, v in getattr(problems, "summary", {}).items())
    if problems:
        print(f"vq3d check: {len(problems)} problem(s) in {args.configfile}" + (f" ({summary})" if summary else ""),
              file=sys.stderr)
        return 1
    print(f"vq3d check: {args.configfile} ok ({summary})")
    return 0
