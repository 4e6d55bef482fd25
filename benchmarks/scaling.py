"""How each stage's cost grows with the clip (issue 17.1): one synthetic scene at 1440×1080 with a
real scan's RADIAL_FISHEYE calibration, clips of ~120, ~600 (and with --large ~2,400) frames, every
stage timed with its peak memory, incremental and global mapping side by side.

    python benchmarks/scaling.py [--sizes 120 600] [--large] [--width 1440 --height 1080]
        [--queries 4] [--mappers incremental global | --variant LABEL:key=value,... ...]
        [--skip detect pnp predict] [--stage-timeout S] [--work DIR] [--json FILE] [--synth-only]
    python benchmarks/scaling.py --from-json A.json B.json    # the table of earlier runs

Per size: `vq3d synth` renders one scene (1 clip of N/5 s, source 10 fps) through the camera of
scan `unict_Scooter mechanic_31` at 1440×1080 from the anchors' scan_to_intrinsics_egoloc.json
(f 712.8, k1 0.057, k2 0.002; scaled with the width at other sizes; the synth's own camera when the
anchors are absent — the table says which); then the stages run one by one, each in its own Python
process so that its peak RSS is its own (ru_maxrss; its largest child, e.g. ffmpeg, apart) and its
wall time excludes imports: frames (ffmpeg CPU decode), pose_sfm per variant (features / matching /
mapping from its sfm.json, pairs matched and verified from its database), register per variant,
PnP (independent of SfM: once), merge per variant, detect (all queries in one pass; per query =
stage / queries; and the clip's last query alone), predict per variant. Posing quality per variant: frames posed and median rotation / centre error against the
generator's ground truth. The JSON is rewritten after every stage, so a stopped run keeps what it
measured.

A variant is a pose configuration over the schema's defaults (by default the two mappers,
`incremental` and `global`); `--variant before:sfm_loop_pairs=exhaustive` measures the old
loop-closure pairs. Run it niced on a shared machine; the 2,400-frame size takes hours on 2 cores.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "workflow"))
ANCHOR_INTRINSICS = (REPO.parent / "shared" / "anchors" / "egoloc" / "data" / "precomputed"
                     / "scan_to_intrinsics_egoloc.json")
REAL_SCAN, REAL_RES = "unict_Scooter mechanic_31", (1440, 1080)
SOURCE_FPS = 10  # the smallest the synth allows: fewest rendered frames per clip frame


# ------------------------------------------------------------------------------ stages (child side)

def _real_camera(width: int, height: int):
    """The real scan's 1440×1080 fisheye, scaled to (width, height); None without the anchors."""
    if not ANCHOR_INTRINSICS.is_file():
        return None
    from vq3d.formats.intrinsics import lookup, read_intrinsics
    from vq3d.synth.camera import Fisheye

    real = lookup(read_intrinsics(ANCHOR_INTRINSICS), REAL_SCAN, *REAL_RES)
    s = width / REAL_RES[0]
    return Fisheye(width, height, f=real.f * s, cx=width / 2, cy=height / 2, k1=real.k1, k2=real.k2)


def stage_synth(spec: dict) -> dict:
    from vq3d.config import validate_config
    from vq3d.synth import generate as gen

    conf = validate_config({"synth": spec["synth"]})["synth"]
    cam = _real_camera(conf["width"], conf["height"])
    if cam is not None:  # the synth has no calibration switch: hand it the real camera
        gen.fisheye_for = lambda width, height, rng: cam
    gen.generate(spec["data"], conf, workers=1)
    return {"camera": "real" if cam is not None else "synth"}


def stage_render(spec: dict) -> dict:
    """--direct: the clip's frames (5 fps JPEGs), scan and ground truth without a video
    (benchmarks/pose_minisynth.py), through the real scan's camera."""
    sys.path.insert(0, str(REPO / "benchmarks"))
    from pose_minisynth import make_clip

    cam = _real_camera(spec["width"], spec["height"])
    info = make_clip(Path(spec["out"]), seed=spec["seed"], frames=spec["frames"], width=spec["width"],
                     height=spec["height"], camera=cam)
    (Path(spec["out"]) / "info.json").write_text(json.dumps(info))
    return {"camera": "real" if cam is not None else "synth", "count": spec["frames"]}


def stage_frames(spec: dict) -> dict:
    from vq3d import frames

    s = frames.main(spec["video"], spec["queries"], spec["frames"], spec["clip"], False,
                    spec["conf"]["frames"])
    return {"count": s["count"]}


def stage_detect(spec: dict) -> dict:
    from vq3d.detect import main
    from vq3d.formats.clip_detections import read_clip_detections

    from vq3d.detect.peaks import main as peaks_main

    scores = str(Path(spec["out"]).with_suffix(".scores.json"))
    main(spec["frames"], spec["queries"], scores, spec["clip"], spec["conf"]["detect"])
    peaks_main(scores, spec["out"], spec["clip"], spec["conf"]["detect"])  # seconds: timed with detect
    det = read_clip_detections(spec["out"])
    return {"queries": len(det.queries), "scored": sum(len(q.frames) for q in det.queries),
            "frames_read": max((len(q.frames) for q in det.queries), default=0)}


def stage_sfm(spec: dict) -> dict:
    from vq3d.pose import sfm

    import shutil

    import pycolmap

    if spec.get("features_db"):  # same frames and SIFT options: reuse the first variant's features
        def copy_features(database, image_dir, names, camera, conf):
            shutil.copyfile(spec["features_db"], database)
            db = pycolmap.Database.open(str(database))
            db.clear_matches()
            db.clear_two_view_geometries()
            db.close()
        sfm.extract = copy_features
    sfm.main(spec["frames"], spec["intrinsics"], spec["out"], spec["scan_uid"], spec["pose"])
    out = Path(spec["out"])
    info = json.loads((out / "sfm.json").read_text())
    db = pycolmap.Database.open(str(out / "database.db"))
    try:
        matched, verified = db.num_matched_image_pairs(), db.num_verified_image_pairs()
    finally:
        db.close()
    loops = out / "pairs.txt"  # the loop-closure pairs colmap_io.match_pairs matched
    return {"seconds": info["seconds"], "registered": sum(m["images"] for m in info["models"]),
            "largest": max((m["images"] for m in info["models"]), default=0),
            "models": len(info["models"]), "pairs_matched": matched, "pairs_verified": verified,
            "loop_pairs": len(loops.read_text().splitlines()) if loops.is_file() else 0}


def stage_register(spec: dict) -> dict:
    from vq3d.pose import register

    register.main(sfm_dir=spec["sfm"], out=spec["out"], scan_dir=spec["scan_dir"], conf=spec["pose"])
    return {}


def stage_pnp(spec: dict) -> dict:
    from vq3d.pose import pnp

    pnp.main(frames_dir=spec["frames"], intrinsics=spec["intrinsics"], out=spec["out"],
             scan_dir=spec["scan_dir"], scan_uid=spec["scan_uid"], conf=spec["pose"],
             sfm_dir=spec.get("sfm"))
    from vq3d.formats.pose_internal import read_pnp

    data = json.loads(Path(spec["out"]).read_text())
    return {"run": data["frames"] - sum(f["reason"].startswith("not run") for f in data["failed"]),
            "posed": len(read_pnp(spec["out"])[1])}
    return {}


def stage_merge(spec: dict) -> dict:
    from vq3d.pose import merge

    merge.main(frames_dir=spec["frames"], sfm_dir=spec["sfm"], registration=spec["registration"],
               pnp=spec["pnp"], poses=spec["poses"], summary=spec["summary"],
               scan_from_model=spec["scan_from_model"], clip_uid=spec["clip"], conf=spec["pose"])
    return {}


def stage_predict(spec: dict) -> dict:
    from vq3d.predict.stage import main

    main(spec["detections"], spec["poses"], spec["sfm"], spec["queries"], spec["intrinsics"],
         spec["out"], spec["clip"], spec["scan_uid"], spec["conf"]["predict"],
         scan_from_model=spec["scan_from_model"], scan_dir=spec["scan_dir"])
    return {}


STAGES = {name[6:]: fn for name, fn in globals().items() if name.startswith("stage_")}


MODULES = {"render": "vq3d.synth.render", "synth": "vq3d.synth.generate", "frames": "vq3d.frames", "detect": "vq3d.detect",
           "sfm": "vq3d.pose.sfm", "register": "vq3d.pose.register", "pnp": "vq3d.pose.pnp",
           "merge": "vq3d.pose.merge", "predict": "vq3d.predict.stage"}


def child(name: str, spec_file: str) -> None:
    import importlib
    import logging
    logging.basicConfig(level=logging.WARNING, format="%(name)s: %(message)s")
    spec = json.loads(Path(spec_file).read_text())
    importlib.import_module(MODULES[name])  # imports are not the stage's cost
    t0 = time.perf_counter()
    out = STAGES[name](spec)
    out["wall_s"] = time.perf_counter() - t0
    out["peak_rss_mb"] = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    # The largest child process (ffmpeg for frames): a job's memory limit counts it too.
    out["peak_rss_children_mb"] = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024
    print("RESULT " + json.dumps(out), flush=True)


# ------------------------------------------------------------------------------ driver

def run_stage(name: str, spec: dict, work: Path, timeout: float | None = None,
              script: str = __file__) -> dict:
    """Stage `name` of `script` in a child process: its result, wall_s and peak_rss_mb; with a
    `timeout`, {"timeout_s": timeout} when it ran out of time."""
    spec_file = work / f"spec-{name}-{len(list(work.glob('spec-*')))}.json"
    spec_file.write_text(json.dumps(spec, default=str))
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(
        [str(REPO / "workflow"), *filter(None, [os.environ.get("PYTHONPATH")])])}
    try:
        proc = subprocess.run([sys.executable, script, "--stage", name, spec_file], env=env,
                              capture_output=True, text=True, timeout=timeout)
    except subprocess.TimeoutExpired:
        print(f"  {name}: out of time after {timeout:.0f} s", file=sys.stderr, flush=True)
        return {"timeout_s": timeout}
    lines = [ln for ln in proc.stdout.splitlines() if ln.startswith("RESULT ")]
    if proc.returncode != 0 or not lines:
        raise RuntimeError(f"stage {name} failed ({proc.returncode}):\n{proc.stderr[-3000:]}")
    result = json.loads(lines[-1][7:])
    print(f"  {name}: {result['wall_s']:.1f} s, {result['peak_rss_mb']:.0f} MB", file=sys.stderr, flush=True)
    return result


def pose_quality(poses: Path, gt: Path, clip: str) -> dict:
    """Frames posed, median rotation and centre error; `gt`: EgoLoc pose JSON or N×3×4 .npy."""
    import numpy as np

    from vq3d import geometry
    from vq3d.formats.poses import read_poses

    est = read_poses(poses)[clip]
    ref = np.load(gt) if str(gt).endswith(".npy") else read_poses(gt)[clip].cam_from_world
    rot, cen = [], []
    for i in np.flatnonzero(est.good):
        a, b = geometry.rigid(est.cam_from_world[i]), geometry.rigid(ref[i])
        rot.append(geometry.rotation_error_deg(a, b))
        cen.append(float(np.linalg.norm(geometry.camera_centre(a) - geometry.camera_centre(b))))
    return {"posed_pct": 100.0 * float(np.mean(est.good)),
            "rot_med_deg": statistics.median(rot) if rot else None,
            "centre_med_cm": 100 * statistics.median(cen) if cen else None}


def parse_variant(text: str) -> tuple[str, dict]:
    """`LABEL[:key=value,...]`: a pose configuration to run (values parsed as YAML scalars)."""
    import yaml

    label, _, rest = text.partition(":")
    over = {}
    for item in filter(None, rest.split(",")):
        key, eq, value = item.partition("=")
        if not eq:
            raise SystemExit(f"--variant {text!r}: expected key=value, got {item!r}")
        over[key.strip()] = yaml.safe_load(value)
    return label, over


def measure(n_frames: int, args, work: Path, save=lambda res: None) -> dict:
    """Every stage of one size; `save(res)` after each so a stopped run keeps its figures."""
    from vq3d.config import validate_config

    root = work / (f"n{n_frames}" if not args.direct else f"direct{n_frames}_{args.width}x{args.height}")
    root.mkdir(parents=True, exist_ok=True)
    synth = {"seed": args.seed, "scenes": 1, "clips_per_scene": 1, "queries_per_clip": args.queries,
             "width": args.width, "height": args.height, "source_fps": SOURCE_FPS,
             "clip_seconds": n_frames / 5}
    conf = validate_config({"synth": synth})
    data = root / "data"
    res = {"n_target": n_frames, "stages": {}, "variants": [v for v, _ in args.variants]}
    st = res["stages"]
    print(f"size {n_frames}:", file=sys.stderr)
    if args.direct:
        clip_dir = root / "clip"
        if not (clip_dir / "info.json").is_file():  # --synth-only renders it too
            st["render"] = run_stage("render", {"out": str(clip_dir), "frames": n_frames, "width": args.width,
                                                "height": args.height, "seed": args.seed}, root)
    elif not (data / "gt" / "clips.json").is_file():
        st["synth"] = run_stage("synth", {"synth": synth, "data": str(data)}, root)
        (root / "synth.json").write_text(json.dumps(st["synth"]))
    elif (root / "synth.json").is_file():  # rendered by an earlier (e.g. --synth-only) run
        st["synth"] = json.loads((root / "synth.json").read_text())
    if args.synth_only:
        return res
    timeout = args.stage_timeout

    def stage(key, name, spec):
        if name in args.skip:
            return None
        st[key] = run_stage(name, spec, root, timeout=timeout)
        save(res)
        return None if "timeout_s" in st[key] else st[key]

    if args.direct:  # frames rendered straight to JPEG: no video, no queries
        info = json.loads((clip_dir / "info.json").read_text())
        clip = "direct"
        common = {"clip": clip, "conf": conf, "pose": conf["pose"],
                  "intrinsics": str(clip_dir / "intrinsics.json"), "scan_uid": info["scan_uid"],
                  "scan_dir": str(clip_dir / "scan"), "frames": str(clip_dir / "frames")}
        res["n_frames"] = n_frames
        gt_poses = clip_dir / "gt_cam_from_world.npy"
        args.skip = [*args.skip, "detect", "predict"]
    else:
        clip, ref = next(iter(json.loads((data / "gt" / "clips.json").read_text()).items()))
        common = {"clip": clip, "queries": str(data / "vq_val_vq3d.json"), "conf": conf,
                  "pose": conf["pose"], "intrinsics": str(data / "scan_to_intrinsics.json"),
                  "scan_uid": ref["scan_uid"], "scan_dir": str(data / "scans" / ref["scan_uid"]),
                  "frames": str(root / "frames")}
        if stage("frames", "frames", {**common, "video": str(data / "videos" / f"{ref['video_uid']}.mp4")}) is None:
            raise SystemExit("frames failed or skipped: nothing else can run")
        res["n_frames"] = st["frames"]["count"]
        gt_poses = data / "gt" / "poses" / f"{clip}.json"
    res["quality"] = {}
    posed = {}
    from vq3d.stages import CONFIG_READS

    sift_keys = ("sift_max_side", "sift_max_features", "sift_first_octave")
    sfm_keys = CONFIG_READS["pose_sfm"][1] + CONFIG_READS["pose_register"][1]
    features_of: dict[tuple, str] = {}  # SIFT options -> the variant whose database has them
    sfm_of: dict[tuple, str] = {}       # SfM + registration options -> the variant that ran them
    for label, over in args.variants if "sfm" not in args.skip else []:  # SfM first: what this is about
        m = root / label
        m.mkdir(exist_ok=True)
        pose = {**conf["pose"], **over}
        same = sfm_of.get(tuple(pose[k] for k in sfm_keys))
        if same is not None:  # only later stages differ: its SfM and registration are this one's
            st[f"sfm_{label}"] = {**st[f"sfm_{same}"], "same_as": same}
            st[f"register_{label}"] = st[f"register_{same}"]
            posed[label] = (m, pose, posed[same][2])
            continue
        sift = tuple(pose[k] for k in sift_keys)
        src = features_of.get(sift)
        spec = {**common, "pose": pose, "out": str(m / "sfm")}
        if src is not None:
            spec["features_db"] = str(root / src / "sfm" / "database.db")
        if stage(f"sfm_{label}", "sfm", spec) is None:
            continue
        if src is not None:
            st[f"sfm_{label}"]["features_from"] = src
        else:
            features_of[sift] = label
        if stage(f"register_{label}", "register", {**common, "pose": pose, "sfm": str(m / "sfm"),
                                                    "out": str(m / "registration.json")}) is not None:
            posed[label] = (m, pose, m)
            sfm_of[tuple(pose[k] for k in sfm_keys)] = label
    for label, (m, pose, sm) in posed.items():
        # PnP on every frame does not depend on SfM: once per size; with a check stride per variant.
        key = "pnp" if int(pose["pnp_check_stride"]) <= 1 else f"pnp_{label}"
        pnp_file = root / "pnp.json" if key == "pnp" else m / "pnp.json"
        if key not in st and stage(key, "pnp", {**common, "pose": pose, "sfm": str(sm / "sfm"),
                                                "out": str(pnp_file)}) is None:
            continue
        if _get(st, key) is None or stage(f"merge_{label}", "merge", {
                **common, "pose": pose, "sfm": str(sm / "sfm"), "registration": str(sm / "registration.json"),
                "pnp": str(pnp_file), "poses": str(m / "poses.json"),
                "summary": str(m / "summary.json"), "scan_from_model": str(m / "scan_from_model.json")}) is None:
            continue
        st[f"pnp_of_{label}"] = key
        res["quality"][label] = pose_quality(m / "poses.json", gt_poses, clip)
        save(res)
    detected = stage("detect", "detect", {**common, "out": str(root / "detect.json")})
    if detected is not None and st["detect"]["queries"] > 1:
        # The same pass with the clip's last query alone: what one more query costs (the frames
        # read stay those before the last query frame).
        one = root / "queries_last.json"
        one.write_text(json.dumps(last_query_only(json.loads(Path(common["queries"]).read_text()))))
        stage("detect_one", "detect", {**common, "queries": str(one), "out": str(root / "detect_one.json")})
    if detected is not None:
        for label in res["quality"]:
            m = root / label
            stage(f"predict_{label}", "predict", {**common, "detections": str(root / "detect.json"),
                                                   "poses": str(m / "poses.json"),
                                                   "sfm": str(posed[label][2] / "sfm"),
                                                   "scan_from_model": str(m / "scan_from_model.json"),
                                                   "out": str(m / "predict.json")})
    return res


def last_query_only(annotations: dict) -> dict:
    """The Ego4D query file with only its latest query (by query frame) left in."""
    sets = [qs for v in annotations["videos"] for c in v["clips"] for a in c["annotations"]
            for qs in a["query_sets"].values()]
    keep = max(sets, key=lambda qs: qs["query_frame"])
    for v in annotations["videos"]:
        for c in v["clips"]:
            for a in c["annotations"]:
                a["query_sets"] = {k: qs for k, qs in a["query_sets"].items() if qs is keep}
    return annotations


# ------------------------------------------------------------------------------ table

def _get(st: dict, key: str, field: str = "wall_s"):
    v = st.get(key)
    return None if v is None or "timeout_s" in v else v.get(field)


def _peak(st: dict, key: str):
    """Peak MB of a stage: its process plus its largest child (ffmpeg), where recorded."""
    mb = _get(st, key, "peak_rss_mb")
    return None if mb is None else mb + st[key].get("peak_rss_children_mb", 0.0)


def _sfm_wall(st: dict, v: str):
    """SfM wall seconds of variant v, with the feature extraction it reused from another variant
    counted at that variant's time (the pipeline always extracts)."""
    s = st.get(f"sfm_{v}")
    if s is None or "timeout_s" in s:
        return None
    src = s.get("features_from")
    if src is None:
        return s["wall_s"]
    return s["wall_s"] - s["seconds"]["features"] + st[f"sfm_{src}"]["seconds"]["features"]


def rows_of(res: dict, variants) -> list[tuple[str, float | None, float | None, str]]:
    """(stage, seconds or None, peak MB or None, note) rows of one size."""
    st, out = res["stages"], []
    out.append(("frames (ffmpeg CPU decode)", _get(st, "frames"), _peak(st, "frames"), ""))
    d = st.get("detect") if _get(st, "detect") is not None else None
    out.append((f"detect, all {d['queries'] if d else '?'} queries in one pass", d and d["wall_s"],
                _peak(st, "detect"), f"{d['frames_read'] / d['wall_s']:.2f} frames/s" if d else ""))
    out.append(("detect per query", d and d["wall_s"] / max(d["queries"], 1), None, ""))
    one = _get(st, "detect_one")
    out.append(("detect, the last query alone", one, _peak(st, "detect_one"),
                f"each other query adds {(d['wall_s'] - one) / (d['queries'] - 1):.1f} s"
                if d and one is not None and d["queries"] > 1 else ""))
    for v in variants:
        s = st.get(f"sfm_{v}") if _get(st, f"sfm_{v}") is not None else None
        sec = s["seconds"] if s else {}
        src = s and s.get("features_from")
        out.append((f"SfM features ({v})", st[f"sfm_{src}"]["seconds"]["features"] if src else sec.get("features"),
                    None, f"as {src} (its database reused)" if src else ""))
        out.append((f"SfM matching ({v})", sec.get("matching"), None,
                    f"{s['pairs_matched']} pairs ({s['loop_pairs']} loop), {s['pairs_verified']} verified"
                    if s and "pairs_matched" in s else ""))
        out.append((f"SfM mapping ({v})", sec.get("mapping"), _peak(st, f"sfm_{v}"),
                    f"{s['registered']} images in {s['models']} model(s)" if s else ""))
        out.append((f"registration ({v})", _get(st, f"register_{v}"),
                    _peak(st, f"register_{v}"), ""))
    for key in [k for k in st if k == "pnp" or (k.startswith("pnp_") and not k.startswith("pnp_of_"))]:
        p = st[key] if _get(st, key) is not None else None
        users = [v for v in variants if st.get(f"pnp_of_{v}") == key]
        out.append((f"PnP ({', '.join(users) or key})", p and p["wall_s"], _peak(st, key),
                    f"{p['run']} frames run, {p['posed']} posed" if p and "run" in p else ""))
    for v in variants:
        out.append((f"merge ({v})", _get(st, f"merge_{v}"), _peak(st, f"merge_{v}"), ""))
        out.append((f"predict ({v})", _get(st, f"predict_{v}"), _peak(st, f"predict_{v}"), ""))
    for v in variants:
        pk = st.get(f"pnp_of_{v}", "pnp")
        parts = [_sfm_wall(st, v), *(_get(st, k) for k in (f"register_{v}", pk, f"merge_{v}"))]
        mbs = [_peak(st, k) for k in (f"sfm_{v}", f"register_{v}", pk, f"merge_{v}")]
        q = res.get("quality", {}).get(v)
        note = (f"posed {q['posed_pct']:.1f} %, rot {_f(q['rot_med_deg'], '.2f')}°, "
                f"centre {_f(q['centre_med_cm'], '.1f')} cm" if q else "")
        out.append((f"**pose total, {v}** (SfM + registration + PnP + merge)",
                    None if None in parts else sum(parts),
                    None if None in mbs else max(mbs), note))
        sfm_parts = parts[:2]
        out.append((f"pose without PnP, {v} (SfM + registration)",
                    None if None in sfm_parts else sum(sfm_parts), None, ""))
    return out


def merged(results: list[dict]) -> list[dict]:
    """Runs of one clip size (e.g. another variant measured later) as one column: the stages and
    qualities of each, the earlier file's where both have one (frames, detect)."""
    by_size: dict[int, dict] = {}
    for r in results:
        n = r.get("n_frames", r["n_target"])
        if n not in by_size:
            by_size[n] = {**r, "stages": dict(r["stages"]), "quality": dict(r.get("quality", {})),
                          "variants": list(r.get("variants", []))}
            continue
        m = by_size[n]
        for key, value in r["stages"].items():
            m["stages"].setdefault(key, value)
        for key, value in r.get("quality", {}).items():
            m["quality"].setdefault(key, value)
        m["variants"] += [v for v in r.get("variants", []) if v not in m["variants"]]
    return [by_size[n] for n in sorted(by_size)]


def _f(v, spec):
    return "—" if v is None else format(v, spec)


def table(results: list[dict], variants) -> str:
    results = [r for r in results if "n_frames" in r]
    sizes = [r["n_frames"] for r in results]
    head = "| stage | " + " | ".join(f"{n} frames: s | ms/frame | peak MB" for n in sizes)
    growth = list(zip(sizes, sizes[1:]))
    head += "".join(f" | per-frame growth {a}→{b}" for a, b in growth)
    lines = [head + " | notes |", "|" + " --- |" * (head.count("|") + 1)]
    # Rows by label: sizes may have different rows (a stage that ran out of time at one size).
    per = [{row[0]: row for row in rows_of(r, variants)} for r in results]
    labels = list(dict.fromkeys(label for rows in per for label in rows))
    empty = (None, None, None, "")
    for stage in labels:
        cells = []
        for rows, n in zip(per, sizes):
            _, s, mb, _ = rows.get(stage, (stage, *empty[1:]))
            cells.append(f"{_f(s, '.1f')} | {_f(s and 1000 * s / n, '.0f')} | {_f(mb, '.0f')}")
        line = f"| {stage} | " + " | ".join(cells)
        for (a, b), ra, rb in zip(growth, per, per[1:]):
            sa, sb = ra.get(stage, empty)[1], rb.get(stage, empty)[1]
            line += f" | {(sb / b) / (sa / a):.2f}×" if sa and sb else " | —"
        notes = "; ".join(f"{n}: {rows[stage][3]}" for rows, n in zip(per, sizes)
                          if stage in rows and rows[stage][3])
        lines.append(line + f" | {notes} |")
    return "\n".join(lines)


def main(argv=None) -> int:
    if argv is None and len(sys.argv) > 1 and sys.argv[1] == "--stage":
        child(sys.argv[2], sys.argv[3])
        return 0
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--sizes", type=int, nargs="+", default=[120, 600], help="clip frames (5 fps)")
    ap.add_argument("--large", action="store_true", help="add the ~2,400-frame clip (hours on 2 cores)")
    ap.add_argument("--width", type=int, default=1440)
    ap.add_argument("--height", type=int, default=1080)
    ap.add_argument("--queries", type=int, default=4)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--mappers", nargs="+", default=["incremental", "global"],
                    choices=["incremental", "global"], help="shorthand for --variant MAPPER:sfm_mapper=MAPPER")
    ap.add_argument("--variant", action="append", default=[], metavar="LABEL[:key=value,...]",
                    help="a pose configuration over the defaults, e.g. before:sfm_loop_pairs=exhaustive "
                         "(repeatable; replaces --mappers)")
    ap.add_argument("--skip", nargs="+", default=[], choices=["sfm", "detect", "pnp", "predict"],
                    help="stages not to run (their rows show —)")
    ap.add_argument("--stage-timeout", type=float, help="seconds per stage; a stage past it is recorded as such")
    ap.add_argument("--work", help="scratch folder (default: a temp dir); a size already generated is reused")
    ap.add_argument("--json", help="write the raw figures here")
    ap.add_argument("--direct", action="store_true",
                    help="render the clip frames straight to JPEG at 5 fps (benchmarks/pose_minisynth.py: "
                         "its small scan, no video, no queries): the pose stages only, at a fraction "
                         "of the synth's rendering time")
    ap.add_argument("--synth-only", action="store_true",
                    help="only render the scenes into --work (a later run reuses them)")
    ap.add_argument("--from-json", nargs="+", metavar="FILE",
                    help="print the table of earlier --json files (sizes side by side) and exit")
    args = ap.parse_args(argv)
    if args.from_json:
        results = merged([r for f in args.from_json for r in json.loads(Path(f).read_text())])
        variants = list(dict.fromkeys(v for r in results for v in r.get("variants", [])))
        print(table(results, variants))
        return 0
    args.variants = ([parse_variant(v) for v in args.variant] if args.variant
                     else [(m, {"sfm_mapper": m}) for m in args.mappers])
    sizes = sorted(set(args.sizes + ([2400] if args.large else [])))
    work = Path(args.work or tempfile.mkdtemp(prefix="vq3d-scaling."))
    results = []
    t0 = time.perf_counter()
    def save(res):
        if args.json:
            Path(args.json).write_text(json.dumps([*results, res] if res is not None else results, indent=1))

    for n in sizes:
        results.append(measure(n, args, work, save))
        save(None)
    if args.synth_only:
        return 0
    cam = results[0]["stages"].get("synth", {}).get("camera", "?")
    print(f"\n{args.width}×{args.height}, camera: "
          f"{'real ' + REAL_SCAN + ' fisheye' if cam == 'real' else 'the synth camera' if cam == 'synth' else cam}"
          f", {os.cpu_count()} CPUs, load avg {os.getloadavg()[0]:.1f} at the end, "
          f"{time.perf_counter() - t0:.0f} s in all\n")
    print(table(results, [v for v, _ in args.variants]))
    return 0


if __name__ == "__main__":
    sys.exit(main())
