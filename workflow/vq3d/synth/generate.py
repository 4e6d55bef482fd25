"""Generate the synthetic egocentric benchmark (the workflow's default dataset).

Per scene: a room (scene.py), a head-mounted trajectory (trajectory.py) rendered through a
RADIAL_FISHEYE camera (render.py) to one "full-scale" H.264 video at `source_fps` that holds
`clips_per_scene` clips separated by gaps, a scan folder (scan.py), and for every clip the
Ego4D-shaped annotations (annotate.py) and the ground truth.

Timing: the video starts with LEAD_S seconds, then clip c occupies
[start_c, start_c + clip_seconds], end frame included as in Ego4D's clips, with start_c = LEAD_S + c * (clip_seconds' + GAP_S), every start a
whole second. Clip frame i (5 fps) is at video time start_c + i/5, i.e. exactly source frame
`start_c * source_fps + i * source_fps / 5` (source_fps is a multiple of 5); gt/clips.json lists them.

Output (names from layout.FILES): vq3d_val.json, vq3d_test_unannotated_template.json,
vq_val_vq3d.json, vq_test_vq3d.json, mapping_vq2d_to_vq3d_queries_annotations_{val,test}.json,
scan_to_intrinsics.json, videos/<video_uid>.mp4, scans/<scan_uid>/ (see scan.py), and gt/:
- gt/clips.json: {clip_uid: {video_uid, scan_uid, video_start_sec, video_end_sec, source_fps,
  clip_fps, n_frames, source_frames: [source frame of clip frame i]}}
- gt/poses/<clip_uid>.json: EgoLoc pose JSON {clip_uid: {good_poses, camera_poses (3×4 world→camera)}}
- gt/boxes/<clip_uid>.json: {"frames": [{str(object index): {bbox [x1, y1, x2, y2], visible_fraction}}]}
- gt/objects.json: {scan_uid: [{index, title, kind, twin, centre_scan, centre_annotation, size, yaw}]}
- gt/queries.json: one record per query (clip, annotation index, query set, object, 3D centres, frames)
Both splits hold the same clips: val with answers, test without.
"""

from __future__ import annotations

import argparse
import logging
import os
import subprocess
import time
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

import numpy as np

from ..atomic import atomic_dir
from ..errors import InputError
from ..formats.intrinsics import intrinsics_from_json, write_intrinsics
from ..formats.mapping import mapping_from_json, write_mapping
from ..formats.queries import queries_from_json, write_queries
from ..formats.synth_gt import write_gt_boxes, write_gt_index, write_gt_poses
from ..formats.vq3d_annotations import vq3d_from_json, write_vq3d
from ..frames import ego4d_count
from ..progress import Progress
from ..video.ffmpeg import INSTALL_HINT, FFmpegError, ffmpeg_exe
from . import layout
from . import hard
from .annotate import annotation_3d, box_entry, choose_query, hard_choose_query, mp_to_annotation, object_boxes
from .camera import fisheye_for
from .render import FisheyeRenderer
from .scan import write_scan
from .scene import build_scene
from .trajectory import trajectory

log = logging.getLogger(__name__)

CLIP_FPS = 5
LEAD_S = 2
GAP_S = 3
TRAIL_S = 1
NOISE_SIGMA = 2.0     # sensor noise (grey levels)
EXPOSURE_SWING = 0.08  # slow auto-exposure drift (± fraction)


HARD_UNREAD = ("width", "height", "clip_seconds")  # the hard tier draws these from the anchors


def _conf(conf: dict | None) -> dict:
    """`conf` over the schema's synth defaults (vq3d.config), checked."""
    from ..config import defaults

    base = defaults("synth")
    c = {**base, **(conf or {})}
    unknown = set(c) - set(base)
    if unknown:
        raise InputError("synth", f"unknown option(s) {', '.join(sorted(unknown))}; allowed: "
                                  f"{', '.join(base)}")
    if c["preset"] == "hard":
        for key in HARD_UNREAD:
            if c[key] != base[key]:
                raise InputError(f"synth.{key}", f"not read by preset hard (its resolutions, lenses and "
                                 f"clip lengths are drawn from the anchors; synth.scale picks full or ci), "
                                 f"got {c[key]}: leave it at the default {base[key]}")
    for key in ("width", "height"):
        if c[key] % 2:
            raise InputError(f"synth.{key}", f"must be even for H.264 yuv420p, got {c[key]}")
    if c["source_fps"] % CLIP_FPS:
        raise InputError("synth.source_fps", f"must be a multiple of {CLIP_FPS}, got {c['source_fps']}")
    return c


def clip_timing(conf: dict, durations: list[float] | None = None) -> list[tuple[int, float]]:
    """(start_sec, end_sec) of each clip in its scene's video; starts are whole seconds.
    `durations`: one length per clip (the hard tier's draws); default conf's clip_seconds."""
    durations = durations or [float(conf["clip_seconds"])] * conf["clips_per_scene"]
    out, start = [], LEAD_S
    for d in durations:
        out.append((start, start + float(d)))
        start += int(np.ceil(d)) + GAP_S
    return out


class _Encoder:
    """ffmpeg libx264/yuv420p fed raw BGR frames through a pipe."""

    def __init__(self, path: Path, width: int, height: int, fps: int, rate: list[str] | None = None):
        self.path = path
        cmd = [ffmpeg_exe(), "-loglevel", "error", "-y", "-f", "rawvideo", "-pix_fmt", "bgr24", "-s", f"{width}x{height}",
               "-r", str(fps), "-i", "-", "-an", "-c:v", "libx264", "-preset", "veryfast", *(rate or ["-crf", "18"]),
               "-pix_fmt", "yuv420p", "-threads", "1", str(path)]
        try:
            self.proc = subprocess.Popen(cmd, stdin=subprocess.PIPE, stderr=subprocess.PIPE)
        except OSError as exc:
            raise FFmpegError(f"{cmd[0]} cannot be run ({exc}); {INSTALL_HINT}", cmd, 127) from None
        self.cmd = cmd

    def write(self, frame: np.ndarray) -> None:
        try:
            self.proc.stdin.write(frame.tobytes())
        except BrokenPipeError:  # ffmpeg exited: report why
            err = self.proc.stderr.read().decode(errors="replace")
            raise FFmpegError.failed(self.cmd, self.proc.wait(), f"writing {self.path}: {err.strip()}") from None

    def close(self) -> None:
        self.proc.stdin.close()
        err = self.proc.stderr.read().decode(errors="replace")
        if self.proc.wait() != 0:
            raise FFmpegError.failed(self.cmd, self.proc.returncode, f"writing {self.path}: {err.strip()}")

    def kill(self) -> None:
        self.proc.kill()
        self.proc.wait()


def _render_scene(args) -> dict:
    conf, scene_idx, root = args
    root = Path(root)
    seed = conf["seed"]
    rng = lambda purpose: np.random.default_rng([seed, scene_idx, purpose])  # noqa: E731
    fps = conf["source_fps"]
    step = fps // CLIP_FPS
    n_obj = max(conf["queries_per_clip"] + 1, 3)
    hard_tier = conf["preset"] == "hard"
    if hard_tier:  # anchors-calibrated camera, clip lengths, room and query plans (vq3d.synth.hard)
        scene = hard.build_scene(rng(1), n_obj)
        cam = hard.camera(seed, scene_idx, conf["scale"])
        timing = clip_timing(conf, hard.clip_durations(rng(7), conf["clips_per_scene"], conf["scale"]))
    else:
        scene = build_scene(rng(1), n_obj)
        cam = fisheye_for(conf["width"], conf["height"], rng(2))
        timing = clip_timing(conf)
    W, H = cam.width, cam.height
    scan_uid, video_uid = layout.scan_uid(seed, scene_idx), layout.video_uid(seed, scene_idx)
    duration = timing[-1][1] + TRAIL_S
    clip_frames = {}  # source frame → (clip, clip frame)
    for c, (start, end) in enumerate(timing):
        # the frames stage's own count: Ego4D's, end frame included (video_end_frame below)
        for i in range(ego4d_count(start * fps, int(round(end * fps)), step)):
            clip_frames[start * fps + i * step] = (c, i)
    counts = [sum(1 for cc, _ in clip_frames.values() if cc == c) for c in range(len(timing))]
    plans = None
    if hard_tier:
        prng = rng(8)
        query_objs = [o for o in scene.objects if o.kind == "query"][:conf["queries_per_clip"]]
        plans = [hard.plan_queries(prng, counts[c], query_objs, cam, conf["scale"]) for c in range(len(timing))]
        visits, avoid = [], []
        for c, (start, _) in enumerate(timing):
            v, a = hard.sightings_plan(scene, plans[c], start)
            visits += v
            avoid += a
        poses = hard.trajectory(scene, rng(3), duration, fps, visits, avoid,
                                max_walk_s=2.0 if conf["scale"] == "full" else 0.5)
    else:
        poses = trajectory(scene, rng(3), duration, fps)
    renderer = FisheyeRenderer(scene, cam)
    boxes = [[] for _ in timing]
    nrng = rng(4)
    if hard_tier:
        res_scale = hard.SCALES[conf["scale"]][0]
        faults = hard.Faults(nrng, cam, poses, fps, res_scale)
        enc = _Encoder(root / layout.FILES["videos"] / f"{video_uid}.mp4", W, H, fps,
                       hard.encoder_args(W, H, fps, res_scale))
    else:
        noise_bank = [nrng.normal(0, NOISE_SIGMA, (H, W, 3)).astype(np.float32) for _ in range(7)]
        exposure = 1 + EXPOSURE_SWING * np.sin(np.arange(len(poses)) / fps * 2 * np.pi / nrng.uniform(6, 12) + nrng.uniform(0, 6))
        enc = _Encoder(root / layout.FILES["videos"] / f"{video_uid}.mp4", W, H, fps)
    progress = Progress(log, "rendered", len(poses), unit="frames", prefix=f"scene {scene_idx}")
    try:
        for k, pose in enumerate(poses):
            img, ids = renderer.render(pose)
            if hard_tier:
                enc.write(faults.apply(img, ids, k))  # hands also hide objects in `ids`
            else:
                frame = img.astype(np.float32) * np.float32(exposure[k]) + noise_bank[k % len(noise_bank)]
                enc.write(np.clip(frame, 0, 255).astype(np.uint8))
            if k in clip_frames:
                c, _ = clip_frames[k]
                boxes[c].append(object_boxes(ids, scene.objects, cam, pose))
            progress.set(k + 1)
        enc.close()
    except BaseException:
        enc.kill()
        raise
    progress.done()
    t0 = time.monotonic()
    n_views = write_scan(scene, scan_uid, root / layout.FILES["scans"] / scan_uid, conf["ref_views"])
    log.info("scene %d: scan %s written (%d reference views) in %.1f s", scene_idx, scan_uid, n_views,
             time.monotonic() - t0)
    # Per clip: ground truth files and the chosen queries.
    clips = []
    qrng = rng(6)
    for c, (start, end) in enumerate(timing):
        uid = layout.clip_uid(seed, scene_idx, c)
        n = len(boxes[c])
        src = [start * fps + i * step for i in range(n)]
        clip_poses = [poses[s] for s in src]
        gt = root / layout.FILES["gt"]
        write_gt_poses(gt, uid, clip_poses)
        write_gt_boxes(gt, uid, boxes[c])
        queries = []
        for qi, obj in enumerate([o for o in scene.objects if o.kind == "query"]):
            if len(queries) == conf["queries_per_clip"]:
                break
            if hard_tier:
                plan = next((p for p in plans[c] if p["object"] == obj.index), None)
                pick = None if plan is None else hard_choose_query(boxes[c], obj.index, W, plan)
            else:
                pick = choose_query(boxes[c], obj.index, W, qrng)
            if pick is None:
                continue
            q, (s, e), crop = pick
            queries.append({"object": obj.index, "query_frame": q, "response_track": [s, e], "visual_crop": crop,
                            "ann_1": annotation_3d(obj, qrng, False), "ann_2": annotation_3d(obj, qrng, True)})
            if hard_tier:  # what was drawn, beside what was rendered (benchmarks/hard_anchor_stats.py)
                queries[-1]["plan"] = {k: list(v) if isinstance(v, tuple) else v for k, v in plan.items()}
        if len(queries) < conf["queries_per_clip"]:
            log.warning("clip %s: only %d of %d queries have a valid response track", uid, len(queries), conf["queries_per_clip"])
        clips.append({"clip_uid": uid, "start": start, "end": end, "n": n, "source_frames": src, "queries": queries,
                      "boxes": boxes[c]})
    objects = [{"index": o.index, "title": o.title, "kind": o.kind, "twin": o.twin, "centre_scan": o.centre.tolist(),
                "centre_annotation": mp_to_annotation(o.centre).tolist(), "size": o.size.tolist(), "yaw": o.yaw}
               for o in scene.objects]
    titles = {o.index: o.title for o in scene.objects}
    log.info("scene %d: %d source frames, %d clips, %d objects", scene_idx, len(poses), len(clips), len(objects))
    if hard_tier:
        log.info("scene %d: motion blur median %.1f px, 95th pct %.1f px; exposure median %.1f ms", scene_idx,
                 np.median(faults.blur_px), np.percentile(faults.blur_px, 95), 1000 * np.median(faults.exposure_s))
    return {"scene": scene_idx, "video_uid": video_uid, "scan_uid": scan_uid, "intrinsics": cam.as_intrinsics(),
            "width": W, "height": H,
            "clips": clips, "objects": objects, "titles": titles}


def _write_annotations(root: Path, conf: dict, scenes: list[dict]) -> None:
    fps = conf["source_fps"]
    step = fps // CLIP_FPS
    vq3d = {"val": [], "test": []}
    vq2d = {"val": [], "test": []}
    mapping: dict = {}
    gt_clips, gt_queries, gt_objects, intrinsics = {}, [], {}, {}
    for sc in scenes:
        vuid, suid = sc["video_uid"], sc["scan_uid"]
        W, H = sc["width"], sc["height"]
        intrinsics[suid] = sc["intrinsics"]
        gt_objects[suid] = sc["objects"]
        v3 = {s: {"video_uid": vuid, "split": s, "scan_uid": suid, "clips": []} for s in ("val", "test")}
        v2 = {s: {"video_uid": vuid, "split": s, "clips": []} for s in ("val", "test")}
        mapping[vuid] = {}
        for cl in sc["clips"]:
            uid, start, end, n = cl["clip_uid"], cl["start"], cl["end"], cl["n"]
            vsf = start * fps
            gt_clips[uid] = {"video_uid": vuid, "scan_uid": suid, "video_start_sec": float(start), "video_end_sec": end,
                             "source_fps": fps, "clip_fps": CLIP_FPS, "n_frames": n, "source_frames": cl["source_frames"]}
            header = {"clip_uid": uid, "video_start_sec": float(start), "video_end_sec": float(end),
                      "video_start_frame": vsf, "video_end_frame": int(round(end * fps)), "clip_start_sec": 0,
                      "clip_end_sec": float(end - start), "clip_start_frame": 0,
                      "clip_end_frame": int(round((end - start) * fps)), "clip_fps": float(CLIP_FPS),
                      "annotation_complete": True, "source_clip_uid": uid}
            ann_uid = f"{uid}-a0"
            qs3 = {"val": {}, "test": {}}
            qs2 = {"val": {}, "test": {}}
            mapping[vuid][uid] = {"0": {}}
            for qi, q in enumerate(cl["queries"]):
                qid = str(qi + 1)
                title = sc["titles"][q["object"]]
                obj_boxes = [fb.get(q["object"]) for fb in cl["boxes"]]
                crop = box_entry(q["visual_crop"], obj_boxes[q["visual_crop"]]["bbox"], W, H, vsf, step)
                s, e = q["response_track"]
                track = [box_entry(f, obj_boxes[f]["bbox"], W, H, vsf, step) for f in range(s, e + 1)]
                base = {"is_valid": True, "errors": [], "warnings": [], "query_frame": q["query_frame"],
                        "query_video_frame": vsf + q["query_frame"] * step}
                qs2["val"][qid] = {**base, "object_title": title, "visual_crop": crop, "response_track": track}
                qs2["test"][qid] = {**base, "visual_crop": crop}
                qs3["val"][qid] = {"object_title": title, "3d_annotation_1": q["ann_1"], "3d_annotation_2": q["ann_2"]}
                qs3["test"][qid] = {}
                mapping[vuid][uid]["0"][qid] = {"ai": 0, "qset_id": qid}
                obj = sc["objects"][q["object"]]
                gt_queries.append({"clip_uid": uid, "video_uid": vuid, "scan_uid": suid, "annotation_index": 0,
                                   "query_set": qid, "object_index": q["object"], "object_title": title,
                                   "centre_scan": obj["centre_scan"], "centre_annotation": obj["centre_annotation"],
                                   "query_frame": q["query_frame"], "response_track": [s, e],
                                   "visual_crop_frame": q["visual_crop"],
                                   **({"plan": q["plan"]} if "plan" in q else {})})
            for split in ("val", "test"):
                v3[split]["clips"].append({"clip_uid": uid, "annotations": [{"query_sets": qs3[split], "annotation_uid": ann_uid}]})
                v2[split]["clips"].append({**header, "annotations": [{"warnings": [], "annotation_uid": ann_uid,
                                                                      "query_sets": qs2[split]}]})
        for split in ("val", "test"):
            vq3d[split].append(v3[split])
            vq2d[split].append(v2[split])
    meta = {"version": "1", "date": "synthetic", "manifest": "synthetic"}
    F = layout.FILES

    def path(name):
        return root / F[name]
    # Through the readers' checks and the writers: the generator writes only files the real
    # readers accept.
    for split, extra in (("val", {}), ("test", {"challenge": "ego4d_vq3d_challenge"})):
        doc = {**meta, **extra, "description": f"VQ3D annotations ({split})", "videos": vq3d[split]}
        write_vq3d(path(f"annotations_{split}"), vq3d_from_json(doc, path(f"annotations_{split}")))
    for split, desc in (("val", "VQ Annotations (val)"), ("test", "VQ Annotations (test) (test unannotated)")):
        doc = {**meta, "description": desc, "videos": vq2d[split]}
        write_queries(path(f"queries_{split}"), queries_from_json(doc, path(f"queries_{split}")))
    for split in ("val", "test"):
        write_mapping(path(f"mapping_{split}"), mapping_from_json(mapping, path(f"mapping_{split}")))
    write_intrinsics(path("intrinsics"), intrinsics_from_json(intrinsics, path("intrinsics")))
    write_gt_index(root / F["gt"], gt_clips, gt_queries, gt_objects)


def generate(out_dir, conf: dict | None = None, workers: int | None = None,
             resolutions: list[tuple[int, int]] | None = None) -> None:
    """Write the whole dataset to `out_dir`, which appears at once (built in a temp sibling).

    `resolutions`: (width, height) per scene, cycled (default: the conf's for every scene); each
    scene's video, camera, intrinsics key and boxes use its own."""
    conf = _conf(conf)
    if resolutions and conf["preset"] == "hard":
        raise InputError("synth.preset", "hard: resolutions come from the anchors' cameras, not `resolutions`")
    for w, h in resolutions or []:
        _conf({**conf, "width": w, "height": h})  # same checks as the conf's own resolution
    out_dir = Path(out_dir)
    ffmpeg_exe()  # no ffmpeg: fail now with the reason, not in a worker mid-render
    with atomic_dir(out_dir) as tmp:
        for sub in (layout.FILES["videos"], layout.FILES["scans"], f"{layout.FILES['gt']}/poses", f"{layout.FILES['gt']}/boxes"):
            (tmp / sub).mkdir(parents=True)
        sizes = resolutions or [(conf["width"], conf["height"])]
        jobs = [({**conf, "width": sizes[s % len(sizes)][0], "height": sizes[s % len(sizes)][1]}, s, str(tmp))
                for s in range(conf["scenes"])]
        workers = workers or min(conf["scenes"], os.cpu_count() or 1)
        if workers > 1:
            with ProcessPoolExecutor(workers) as pool:
                scenes = list(pool.map(_render_scene, jobs))
        else:
            scenes = [_render_scene(j) for j in jobs]
        _write_annotations(tmp, conf, scenes)
    log.info("synthetic dataset written to %s", out_dir)


def main(annotations, queries, intrinsics, videos, scans, gt, out_dir, conf, threads: int = -1) -> None:
    """Snakemake rule `synth`: generate into `out_dir` and check that every declared output exists;
    one worker process per scene, at most the job's `threads`."""
    generate(out_dir, conf, workers=min(conf["scenes"], threads) if threads > 0 else None)
    declared = [*(annotations if isinstance(annotations, (list, tuple)) else [annotations]), queries, intrinsics,
                *(videos if isinstance(videos, (list, tuple)) else [videos]), scans, gt]
    missing = [str(p) for p in declared if not Path(p).exists()]
    if missing:
        raise RuntimeError(f"synth generated {out_dir} but not the declared output(s): {', '.join(missing)}")


def add_arguments(parser: argparse.ArgumentParser) -> None:
    from . import replica

    parser.add_argument("--out", required=True, help="dataset folder to create (replaced if it exists)")
    parser.add_argument("--layout", choices=["synth", "ego4d"], default="synth",
                        help="synth: the demo's own layout; ego4d: laid out as the ego4d CLI, Ego4D's "
                             "and EgoLoc's repositories deliver the real data (docs/replica.md)")
    # Defaults depend on the layout (the ego4d replica is smaller: CI-sized); None = that default.
    parser.add_argument("--seed", type=int)
    parser.add_argument("--scenes", type=int)
    parser.add_argument("--clips-per-scene", type=int)
    parser.add_argument("--queries-per-clip", type=int)
    parser.add_argument("--width", type=int, help="--layout synth only")
    parser.add_argument("--height", type=int, help="--layout synth only")
    parser.add_argument("--source-fps", type=int, help="--layout synth only (the replica is 30 fps)")
    parser.add_argument("--clip-seconds", type=float)
    parser.add_argument("--preset", choices=["easy", "hard"], help="--layout synth only (schema: synth.preset)")
    parser.add_argument("--hard-scale", choices=["full", "ci"],
                        help="--preset hard only (schema: synth.scale; --scale is the replica's)")
    parser.add_argument("--workers", type=int, default=None, help="processes (default: one per scene, ≤ CPUs)")
    replica.add_arguments(parser)


def run(args: argparse.Namespace) -> None:
    if args.layout == "ego4d":
        from . import replica

        for name in ("width", "height", "source_fps", "preset", "hard_scale"):
            if getattr(args, name) is not None:
                raise InputError(f"synth --{name.replace('_', '-')}", "not an option of --layout ego4d "
                                 "(its videos are 30 fps at Ego4D's resolutions divided by --scale)")
        conf = {k: getattr(args, k) for k in replica.options() if getattr(args, k, None) is not None}
        replica.write_replica(args.out, conf, workers=args.workers)
        return
    options = {**vars(args), "scale": args.hard_scale}  # --scale is also the replica's option
    conf = {k: options[k] for k in _conf({}) if options.get(k) is not None}
    generate(args.out, conf, workers=args.workers)

