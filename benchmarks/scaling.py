"""How each stage's cost grows with the clip (issue 17.1): one synthetic scene at 1440×1080 with a
real scan's RADIAL_FISHEYE calibration, clips of ~120, ~600 (and with --large ~2,400) frames, every
stage timed with its peak memory, incremental and global mapping side by side.

    python benchmarks/scaling.py [--sizes 120 600] [--large] [--width 1440 --height 1080]
        [--queries 4] [--mappers incremental global] [--work DIR] [--json FILE]

Per size: `vq3d synth` renders one scene (1 clip of N/5 s, source 10 fps) through the camera of
scan `unict_Scooter mechanic_31` at 1440×1080 from the anchors' scan_to_intrinsics_egoloc.json
(f 712.8, k1 0.057, k2 0.002; scaled with the width at other sizes; the synth's own camera when the
anchors are absent — the table says which); then the stages run one by one, each in its own Python
process so that its peak RSS is its own (ru_maxrss) and its wall time excludes imports: frames
(ffmpeg CPU decode), detect (all queries in one pass; per query = stage / queries), pose_sfm per
mapper (features / matching / mapping from its sfm.json), register per mapper, PnP (independent of
SfM: once), merge per mapper, predict per mapper. Posing quality per mapper: frames posed and
median rotation / centre error against the generator's ground truth.

The configuration is the schema's defaults (the repository's pipeline as it is); nothing here
changes an algorithm. Run it niced on a shared machine; the 2,400-frame size takes hours on 2 cores.
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


def stage_frames(spec: dict) -> dict:
    from vq3d import frames

    s = frames.main(spec["video"], spec["queries"], spec["frames"], spec["clip"], False,
                    spec["conf"]["frames"])
    return {"count": s["count"]}


def stage_detect(spec: dict) -> dict:
    from vq3d.detect import main
    from vq3d.formats.clip_detections import read_clip_detections

    main(spec["frames"], spec["queries"], spec["out"], spec["clip"], spec["conf"]["detect"])
    det = read_clip_detections(spec["out"])
    return {"queries": len(det.queries), "scored": sum(len(q.frames) for q in det.queries),
            "frames_read": max((len(q.frames) for q in det.queries), default=0)}


def stage_sfm(spec: dict) -> dict:
    from vq3d.pose import sfm

    sfm.main(spec["frames"], spec["intrinsics"], spec["out"], spec["scan_uid"], spec["pose"])
    info = json.loads((Path(spec["out"]) / "sfm.json").read_text())
    return {"seconds": info["seconds"], "registered": sum(m["images"] for m in info["models"]),
            "models": len(info["models"])}


def stage_register(spec: dict) -> dict:
    from vq3d.pose import register

    register.main(sfm_dir=spec["sfm"], out=spec["out"], scan_dir=spec["scan_dir"], conf=spec["pose"])
    return {}


def stage_pnp(spec: dict) -> dict:
    from vq3d.pose import pnp

    pnp.main(frames_dir=spec["frames"], intrinsics=spec["intrinsics"], out=spec["out"],
             scan_dir=spec["scan_dir"], scan_uid=spec["scan_uid"], conf=spec["pose"])
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
         scan_from_model=spec["scan_from_model"])
    return {}


STAGES = {name[6:]: fn for name, fn in globals().items() if name.startswith("stage_")}


MODULES = {"synth": "vq3d.synth.generate", "frames": "vq3d.frames", "detect": "vq3d.detect",
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
    import numpy as np

    from vq3d.formats.poses import read_poses
    from vq3d import geometry

    est, ref = read_poses(poses)[clip], read_poses(gt)[clip]
    rot, cen = [], []
    for i in np.flatnonzero(est.good):
        a, b = geometry.rigid(est.cam_from_world[i]), geometry.rigid(ref.cam_from_world[i])
        rot.append(geometry.rotation_error_deg(a, b))
        cen.append(float(np.linalg.norm(geometry.camera_centre(a) - geometry.camera_centre(b))))
    return {"posed_pct": 100.0 * float(np.mean(est.good)),
            "rot_med_deg": statistics.median(rot) if rot else None,
            "centre_med_cm": 100 * statistics.median(cen) if cen else None}


def measure(n_frames: int, args, work: Path) -> dict:
    from vq3d.config import validate_config

    root = work / f"n{n_frames}"
    root.mkdir(parents=True, exist_ok=True)
    synth = {"seed": args.seed, "scenes": 1, "clips_per_scene": 1, "queries_per_clip": args.queries,
             "width": args.width, "height": args.height, "source_fps": SOURCE_FPS,
             "clip_seconds": n_frames / 5}
    conf = validate_config({"synth": synth})
    data = root / "data"
    res = {"n_target": n_frames, "stages": {}}
    st = res["stages"]
    print(f"size {n_frames}:", file=sys.stderr)
    if not (data / "gt" / "clips.json").is_file():
        st["synth"] = run_stage("synth", {"synth": synth, "data": str(data)}, root)
    clip, ref = next(iter(json.loads((data / "gt" / "clips.json").read_text()).items()))
    common = {"clip": clip, "queries": str(data / "vq_val_vq3d.json"), "conf": conf,
              "pose": conf["pose"], "intrinsics": str(data / "scan_to_intrinsics.json"),
              "scan_uid": ref["scan_uid"], "scan_dir": str(data / "scans" / ref["scan_uid"]),
              "frames": str(root / "frames")}
    st["frames"] = run_stage("frames", {**common, "video": str(data / "videos" / f"{ref['video_uid']}.mp4")}, root)
    res["n_frames"] = st["frames"]["count"]
    st["detect"] = run_stage("detect", {**common, "out": str(root / "detect.json")}, root)
    st["pnp"] = run_stage("pnp", {**common, "out": str(root / "pnp.json")}, root)
    res["quality"] = {}
    for mapper in args.mappers:
        m = root / mapper
        m.mkdir(exist_ok=True)
        pose = {**conf["pose"], "sfm_mapper": mapper}
        st[f"sfm_{mapper}"] = run_stage("sfm", {**common, "pose": pose, "out": str(m / "sfm")}, root)
        st[f"register_{mapper}"] = run_stage("register", {**common, "pose": pose, "sfm": str(m / "sfm"),
                                                          "out": str(m / "registration.json")}, root)
        st[f"merge_{mapper}"] = run_stage("merge", {**common, "pose": pose, "sfm": str(m / "sfm"),
                                                    "registration": str(m / "registration.json"),
                                                    "pnp": str(root / "pnp.json"), "poses": str(m / "poses.json"),
                                                    "summary": str(m / "summary.json"),
                                                    "scan_from_model": str(m / "scan_from_model.json")}, root)
        st[f"predict_{mapper}"] = run_stage("predict", {**common, "detections": str(root / "detect.json"),
                                                        "poses": str(m / "poses.json"), "sfm": str(m / "sfm"),
                                                        "scan_from_model": str(m / "scan_from_model.json"),
                                                        "out": str(m / "predict.json")}, root)
        res["quality"][mapper] = pose_quality(m / "poses.json", data / "gt" / "poses" / f"{clip}.json", clip)
    return res


# ------------------------------------------------------------------------------ table

def rows_of(res: dict, mappers) -> list[tuple[str, float, float | None, str]]:
    """(stage, seconds, peak MB or None, note) rows of one size."""
    st, out = res["stages"], []
    d = st["detect"]
    out.append(("frames (ffmpeg CPU decode)", st["frames"]["wall_s"], st["frames"]["peak_rss_mb"], ""))
    out.append((f"detect, all {d['queries']} queries in one pass", d["wall_s"], d["peak_rss_mb"],
                f"{d['frames_read'] / d['wall_s']:.1f} frames/s"))
    out.append(("detect per query", d["wall_s"] / max(d["queries"], 1), None, ""))
    for mapper in mappers:
        s = st[f"sfm_{mapper}"]
        out.append((f"SfM features ({mapper} run)", s["seconds"]["features"], None, ""))
        out.append((f"SfM matching ({mapper} run)", s["seconds"]["matching"], None, ""))
        out.append((f"SfM mapping, {mapper}", s["seconds"]["mapping"], s["peak_rss_mb"],
                    f"{s['registered']} images in {s['models']} model(s)"))
        out.append((f"registration ({mapper})", st[f"register_{mapper}"]["wall_s"],
                    st[f"register_{mapper}"]["peak_rss_mb"], ""))
    out.append(("PnP", st["pnp"]["wall_s"], st["pnp"]["peak_rss_mb"], ""))
    for mapper in mappers:
        out.append((f"merge ({mapper})", st[f"merge_{mapper}"]["wall_s"], st[f"merge_{mapper}"]["peak_rss_mb"], ""))
        out.append((f"predict ({mapper})", st[f"predict_{mapper}"]["wall_s"],
                    st[f"predict_{mapper}"]["peak_rss_mb"], ""))
    for mapper in mappers:
        pose = (st[f"sfm_{mapper}"]["wall_s"] + st[f"register_{mapper}"]["wall_s"] + st["pnp"]["wall_s"]
                + st[f"merge_{mapper}"]["wall_s"])
        q = res["quality"][mapper]
        note = (f"posed {q['posed_pct']:.1f} %, rot {_f(q['rot_med_deg'], '.2f')}°, "
                f"centre {_f(q['centre_med_cm'], '.1f')} cm")
        out.append((f"**pose total, {mapper}** (SfM + registration + PnP + merge)", pose, None, note))
    return out


def _f(v, spec):
    return "—" if v is None else format(v, spec)


def table(results: list[dict], mappers) -> str:
    sizes = [r["n_frames"] for r in results]
    head = "| stage | " + " | ".join(f"{n} frames: s | ms/frame | peak MB" for n in sizes)
    if len(sizes) > 1:
        head += f" | per-frame growth {sizes[0]}→{sizes[-1]}"
    lines = [head + " | notes |", "|" + " --- |" * (head.count("|") + 1)]
    per = [rows_of(r, mappers) for r in results]
    for i, (stage, *_rest) in enumerate(per[0]):
        cells = []
        for rows, n in zip(per, sizes):
            _, s, mb, _ = rows[i]
            cells.append(f"{s:.1f} | {1000 * s / n:.0f} | {_f(mb, '.0f')}")
        line = f"| {stage} | " + " | ".join(cells)
        if len(sizes) > 1:
            a, b = per[0][i][1] / sizes[0], per[-1][i][1] / sizes[-1]
            line += f" | {b / a:.2f}×" if a > 0 else " | —"
        notes = "; ".join(f"{n}: {rows[i][3]}" for rows, n in zip(per, sizes) if rows[i][3])
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
                    choices=["incremental", "global"])
    ap.add_argument("--work", help="scratch folder (default: a temp dir); a size already generated is reused")
    ap.add_argument("--json", help="write the raw figures here")
    args = ap.parse_args(argv)
    sizes = sorted(set(args.sizes + ([2400] if args.large else [])))
    work = Path(args.work or tempfile.mkdtemp(prefix="vq3d-scaling."))
    results = []
    t0 = time.perf_counter()
    for n in sizes:
        results.append(measure(n, args, work))
        if args.json:
            Path(args.json).write_text(json.dumps(results, indent=1))
    cam = results[0]["stages"].get("synth", {}).get("camera", "?")
    print(f"\n{args.width}×{args.height}, camera: "
          f"{'real ' + REAL_SCAN + ' fisheye' if cam == 'real' else 'the synth camera' if cam == 'synth' else cam}"
          f", {os.cpu_count()} CPUs, load avg {os.getloadavg()[0]:.1f} at the end, "
          f"{time.perf_counter() - t0:.0f} s in all\n")
    print(table(results, args.mappers))
    return 0


if __name__ == "__main__":
    sys.exit(main())
