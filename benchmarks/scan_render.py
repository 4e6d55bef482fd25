"""The scan_refs renderer, measured: speed, depth accuracy and what PnP gets from its views.

For each seed: the mini pose clip's room (benchmarks/pose_minisynth.py) is exported as a MatterPak
(vq3d.synth.matterpak: textured OBJ + MTL + JPEG textures), `vq3d.scan.refs.main` renders its
reference views and geo renders with pyrender (headless EGL; OSMesa too where libosmesa6 is
installed), and we report
- load / viewpoint planning / rendering times and ms per 640×480 view;
- depth error of the rendered views against the synthetic scene's own analytic renderer at the
  same poses (median and 95th percentile of |Δz| over pixels both see);
- PnP (vq3d.pose.pnp) of the clip's fisheye frames against the rendered views: frames posed,
  median/max rotation and centre error against the ground truth, and the same with the analytic
  reference views the synthetic scan brings, as the baseline.

    python benchmarks/scan_render.py [--seeds 1 4] [--frames 30] [--gl egl osmesa] [--out FILE]

`--speed GRID` instead measures render speed alone at scale: seed 1's room re-meshed with every
quad a GRID×GRID grid of cells (28: ~0.5M triangles; textures up to 2048 px), 20 views at
640×480 and at the 1/8 probe size, per GL in `--gl`.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))


def pnp_errors(pnp_json: Path, gt: np.ndarray) -> dict:
    from vq3d import geometry
    res = json.loads(pnp_json.read_text())
    rot, cen = [], []
    for p in res["posed"]:
        est, truth = geometry.rigid(np.array(p["cam_from_world"])), geometry.rigid(gt[p["frame"]])
        rot.append(geometry.rotation_error_deg(est, truth))
        cen.append(float(np.linalg.norm(geometry.camera_centre(est) - geometry.camera_centre(truth))))
    return {"posed": len(res["posed"]), "frames": res["frames"],
            "rot_median_deg": float(np.median(rot)) if rot else None, "rot_max_deg": float(np.max(rot)) if rot else None,
            "centre_median_m": float(np.median(cen)) if cen else None, "centre_max_m": float(np.max(cen)) if cen else None}


def one(seed: int, frames: int, gl: str, work: Path) -> dict:
    from pose_minisynth import make_clip
    from vq3d.config import validate_config
    from vq3d.pose import pnp
    from vq3d.scan import open_scan, refs
    from vq3d.synth import camera as C
    from vq3d.synth.matterpak import write_matterpak
    from vq3d.synth.render import Renderer
    from vq3d.synth.scene import build_scene

    clip = work / "clip"
    info = make_clip(clip, seed=seed, frames=frames, width=480, geo_renders=16, refs=24)
    scene = build_scene(np.random.default_rng(seed), 3)  # the room make_clip rendered
    write_matterpak(scene, work / "scans" / "scan", "scan")
    conf = validate_config({"scan_refs": {"gl": gl}})["scan_refs"]
    t0 = time.perf_counter()
    refs.main(out_dir=work / "rendered", scan_dir=work / "scans" / "scan", conf=conf)
    total = time.perf_counter() - t0
    scan = open_scan(work / "scans" / "scan", work / "rendered")
    views = scan.reference_views()
    # render speed alone: re-render the views with a fresh renderer (no JPEG/NPY writing)
    from vq3d.scan.render import MeshRenderer, load_mesh
    t1 = time.perf_counter()
    geoms = load_mesh(scan.mesh(), gl)
    cam = views[0].camera
    fx, fy, cx, cy = cam.params
    rend = MeshRenderer(geoms, cam.width, cam.height, fx, fy, cx, cy, gl=gl)
    t_load = time.perf_counter() - t1
    rend.render(views[0].cam_from_world.matrix())  # first render uploads the textures
    t2 = time.perf_counter()
    for v in views:
        rend.render(v.cam_from_world.matrix())
    ms_view = 1000 * (time.perf_counter() - t2) / len(views)
    analytic = Renderer(scene, C.Pinhole(cam.width, cam.height, fx, fy, cx, cy))
    dz = []
    for v in views:
        _, invz, _ = analytic.render(v.cam_from_world.matrix(), want_ids=False)
        z = np.where(invz > 0, 1 / np.maximum(invz, 1e-9), 0)
        both = (z > 0) & (v.depth > 0)
        dz.append(np.abs(v.depth[both] - z[both]))
    dz = np.concatenate(dz)
    gt = np.load(clip / "gt_cam_from_world.npy")
    pconf = validate_config({})["pose"]
    t3 = time.perf_counter()
    pnp.main(frames_dir=clip / "frames", intrinsics=clip / "intrinsics.json", out=work / "pnp_mesh.json",
             scan_dir=work / "scans" / "scan", scan_uid=info["scan_uid"], conf=pconf, scan_refs=work / "rendered")
    t_pnp = time.perf_counter() - t3
    pnp.main(frames_dir=clip / "frames", intrinsics=clip / "intrinsics.json", out=work / "pnp_synth.json",
             scan_dir=clip / "scan", scan_uid=info["scan_uid"], conf=pconf)
    return {"seed": seed, "gl": gl, "gl_renderer": rend.gl_renderer, "views": len(views),
            "scan_refs_total_s": round(total, 1), "mesh_load_s": round(t_load, 2), "ms_per_view": round(ms_view, 1),
            "depth_abs_err_median_m": float(np.median(dz)), "depth_abs_err_p95_m": float(np.percentile(dz, 95)),
            "pnp_mesh_refs": pnp_errors(work / "pnp_mesh.json", gt), "pnp_mesh_s": round(t_pnp, 1),
            "pnp_synth_refs": pnp_errors(work / "pnp_synth.json", gt)}


def remesh(scene, out: Path, n: int) -> Path:
    """The scene as an OBJ with each quad an n×n grid of cells (two triangles each)."""
    import cv2
    out.mkdir(parents=True, exist_ok=True)
    v_lines, vt_lines, f_lines, mtl = [], [], [], []
    by_tex: dict[int, list] = {}
    for q in scene.quads:
        by_tex.setdefault(q.tex, []).append(q)
    g = np.linspace(0, 1, n + 1)
    nv = 0
    for tex, quads in by_tex.items():
        img = scene.textures[tex][0]
        h, w = img.shape[:2]
        cv2.imwrite(str(out / f"t{tex}.jpg"), cv2.resize(img, (min(2048, 2 * w), min(2048, 2 * h))))
        mtl += [f"newmtl m{tex}", f"map_Kd t{tex}.jpg", ""]
        f_lines.append(f"usemtl m{tex}")
        for q in quads:
            rel = q.corners - q.origin
            st = np.stack([rel @ q.es / (q.es @ q.es), rel @ q.et / (q.et @ q.et)], 1)
            c0, c1, c3 = q.corners[0], q.corners[1], q.corners[3]
            for a in g:
                for b in g:
                    pt = c0 + a * (c1 - c0) + b * (c3 - c0)
                    s_, t_ = st[0] + a * (st[1] - st[0]) + b * (st[3] - st[0])
                    v_lines.append(f"v {pt[0]:.5f} {pt[1]:.5f} {pt[2]:.5f}")
                    vt_lines.append(f"vt {s_ / w:.5f} {1 - t_ / h:.5f}")
            for i in range(n):
                for j in range(n):
                    a = nv + i * (n + 1) + j + 1
                    b, c = a + 1, a + n + 1
                    f_lines += [f"f {a}/{a} {c}/{c} {c + 1}/{c + 1}", f"f {a}/{a} {c + 1}/{c + 1} {b}/{b}"]
            nv += (n + 1) ** 2
    (out / "mesh.mtl").write_text("\n".join(mtl))
    (out / "mesh.obj").write_text("\n".join(["mtllib mesh.mtl", *v_lines, *vt_lines, *f_lines]) + "\n")
    return out / "mesh.obj"


def speed(grid: int, gl: str, work: Path) -> dict:
    from vq3d.scan.refs import look
    from vq3d.scan.render import MeshRenderer, load_mesh
    from vq3d.synth.scene import build_scene
    scene = build_scene(np.random.default_rng(1), 3)
    obj = remesh(scene, work, grid)
    t0 = time.perf_counter()
    geoms = load_mesh(obj, gl)
    rend = MeshRenderer(geoms, 640, 480, 381.0, 381.0, 320.0, 240.0, gl=gl)
    t_load = time.perf_counter() - t0
    rng = np.random.default_rng(0)
    poses = [look(np.array([np.cos(a), np.sin(a), -0.2]), np.array([3.0, 3.0, 1.5])) for a in rng.uniform(0, 6.28, 20)]
    rend.render(poses[0])
    out = {"gl": gl, "gl_renderer": rend.gl_renderer, "triangles": int(sum(len(g.faces) for g in geoms)),
           "obj_mb": round(obj.stat().st_size / 1e6, 1), "mesh_load_s": round(t_load, 2)}
    for key, down in (("ms_640x480", 1), ("ms_probe_80x60", 8)):
        t = time.perf_counter()
        for pose in poses:
            rend.render(pose, down)
        out[key] = round(1000 * (time.perf_counter() - t) / len(poses), 1)
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--seeds", type=int, nargs="+", default=[1, 4])
    ap.add_argument("--frames", type=int, default=30)
    ap.add_argument("--gl", nargs="+", default=["egl"])
    ap.add_argument("--out", type=Path)
    ap.add_argument("--speed", type=int, metavar="GRID", help="render speed at scale only (see above)")
    ap.add_argument("--one", nargs=3, metavar=("SEED", "GL", "WORK"), help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.speed and args.one:
        print(json.dumps(speed(args.speed, args.one[1], Path(args.one[2]))))
        return
    if args.speed:
        for gl in args.gl:
            with tempfile.TemporaryDirectory() as tmp:
                run = subprocess.run([sys.executable, __file__, "--speed", str(args.speed), "--one", "0", gl, tmp],
                                     capture_output=True, text=True)
                print(run.stdout.strip().splitlines()[-1] if run.returncode == 0 else
                      f"{gl}: failed: {run.stderr.strip().splitlines()[-1:]}")
        return
    if args.one:  # PyOpenGL binds one platform per process: each GL runs in its own
        seed, gl, work = args.one
        print(json.dumps(one(int(seed), args.frames, gl, Path(work))))
        return
    rows = []
    for gl in args.gl:
        for seed in args.seeds:
            with tempfile.TemporaryDirectory() as tmp:
                run = subprocess.run([sys.executable, __file__, "--frames", str(args.frames), "--one", str(seed), gl, tmp],
                                     capture_output=True, text=True)
                if run.returncode != 0:
                    print(f"{gl} seed {seed}: failed: {run.stderr.strip().splitlines()[-1:]}")
                    continue
                rows.append(json.loads(run.stdout.strip().splitlines()[-1]))
                r = rows[-1]
                m, s = r["pnp_mesh_refs"], r["pnp_synth_refs"]
                print(f"{gl} ({r['gl_renderer']}) seed {seed}: {r['views']} views, scan_refs {r['scan_refs_total_s']} s, "
                      f"{r['ms_per_view']} ms/view, depth |dz| median {1000 * r['depth_abs_err_median_m']:.1f} mm "
                      f"p95 {1000 * r['depth_abs_err_p95_m']:.1f} mm; PnP on mesh views {m['posed']}/{m['frames']} "
                      f"rot {m['rot_median_deg']:.2f} deg centre {100 * m['centre_median_m']:.1f} cm "
                      f"({r['pnp_mesh_s']} s) | analytic synth views {s['posed']}/{s['frames']} "
                      f"rot {s['rot_median_deg']:.2f} deg centre {100 * s['centre_median_m']:.1f} cm")
    if args.out:
        args.out.write_text(json.dumps(rows, indent=1) + "\n")


if __name__ == "__main__":
    main()
