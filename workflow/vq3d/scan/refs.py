"""Stage scan_refs (one job per scan): reference views and geo renders rendered from the scan's mesh.

Viewpoints cover the scan: a grid over the mesh's floor plan (`spacing_m`), kept where a
downward render sees floor at the expected height (inside a room, not above furniture, a wall or
the outside), then `yaws` headings at each of `heights_m` above the floor, slightly pitched down;
a view is kept when at least `min_valid` of its pixels see a surface at least `min_depth_m` away
on median (not facing a wall from a hand's width). The kept views, thinned evenly to `max_views`,
are written with RGB, metric z-depth and cam_from_world (`refs/`); `geo` of them, spread evenly,
also as EgoLoc-style geo renders with their centres (`geo_register/geo_N.jpg`, `geo.txt`); and
`scan.json` names the render camera and the mesh. The out_dir is laid out like a synthetic scan, so
`vq3d.scan.open_scan(scan_dir, out_dir)` serves it to the pose stages."""

from __future__ import annotations

import logging
import time
from pathlib import Path

import numpy as np

from ..geometry import camera_centre, pose_at
from ..atomic import atomic_dir
from ..errors import InputError
from ..formats import scan_refs as fmt
from ..progress import Progress
from . import MatterportScan, open_scan
from .render import MeshRenderer, load_mesh

log = logging.getLogger(__name__)


def look(forward: np.ndarray, centre: np.ndarray) -> np.ndarray:
    """cam_from_world (3×4) of a camera at `centre` looking along `forward`, image up = world +z."""
    f = forward / np.linalg.norm(forward)
    up = np.array([0.0, 0.0, 1.0]) if abs(f[2]) < 0.99 else np.array([0.0, 1.0, 0.0])
    x = np.cross(f, up)
    x /= np.linalg.norm(x)
    y = np.cross(f, x)  # image y points down
    return pose_at(np.stack([x, y, f]), centre)  # rows: camera axes in world coordinates


def floor_height(geoms) -> float:
    """The floor: a low percentile of vertex heights (robust to a few stray points below it)."""
    z = np.concatenate([np.asarray(g.vertices)[:, 2] for g in geoms])
    return float(np.percentile(z, 2))


PROBE = 8  # viewpoint tests render at 1/8 the size: same field of view, 1/64 of the pixels


def plan_views(renderer: MeshRenderer, bounds: np.ndarray, floor: float, conf: dict) -> list[np.ndarray]:
    """cam_from_world of every kept view (see the module doc)."""
    spacing = float(conf["spacing_m"])
    lo, hi = bounds[0, :2], bounds[1, :2]
    xs = np.arange(lo[0] + spacing / 2, hi[0], spacing)
    ys = np.arange(lo[1] + spacing / 2, hi[1], spacing)
    pitch = np.deg2rad(float(conf["pitch_deg"]))
    yaws = int(conf["yaws"])
    kept = []
    for hi_k, h in enumerate(conf["heights_m"]):
        for ix, x in enumerate(xs):
            for iy, y in enumerate(ys):
                centre = np.array([x, y, floor + float(h)])
                _, down = renderer.render(look(np.array([0.0, 0.0, -1.0]), centre), PROBE)
                seen = down[down > 0]
                if seen.size < 0.9 * down.size or abs(np.median(seen) - float(h)) > 0.25:
                    continue
                offset = (ix + iy + hi_k) * np.pi / yaws / 2  # stagger headings between neighbours
                for k in range(yaws):
                    yaw = 2 * np.pi * k / yaws + offset
                    fwd = np.array([np.cos(yaw) * np.cos(pitch), np.sin(yaw) * np.cos(pitch), np.sin(pitch)])
                    pose = look(fwd, centre)
                    _, depth = renderer.render(pose, PROBE)
                    valid = depth > 0
                    if valid.mean() >= float(conf["min_valid"]) and np.median(depth[valid]) >= float(conf["min_depth_m"]):
                        kept.append(pose)
    limit = int(conf["max_views"])
    if len(kept) > limit:
        kept = [kept[int(round(i))] for i in np.linspace(0, len(kept) - 1, limit)]
    return kept


def render_camera(conf: dict) -> tuple[int, int, float]:
    """(width, height, focal in pixels) of the pinhole render camera of the scan_refs settings;
    the principal point is the image centre."""
    w, h = int(conf["width"]), int(conf["height"])
    return w, h, 0.5 * w / np.tan(np.deg2rad(float(conf["fov_deg"])) / 2)


def geo_picks(n_views: int, n_geo: int) -> set[int]:
    """Indices of the views that are also geo renders: `n_geo` of them (at most all), spread evenly."""
    return {int(round(i)) for i in np.linspace(0, n_views - 1, min(n_geo, n_views))}


def main(out_dir, scan_dir, conf):
    t0 = time.perf_counter()
    scan = open_scan(scan_dir)
    if not isinstance(scan, MatterportScan):
        raise InputError(scan_dir, "scan_refs renders a Matterport scan's mesh; this folder is a "
                                   f"{type(scan).__name__} whose reference views already exist")
    geoms = load_mesh(scan.mesh(), conf["gl"])
    bounds = np.stack([np.min([g.bounds[0] for g in geoms], 0), np.max([g.bounds[1] for g in geoms], 0)])
    floor = floor_height(geoms)
    w, h, f = render_camera(conf)
    camera = {"model": "PINHOLE", "width": w, "height": h, "params": [f, f, w / 2, h / 2]}
    renderer = MeshRenderer(geoms, w, h, f, f, w / 2, h / 2, gl=conf["gl"])
    log.info("scan %s: mesh %s (%d parts), bounds %s, floor z=%.2f, loaded in %.1f s", scan.uid,
             scan.mesh().name, len(geoms), np.round(bounds, 2).tolist(), floor, time.perf_counter() - t0)
    poses = plan_views(renderer, bounds, floor, conf)
    if len(poses) < 3:
        raise InputError(scan.mesh(), f"only {len(poses)} viewpoint(s) inside the mesh see enough surface "
                                      "(is it a room scan in metres with z up?)")
    log.info("%d viewpoints cover the scan (%.1f s)", len(poses), time.perf_counter() - t0)
    geo_pick = geo_picks(len(poses), int(conf["geo"]))
    with atomic_dir(out_dir) as tmp:
        refs, geo = tmp / "refs", tmp / "geo_register"
        refs.mkdir()
        geo.mkdir()
        names, centres = {}, {}
        progress = Progress(log, "rendered", len(poses), unit="views")
        for k, pose in enumerate(poses):
            bgr, depth = renderer.render(pose)
            name = f"ref_{k:03d}.jpg"
            fmt.write_ref_view(refs, name, bgr, depth, int(conf["jpeg_quality"]))
            names[name] = pose
            if k in geo_pick:
                gname = f"geo_{len(centres)}.jpg"
                fmt.write_ref_view(geo, gname, bgr, depth, int(conf["jpeg_quality"]))
                (geo / fmt.depth_name(gname)).unlink()  # EgoLoc's geo renders are images only
                centres[gname] = camera_centre(pose)
            progress.update()
        source = f"rendered from {scan.mesh().name} by pyrender ({renderer.gl_renderer}, {renderer.gl})"
        fmt.write_ref_poses(refs, camera, names, source=source)
        fmt.write_geo(geo, centres)
        fmt.write_scan_json(tmp, scan.uid, camera, mesh=str(scan.mesh()), renderer=source,
                            views=len(poses), geo_renders=len(centres))
    renderer.close()
    log.info("scan %s: %d reference views, %d geo renders in %.1f s", scan.uid, len(poses),
             len(centres), time.perf_counter() - t0)
