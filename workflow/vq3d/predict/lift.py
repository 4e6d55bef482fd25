"""Lift posed peak detections to 3D points in the scan frame, with one of four depth sources.

Every source gives a depth (camera z, metres) for the box centre of one posed peak; the point is
then the undistorted box-centre ray at that depth, mapped to the scan frame with the frame's
`cam_from_world`. Depth sources:

- `sfm`: the clip's own reconstruction. The SfM points observed inside the box in that frame,
  taken into the scan frame by the sub-model's scan_from_model, give the median depth in the
  frame's scan pose. The Sim(3) is pose_merge's, the one the frame poses were made with
  (scan_from_model.json); with imported poses (no merge) it is fitted to the camera centres the
  pose file and the sub-model share. Those points lie
  on the object's visible surface, the annotated position is its centre: the depth is pushed back
  by `sfm_surface_offset` × the object's half-size seen in the box (half the mean of the box's
  metric width and height at that depth); 0 keeps the surface depth, as EgoLoc did. On the
  synthetic benchmark the surface depth was short of the centre by 0.06–0.8 (median ≈ 0.45) of
  that half-size, almost entirely along the ray (benchmarks/e2e_synth.py, docs/benchmarks.md).
- `triangulate`: the box centres of all posed peaks of a query, triangulated (DLT on undistorted
  rays) with RANSAC over view pairs; each inlier view gets the depth of the triangulated point.
- `scan`: rays through the box cast into the scan's surface mesh (ScanDepth).
- `mono`: a monocular depth network (TorchScript checkpoint on local disk, metric output by
  default) run on the frame; the median depth inside the box. Off unless configured.
"""

from __future__ import annotations

import itertools
import logging
import warnings
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from ..errors import InputError
from ..geometry import apply_sim3, camera_centre, to_camera, to_world
from ..formats.clip_frames import frame_index, frame_name
from ..formats.pose_internal import read_scan_from_model
from .. import lens as camera

if TYPE_CHECKING:
    import pycolmap

    from ..formats.poses import ClipPoses

log = logging.getLogger(__name__)



@dataclass
class PosedPeak:
    """A detection peak in a frame that has a pose. Box corners in original-frame pixels."""

    frame: int
    box: tuple[float, float, float, float]  # x1, y1, x2, y2
    score: float
    cam_from_world: pycolmap.Rigid3d  # the frame's pose, scan frame

    @property
    def centre(self) -> np.ndarray:
        x1, y1, x2, y2 = self.box
        return np.array([(x1 + x2) / 2.0, (y1 + y2) / 2.0])


@dataclass
class Lifted:
    """A peak's 3D point (scan frame) or the reason it has none."""

    peak: PosedPeak
    point_world: np.ndarray | None = None
    depth: float | None = None
    reason: str | None = None
    extra: dict = field(default_factory=dict)


def half_size(cam, box, depth: float) -> float:
    """Half the mean of the metric width and height of `box` (original pixels) at camera depth
    `depth`, from its undistorted corners; 0 where a corner is off the lens curve."""
    x1, y1, x2, y2 = box
    xy = camera.undistort_normalized(cam, np.array([[x1, y1], [x2, y2]], float))
    if not np.all(np.isfinite(xy)):
        return 0.0
    w, h = np.abs(xy[1] - xy[0]) * depth
    return 0.25 * float(w + h)


def point_at_depth(cam, cam_from_world: pycolmap.Rigid3d, pixel, depth: float) -> np.ndarray | None:
    """World point seen at `pixel` (distorted) with camera z = `depth`; None off the lens curve."""
    xy = camera.undistort_normalized(cam, np.asarray(pixel, float)[None])[0]
    if not np.all(np.isfinite(xy)):
        return None
    return to_world(cam_from_world, [xy[0] * depth, xy[1] * depth, depth])[0]


def _finish(cam, peak: PosedPeak, depth: float | None, conf: dict, reason: str | None = None,
            **extra) -> Lifted:
    if depth is None:
        return Lifted(peak, reason=reason or "no depth", extra=extra)
    max_depth = float(conf["max_depth_m"])
    if not (0 < depth <= max_depth):
        return Lifted(peak, depth=float(depth), reason=f"depth {depth:.3g} m outside (0, {max_depth}]",
                      extra=extra)
    point = point_at_depth(cam, peak.cam_from_world, peak.centre, depth)
    if point is None:
        return Lifted(peak, reason="box centre outside the lens model's valid field", extra=extra)
    return Lifted(peak, point_world=point, depth=float(depth), extra=extra)


# ------------------------------------------------------------------------------------------- sfm

@dataclass
class _SubModel:
    index: int
    recon: pycolmap.Reconstruction
    image_of_frame: dict[int, int]
    scan_from_model: pycolmap.Sim3d | None
    reason: str | None = None


class SfmDepth:
    """Depth from the clip's SfM sub-models (sfm_dir/models/<k>/) expressed in the scan frame.

    `scan_from_model`: pose_merge's file of each sub-model's Sim(3) (what the poses were made
    with). Without it (poses imported from a shared file) each sub-model's is fitted to `poses`."""

    def __init__(self, sfm_dir, conf: dict, *, scan_from_model=None, clip_uid: str | None = None,
                 poses: ClipPoses | None = None):
        from ..pose.colmap_io import read_model

        self.conf = conf
        self.models: list[_SubModel] = []
        models_dir = Path(sfm_dir) / "models"
        if not models_dir.is_dir():
            log.warning("%s: no models/ folder; the sfm depth source has no points", sfm_dir)
            return
        merged = None if scan_from_model is None else read_scan_from_model(scan_from_model, clip_uid)
        for sub in sorted(models_dir.iterdir(), key=lambda p: (len(p.name), p.name)):
            if not sub.is_dir() or not any((sub / f"cameras.{e}").exists() for e in ("bin", "txt")):
                continue
            recon = read_model(sub)
            image_of_frame = {}
            for image_id, image in recon.images.items():
                index = frame_index(image.name)
                if index is not None and image.has_pose:
                    image_of_frame[index] = image_id
            k = int(sub.name) if sub.name.isdigit() else len(self.models)
            if merged is not None:
                if k not in merged:
                    raise InputError(scan_from_model, f"no entry for sub-model {k} of {models_dir} "
                                                      f"(has {sorted(merged)}): made from another SfM run?")
                sim, reason = merged[k].scan_from_model, merged[k].reason
                if sim is not None:
                    log.info("sub-model %s: scale %.4f, pose_merge's Sim(3) (from %s)", sub.name,
                             sim.scale, merged[k].source)
            else:
                sim, reason = self._fit(sub.name, recon, image_of_frame, poses)
            if sim is None:
                log.warning("sub-model %s: %s; its points are not used", sub.name, reason)
            self.models.append(_SubModel(k, recon, image_of_frame, sim, reason))

    def _fit(self, name: str, recon, image_of_frame: dict[int, int], poses: ClipPoses):
        """(scan_from_model fitted to the pose file's camera centres, None) or (None, reason)."""
        from ..pose.sim3 import ransac_sim3

        shared = [f for f in sorted(image_of_frame) if f < len(poses) and poses.good[f]]
        if len(shared) < 3:
            return None, f"{len(shared)} frames posed in both the sub-model and the pose file, need 3"
        src = np.array([camera_centre(recon.image(image_of_frame[f]).cam_from_world()) for f in shared])
        tgt = camera_centre(poses.cam_from_world[shared])
        fit = ransac_sim3(src, tgt, float(self.conf["sfm_sim3_threshold_m"]))
        if fit is None or fit.inliers.sum() < 3:
            return None, "no Sim(3) between its camera centres and the pose file's"
        log.info("sub-model %s: scale %.4f from %d/%d shared frames (median residual %.3f m)", name,
                 fit.tgt_from_src.scale, int(fit.inliers.sum()), len(shared),
                 float(np.median(fit.residuals[fit.inliers])))
        return fit.tgt_from_src, None

    def points_in_box(self, frame: int, box, image_size) -> tuple[np.ndarray, str | None]:
        """Scan-frame 3D points observed inside `box` (original pixels) in `frame`."""
        found = [m for m in self.models if frame in m.image_of_frame]
        if not found:
            return np.zeros((0, 3)), "frame not registered in any SfM sub-model"
        usable = [m for m in found if m.scan_from_model is not None]
        if not usable:
            return np.zeros((0, 3)), f"frame's sub-model has no scan Sim(3) ({found[0].reason})"
        out = []
        for m in usable:
            image = m.recon.image(m.image_of_frame[frame])
            cam = m.recon.camera(image.camera_id)
            # SfM ran on the decoded frames; boxes are in original pixels.
            sx, sy = cam.width / image_size[0], cam.height / image_size[1]
            x1, y1, x2, y2 = box
            ids = [p.point3D_id for p in image.points2D if p.has_point3D()
                   and x1 * sx <= p.xy[0] <= x2 * sx and y1 * sy <= p.xy[1] <= y2 * sy]
            if ids:
                xyz = np.array([m.recon.point3D(i).xyz for i in ids])
                out.append(apply_sim3(m.scan_from_model, xyz))
        if not out:
            return np.zeros((0, 3)), "no SfM point observed inside the box"
        return np.concatenate(out), None

    def lift(self, cam, peaks: list[PosedPeak], image_size) -> list[Lifted]:
        min_points = int(self.conf["min_points"])
        res = []
        for peak in peaks:
            pts, reason = self.points_in_box(peak.frame, peak.box, image_size)
            z = to_camera(peak.cam_from_world, pts)[:, 2] if len(pts) else np.zeros(0)
            z = z[z > 0]
            if reason is None and len(z) < min_points:
                reason = f"{len(z)} SfM points in front of the camera inside the box, need {min_points}"
            depth = float(np.median(z)) if reason is None else None
            if depth is not None:
                depth += float(self.conf["sfm_surface_offset"]) * half_size(cam, peak.box, depth)
            res.append(_finish(cam, peak, depth, self.conf, reason, points=int(len(z))))
        return res


# ------------------------------------------------------------------------------------------ scan

class ScanDepth:
    """Depth from the scan's own surface (vq3d.scan: a synthetic scan's mesh.ply, a Matterport
    OBJ): rays through a 3×3 grid over the central half of the box, cast from the frame's scan
    pose into the mesh; the median depth of the nearest hits, pushed back by
    `sfm_surface_offset` × the object's half-size like SfM points (both lie on its visible
    surface). Needs only the frame's pose, not an SfM registration or texture on the object, so
    it lifts PnP-posed and interpolated frames and plain objects; an object that was not there
    when the scan was made gives the surface behind it."""

    GRID = np.array([(u, v) for v in (0.25, 0.5, 0.75) for u in (0.25, 0.5, 0.75)])
    CHUNK = 1 << 18  # triangles per vectorised block (bounded memory on real meshes)

    def __init__(self, vertices: np.ndarray, triangles: np.ndarray, conf: dict):
        tri = np.asarray(vertices, np.float64)[np.asarray(triangles, np.int64)]
        self.v0 = tri[:, 0]
        self.e1, self.e2 = tri[:, 1] - tri[:, 0], tri[:, 2] - tri[:, 0]
        self.conf = conf

    def first_hits(self, origin: np.ndarray, directions: np.ndarray) -> np.ndarray:
        """Per direction, the smallest t > 0 with origin + t·direction on a triangle
        (Möller–Trumbore), NaN where the ray hits none. What depends only on the origin is
        computed once per block of triangles for all the rays."""
        best = np.full(len(directions), np.inf)
        for lo in range(0, len(self.v0), self.CHUNK):
            v0, e1, e2 = (a[lo:lo + self.CHUNK] for a in (self.v0, self.e1, self.e2))
            tvec = origin - v0
            q = np.cross(tvec, e1)
            for k, direction in enumerate(directions):
                p = np.cross(direction, e2)
                det = np.einsum("ij,ij->i", e1, p)
                ok = np.abs(det) > 1e-12
                inv = np.where(ok, 1.0 / np.where(ok, det, 1.0), 0.0)
                u = np.einsum("ij,ij->i", tvec, p) * inv
                v = (q @ direction) * inv
                t = np.einsum("ij,ij->i", e2, q) * inv
                hit = ok & (u >= 0) & (v >= 0) & (u + v <= 1) & (t > 1e-6)
                if hit.any():
                    best[k] = min(best[k], float(t[hit].min()))
        return np.where(np.isfinite(best), best, np.nan)

    def lift(self, cam, peaks: list[PosedPeak], image_size=None) -> list[Lifted]:
        res = []
        for peak in peaks:
            x1, y1, x2, y2 = peak.box
            pixels = np.column_stack([x1 + self.GRID[:, 0] * (x2 - x1), y1 + self.GRID[:, 1] * (y2 - y1)])
            xy = camera.undistort_normalized(cam, pixels)
            rot = peak.cam_from_world.rotation.matrix()
            origin = camera_centre(peak.cam_from_world)
            xy = xy[np.all(np.isfinite(xy), axis=1)]
            # Directions (x, y, 1) in the camera: a hit's t is its camera z, the depth.
            rays = np.column_stack([xy, np.ones(len(xy))]) @ rot
            hits = self.first_hits(origin, rays)
            depths = hits[np.isfinite(hits)]
            if 2 * len(depths) < len(pixels):
                res.append(Lifted(peak, reason=f"{len(depths)} of {len(pixels)} rays through the box "
                                               "hit the scan surface, need half", extra={"rays": len(depths)}))
                continue
            depth = float(np.median(depths))
            depth += float(self.conf["sfm_surface_offset"]) * half_size(cam, peak.box, depth)
            res.append(_finish(cam, peak, depth, self.conf, rays=len(depths)))
        return res


# ----------------------------------------------------------------------------------- triangulate

def triangulate_dlt(cam_from_world: np.ndarray, xy: np.ndarray) -> np.ndarray | None:
    """Linear triangulation from (n, 3, 4) poses and (n, 2) undistorted normalised points."""
    rows = []
    for P, (x, y) in zip(cam_from_world, xy):
        rows.append(x * P[2] - P[0])
        rows.append(y * P[2] - P[1])
    A = np.array(rows)
    # Row normalisation keeps far and near views equally weighted.
    A /= np.linalg.norm(A, axis=1, keepdims=True)
    _, _, vt = np.linalg.svd(A)
    X = vt[-1]
    if abs(X[3]) < 1e-12:
        return None
    return X[:3] / X[3]


def _angular_errors(cam_from_world: np.ndarray, rays_cam: np.ndarray, X: np.ndarray) -> np.ndarray:
    """Angle (rad) between each view's ray and the direction to X; π where X is behind."""
    p = np.einsum("nij,j->ni", cam_from_world[:, :, :3], X) + cam_from_world[:, :, 3]
    cos = np.einsum("ni,ni->n", p, rays_cam) / np.maximum(np.linalg.norm(p, axis=1), 1e-12)
    ang = np.arccos(np.clip(cos, -1, 1))
    return np.where(p[:, 2] > 0, ang, np.pi)


def _max_parallax(centres: np.ndarray, X: np.ndarray) -> float:
    d = centres - X
    d /= np.maximum(np.linalg.norm(d, axis=1, keepdims=True), 1e-12)
    cos = np.clip(d @ d.T, -1, 1)
    return float(np.arccos(cos.min()))


class Triangulation:
    """Robust multi-view triangulation of box centres over a query's posed peaks."""

    def __init__(self, conf: dict):
        self.conf = conf
        self.max_err = np.radians(float(conf["triangulation_max_error_deg"]))
        self.min_parallax = np.radians(float(conf["triangulation_min_angle_deg"]))

    def point(self, cam, peaks: list[PosedPeak]) -> tuple[np.ndarray | None, np.ndarray, str | None]:
        """(X, inlier mask, reason). Pairs are tried exhaustively (peaks per query are few)."""
        n = len(peaks)
        mask = np.zeros(n, bool)
        if n < 2:
            return None, mask, f"{n} posed peak(s), triangulation needs 2"
        P = np.array([p.cam_from_world.matrix() for p in peaks])
        xy = camera.undistort_normalized(cam, np.array([p.centre for p in peaks]))
        ok = np.all(np.isfinite(xy), axis=1)
        rays = np.concatenate([xy, np.ones((n, 1))], axis=1)
        rays /= np.linalg.norm(rays, axis=1, keepdims=True)
        centres = camera_centre(P)
        best = None
        for i, j in itertools.combinations(np.flatnonzero(ok), 2):
            X = triangulate_dlt(P[[i, j]], xy[[i, j]])
            if X is None or _max_parallax(centres[[i, j]], X) < self.min_parallax:
                continue
            err = _angular_errors(P, rays, X)
            inl = (err < self.max_err) & ok
            if not (inl[i] and inl[j]):
                continue
            key = (int(inl.sum()), -float(err[inl].sum()))
            if best is None or key > best[0]:
                best = (key, inl)
        if best is None:
            return None, mask, "no pair of views with enough parallax agrees on a point"
        mask = best[1]
        for _ in range(3):  # refit on inliers until the inlier set is stable
            X = triangulate_dlt(P[mask], xy[mask])
            if X is None:
                return None, np.zeros(n, bool), "degenerate triangulation"
            new = (_angular_errors(P, rays, X) < self.max_err) & ok
            if new.sum() < 2 or np.array_equal(new, mask):
                break
            mask = new
        if _max_parallax(centres[mask], X) < self.min_parallax:
            return None, np.zeros(n, bool), "inlier views have too little parallax"
        return X, mask, None

    def lift(self, cam, peaks: list[PosedPeak]) -> list[Lifted]:
        X, mask, reason = self.point(cam, peaks)
        res = []
        for k, peak in enumerate(peaks):
            if X is None:
                res.append(Lifted(peak, reason=reason))
            elif not mask[k]:
                res.append(Lifted(peak, reason="box centre ray disagrees with the triangulated point"))
            else:
                depth = float(to_camera(peak.cam_from_world, X)[0, 2])
                res.append(_finish(cam, peak, depth, self.conf, views=int(mask.sum())))
        return res


# ------------------------------------------------------------------------------------------ mono

class MonoDepth:
    """A monocular depth network from a local TorchScript (.pt) or torch.export (.pt2) file; never
    downloads anything.

    The model takes a (1, 3, S, S) float tensor (RGB in [0, 1], normalised by mean/std 0.5 as DPT
    and MiDaS expect) and returns (1, H, W) or (1, 1, H, W). `mono_output: depth` means metric
    depth in metres (e.g. DPT-NYU, as EgoLoc used); `inverse_depth` means 1/depth."""

    def __init__(self, checkpoint, frames_dir, conf: dict):
        import torch

        if not checkpoint:
            raise InputError("config predict.mono_checkpoint",
                             "depth 'mono' needs a local TorchScript checkpoint path")
        path = Path(checkpoint)
        if not path.is_file():
            raise InputError(path, "monocular depth checkpoint does not exist")
        if frames_dir is None or not Path(frames_dir).is_dir():
            raise InputError(str(frames_dir), "depth 'mono' needs the clip's frames folder")
        try:
            if path.suffix == ".pt2":  # torch.export archive
                self.model = torch.export.load(str(path)).module()
            else:
                with warnings.catch_warnings():  # TorchScript is deprecated but still what ships
                    warnings.simplefilter("ignore", DeprecationWarning)
                    self.model = torch.jit.load(str(path), map_location="cpu").eval()
        except Exception as exc:  # torch raises RuntimeError/ValueError with long C++ traces
            first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
            raise InputError(path, f"not a loadable TorchScript (.pt) or torch.export (.pt2) "
                                   f"model ({first})") from None
        self.torch = torch
        self.frames_dir = Path(frames_dir)
        self.size = int(conf["mono_input_size"])
        self.inverse = conf["mono_output"] == "inverse_depth"
        self.conf = conf

    def depth_map(self, frame: int, image_size) -> np.ndarray:
        import cv2

        path = self.frames_dir / frame_name(frame)
        bgr = cv2.imread(str(path))
        if bgr is None:
            raise InputError(path, "frame is missing or not an image")
        rgb = cv2.cvtColor(bgr, cv2.COLOR_BGR2RGB)
        x = cv2.resize(rgb, (self.size, self.size), interpolation=cv2.INTER_AREA).astype(np.float32)
        x = (x / 255.0 - 0.5) / 0.5
        with self.torch.no_grad():
            out = self.model(self.torch.from_numpy(x).permute(2, 0, 1)[None])
        pred = out.squeeze().cpu().numpy().astype(np.float32)
        if pred.ndim != 2:
            raise InputError(self.frames_dir, f"depth model returned shape {tuple(out.shape)}, "
                                              "expected (1, H, W) or (1, 1, H, W)")
        # Boxes are in original pixels: bring the map to the original frame size.
        return cv2.resize(pred, (int(image_size[0]), int(image_size[1])),
                          interpolation=cv2.INTER_LINEAR)

    def lift(self, cam, peaks: list[PosedPeak], image_size) -> list[Lifted]:
        res = []
        for peak in peaks:
            d = self.depth_map(peak.frame, image_size)
            x1, y1, x2, y2 = (int(round(v)) for v in peak.box)
            x1, y1 = max(x1, 0), max(y1, 0)
            patch = d[y1:max(y2, y1 + 1), x1:max(x2, x1 + 1)]
            vals = patch[np.isfinite(patch) & (patch > 0)]
            if vals.size == 0:
                res.append(Lifted(peak, reason="no valid network depth inside the box"))
                continue
            z = float(np.median(1.0 / vals if self.inverse else vals))
            res.append(_finish(cam, peak, z, self.conf))
        return res
