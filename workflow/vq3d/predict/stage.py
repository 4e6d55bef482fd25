"""The predict stage for one clip: posed peaks → 3D points → one prediction per query.

For each query of the clip (VQ2D query file keys): keep the peaks whose frame has a good pose and
whose box lies in the image, lift them with the configured depth source, aggregate, and express
the point in the query frame's camera when the query frame has a pose. Anything impossible is a
null with its reason in the file and in the log; the stage fails only on bad input.

Poses are pycolmap Rigid3d `cam_from_world` (scan frame) in memory, read from the pose file.
The SfM depth source maps a sub-model's points with pose_merge's `scan_from_model`
(scan_from_model.json); with imported poses there is none, and it is fitted to the poses."""

from __future__ import annotations

import argparse
import logging
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from ..formats.clip_detections import read_clip_detections
from ..formats.clip_predictions import (ClipPredictions, PeakPrediction, QueryPrediction,
                                        write_clip_predictions)
from ..formats.intrinsics import lookup, read_intrinsics
from ..formats.poses import ClipPoses, read_poses
from ..formats.queries import read_queries
from ..scan import open_scan, read_surface
from ..errors import InputError
from ..geometry import rigid, to_camera
from . import aggregate as agg
from ..lens import pinhole
from .lift import Lifted, MonoDepth, PosedPeak, ScanDepth, SfmDepth, Triangulation

if TYPE_CHECKING:
    import pycolmap

log = logging.getLogger(__name__)


def frame_cam_from_world(poses: ClipPoses | None, frame: int) -> pycolmap.Rigid3d | None:
    """The pose of clip frame `frame`, None where the clip or the frame has none."""
    if poses is None or not (0 <= frame < len(poses)) or not poses.good[frame]:
        return None
    return rigid(poses.cam_from_world[frame])


def _to_4x4(cam_from_world: pycolmap.Rigid3d) -> np.ndarray:
    return np.vstack([cam_from_world.matrix(), [0.0, 0.0, 0.0, 1.0]])


def posed_peaks(qdet, poses: ClipPoses) -> tuple[list[PosedPeak], list[PeakPrediction]]:
    """Peaks usable for lifting, and a record (with reason) of those dropped. As in EgoLoc, a box
    must overlap the image and its frame must have a good pose."""
    W, H = qdet.image_size
    usable, dropped = [], []
    for p in qdet.peaks:
        box = p.box.xyxy
        reason = None
        if not (0 <= p.frame < len(poses)):
            reason = f"frame {p.frame} outside the pose file's {len(poses)} frames"
        elif not poses.good[p.frame]:
            reason = "frame has no pose"
        elif not (box[0] < W - 1 and box[2] > 1 and box[1] < H - 1 and box[3] > 1):
            reason = "box outside the image"
        if reason:
            dropped.append(PeakPrediction(p.frame, box, p.box.score, reason=reason))
        else:
            usable.append(PosedPeak(p.frame, box, float(p.box.score),
                                    frame_cam_from_world(poses, p.frame)))
    return usable, dropped


class _Lifter:
    """The configured depth source, built once per clip (the SfM models and the scan surface are
    read once), and the fallbacks (`conf["fallback"]`): the other sources on the same peaks
    (triangulate, sfm, then the scan surface), then the query's visual crop."""

    def __init__(self, conf: dict, sfm_dir, poses: ClipPoses | None, frames_dir,
                 scan_from_model=None, clip_uid: str | None = None, scan_dir=None):
        self.kind = conf["depth"]
        self.conf = conf
        self.fallback = bool(conf["fallback"])
        self._sfm_args = (sfm_dir, poses, scan_from_model, clip_uid)
        self._scan_dir, self._scan_tried = scan_dir, False
        self.sfm = self.tri = self.mono = self.scan = None
        if self.kind == "sfm" and poses is not None:
            self._get_sfm()
        elif self.kind == "triangulate":
            self.tri = Triangulation(conf)
        elif self.kind == "mono":
            self.mono = MonoDepth(conf["mono_checkpoint"], frames_dir, conf)
        elif self.kind == "scan":
            if self._get_scan() is None:
                raise InputError(scan_dir or "config predict.depth",
                                 "depth 'scan' needs the clip's scan folder with a surface mesh "
                                 "(a synthetic scan's mesh.ply or a Matterport OBJ)")
        elif self.kind not in ("sfm", "triangulate", "mono"):
            raise InputError("config predict.depth", f"unknown depth source {self.kind!r}")

    def _get_sfm(self) -> SfmDepth | None:
        sfm_dir, poses, scan_from_model, clip_uid = self._sfm_args
        if self.sfm is None and poses is not None and sfm_dir is not None:
            self.sfm = SfmDepth(sfm_dir, self.conf, scan_from_model=scan_from_model,
                                clip_uid=clip_uid, poses=poses)
        return self.sfm

    def _get_tri(self) -> Triangulation:
        if self.tri is None:
            self.tri = Triangulation(self.conf)
        return self.tri

    def _get_scan(self) -> ScanDepth | None:
        """The scan surface, read on first use; None (said once) where the scan has none."""
        if not self._scan_tried:
            self._scan_tried = True
            if self._scan_dir is None or not Path(self._scan_dir).is_dir():
                log.info("no scan folder %s: the scan-surface depth is not available", self._scan_dir)
            else:
                try:
                    surface = open_scan(self._scan_dir).surface()
                    mesh = None if surface is None else read_surface(surface)
                except InputError as exc:
                    if self.kind == "scan":
                        raise
                    # Only a fallback: a broken scan must not cost the clip its other predictions.
                    log.warning("scan-surface fallback off: %s", exc)
                    surface = mesh = None
                if mesh is None:
                    log.info("scan %s has no usable surface mesh: the scan-surface depth is not "
                             "available", self._scan_dir)
                else:
                    self.scan = ScanDepth(*mesh, self.conf)
                    log.info("scan surface %s: %d triangles", surface, len(self.scan.v0))
        return self.scan

    def lift(self, cam, peaks: list[PosedPeak], image_size) -> list[Lifted]:
        if self.kind == "sfm":
            return self.sfm.lift(cam, peaks, image_size)
        if self.kind == "triangulate":
            return self.tri.lift(cam, peaks)
        if self.kind == "scan":
            return self.scan.lift(cam, peaks, image_size)
        return self.mono.lift(cam, peaks, image_size)

    def lift_other(self, cam, peaks: list[PosedPeak], image_size) -> tuple[list[Lifted], str | None]:
        """The other sources on the same peaks, in order (triangulate, sfm, scan; the configured
        one skipped): (lifted, its name) of the first that lifts any, or ([], None)."""
        if not self.fallback or not peaks:
            return [], None
        for name in ("triangulate", "sfm", "scan"):
            if name == self.kind:
                continue
            if name == "triangulate" and len(peaks) >= 2:
                lifted = self._get_tri().lift(cam, peaks)
            elif name == "sfm" and self._get_sfm() is not None:
                lifted = self.sfm.lift(cam, peaks, image_size)
            elif name == "scan" and self._get_scan() is not None:
                lifted = self.scan.lift(cam, peaks, image_size)
            else:
                continue
            if any(item.point_world is not None for item in lifted):
                return lifted, name
        return [], None

    def lift_any(self, cam, peaks: list[PosedPeak], image_size) -> list[Lifted]:
        """Each peak lifted on its own: by the configured source, else by lift_other's fallbacks
        (one peak: the single-view ones, sfm and the scan surface)."""
        out = []
        for peak in peaks:
            lifted = self.lift(cam, [peak], image_size)[0]
            if lifted.point_world is None:
                other, _ = self.lift_other(cam, [peak], image_size)
                lifted = other[0] if other else lifted
            out.append(lifted)
        return out

    def lift_crop(self, cam, crop: PosedPeak, peaks: list[PosedPeak], image_size) -> Lifted | None:
        """The visual crop (a box of the object given with the query, in a posed frame): its SfM
        depth, else the triangulation of its box centre with the peaks' box centres, else its
        scan-surface depth."""
        sfm = self._get_sfm()
        if sfm is not None:
            lifted = sfm.lift(cam, [crop], image_size)[0]
            if lifted.point_world is not None:
                return lifted
        if peaks:
            lifted = self._get_tri().lift(cam, [crop] + list(peaks))[0]
            if lifted.point_world is not None:
                return lifted
        if self._get_scan() is not None:
            lifted = self.scan.lift(cam, [crop], image_size)[0]
            if lifted.point_world is not None:
                return lifted
        return None


@dataclass
class CropBox:
    """A query's visual crop in original-frame pixels."""

    frame: int
    box: tuple[float, float, float, float]  # x1, y1, x2, y2


SIGHTING_GAP = 2    # earlier_posed_sightings: boxless frames a sighting may have in it
SIGHTING_BACK = 25  # ... and how far back it is followed (find_peaks' distance, 5 s at 5 fps)


def earlier_posed_sightings(qdet, poses: ClipPoses, peak_frames: list[int]) -> list[PosedPeak]:
    """For peaks on frames without a pose: the latest posed frame of the same sighting (the run of
    boxed frames the peak ends, followed back at most SIGHTING_BACK frames across gaps of at most
    SIGHTING_GAP boxless frames), with its top box. The object was seen there a moment earlier."""
    boxes = dict(qdet.frames)
    out = []
    for f in sorted(set(peak_frames)):
        boxless = 0
        for g in range(f - 1, max(-1, f - 1 - SIGHTING_BACK), -1):
            if not boxes.get(g):
                boxless += 1
                if boxless > SIGHTING_GAP:
                    break
                continue
            boxless = 0
            cam_from_world = frame_cam_from_world(poses, g)
            if cam_from_world is not None:
                b = max(boxes[g], key=lambda b: b.score)
                out.append(PosedPeak(g, b.xyxy, float(b.score), cam_from_world))
                break
    return sorted({p.frame: p for p in out}.values(), key=lambda p: p.frame)


CANDIDATE_SCORE_RATIO = 0.5  # anchor_to_crop: boxes this fraction of the query's best score, or more
CANDIDATE_FRAMES = 300      # ... in at most this many posed frames (latest first)
MATCH_FRAMES = 3            # ... until this many frames have a box at the crop's instance


def anchor_to_crop(qp: QueryPrediction, qdet, poses: ClipPoses, cam, lifter: _Lifter, conf: dict,
                   crop: CropBox, point: np.ndarray) -> np.ndarray:
    """The query's 3D point checked against its visual crop's instance (`crop_anchor_m`).

    The crop shows the queried instance; lifted from its posed frame (SfM depth, else the scan
    surface) it locates that instance. A peak further than `crop_anchor_m` from it is on another
    instance (a repeat or look-alike of the object: the peak picker only sees appearance). Then
    the last sighting of the crop's instance is searched among the detector's boxes before the
    query frame (latest first): boxes whose lift lies within `crop_anchor_m` of the crop's point.
    The lifts of the latest MATCH_FRAMES such frames are aggregated and replace the peaks'. With
    no such box the peaks stay (the object may have been moved after the crop's frame). Updates
    qp.peaks; returns the point."""
    crop_cam_from_world = frame_cam_from_world(poses, crop.frame)
    if crop_cam_from_world is None:
        return point
    crop_lift = lifter.lift_crop(cam, PosedPeak(crop.frame, crop.box, 1.0, crop_cam_from_world), [],
                                 qdet.image_size)
    if crop_lift is None:
        return point
    radius = float(conf["crop_anchor_m"])
    off = float(np.linalg.norm(point - crop_lift.point_world))
    if off <= radius:
        return point
    scored = sorted(((f, bs) for f, bs in qdet.frames if f < qp.query_frame), key=lambda t: t[0])
    floor = CANDIDATE_SCORE_RATIO * max((b.score for _, bs in scored for b in bs), default=0.0)
    matches, n_frames = [], 0
    for frame, frame_boxes in reversed(scored):
        cam_from_world = frame_cam_from_world(poses, frame)
        if cam_from_world is None:
            continue
        cands = [PosedPeak(frame, b.xyxy, float(b.score), cam_from_world)
                 for b in frame_boxes if b.score >= floor]
        if not cands:
            continue
        n_frames += 1
        near = [l for l in lifter.lift_any(cam, cands, qdet.image_size) if l.point_world is not None
                and np.linalg.norm(l.point_world - crop_lift.point_world) <= radius]
        if near:
            matches.append(max(near, key=lambda l: l.peak.score))
        if len(matches) >= MATCH_FRAMES or n_frames >= CANDIDATE_FRAMES:
            break
    if not matches:
        log.info("query %s: the peaks are %.2f m from the visual crop's instance (frame %d) and no "
                 "box before the query frame is near it: the peaks are kept", qdet.key, off, crop.frame)
        return point
    log.info("query %s: the peaks are %.2f m from the visual crop's instance (frame %d): its last "
             "sighting, frame(s) %s, replaces them", qdet.key, off, crop.frame,
             sorted(l.peak.frame for l in matches))
    why = f"not the visual crop's instance ({off:.2f} m from it, predict.crop_anchor_m {radius:g})"
    qp.peaks = [PeakPrediction(p.frame, p.box, p.score, p.point, p.depth, p.reason or why)
                for p in qp.peaks]
    qp.peaks += [PeakPrediction(l.peak.frame, l.peak.box, l.peak.score, l.point_world, l.depth)
                 for l in matches]
    qp.peaks.sort(key=lambda p: p.frame)
    return agg.aggregate([l.point_world for l in matches], [l.peak.score for l in matches],
                         [l.peak.frame for l in matches], conf["aggregation"], conf)


def predict_query(query_frame: int, qdet, poses: ClipPoses | None, cam, lifter: _Lifter,
                  conf: dict, crop: CropBox | None = None) -> QueryPrediction:
    """Prediction for one query from its detections `qdet`; `crop`, the query's visual crop, is
    the last resort when no peak can be lifted (conf["fallback"])."""
    qp = QueryPrediction(qdet.annotation_index, qdet.query_set, query_frame)
    query_cam_from_world = frame_cam_from_world(poses, query_frame)
    if query_cam_from_world is None:
        qp.query_pose_reason = "clip has no poses" if poses is None else "query frame has no pose"
    else:
        qp.query_frame_pose = _to_4x4(query_cam_from_world)
    if poses is None:
        qp.reason = "clip has no poses"
        return qp
    usable, dropped = posed_peaks(qdet, poses)
    if not usable and dropped and lifter.fallback:
        usable = earlier_posed_sightings(qdet, poses, [p.frame for p in dropped])
        if usable:
            log.info("query %s: no peak frame has a pose; the sighting's latest posed frame(s) %s "
                     "instead", qdet.key, [p.frame for p in usable])
    qp.peaks = list(dropped)
    lifted = lifter.lift(cam, usable, qdet.image_size) if usable else []
    qp.peaks += [PeakPrediction(l.peak.frame, l.peak.box, l.peak.score, l.point_world, l.depth,
                                l.reason) for l in lifted]
    qp.peaks.sort(key=lambda p: p.frame)
    good = [l for l in lifted if l.point_world is not None]
    if not good:
        if not qdet.peaks:
            reason = "no detection peak" + (f" ({qdet.reason})" if getattr(qdet, "reason", None) else "")
        elif not usable:
            reason = "no peak frame has a pose"
        else:
            reason = "no peak could be lifted: " + "; ".join(sorted({l.reason for l in lifted}))
        other, name = lifter.lift_other(cam, usable, qdet.image_size)
        good = [l for l in other if l.point_world is not None]
        if good:
            log.info("query %s: %s; %d peak(s) lifted by %s instead", qdet.key, reason, len(good), name)
            by_frame = {l.peak.frame: l for l in good}
            qp.peaks = [PeakPrediction(p.frame, p.box, p.score, by_frame[p.frame].point_world,
                                       by_frame[p.frame].depth) if p.frame in by_frame else p
                        for p in qp.peaks]
        crop_cam_from_world = None if crop is None else frame_cam_from_world(poses, crop.frame)
        if not good and crop_cam_from_world is not None and lifter.fallback:
            crop_peak = PosedPeak(crop.frame, crop.box, 1.0, crop_cam_from_world)
            lifted_crop = lifter.lift_crop(cam, crop_peak, usable, qdet.image_size)
            if lifted_crop is not None:
                log.info("query %s: %s; the visual crop (frame %d) is lifted instead", qdet.key,
                         reason, crop.frame)
                good = [lifted_crop]
        if not good:
            qp.reason = reason
            return qp
    point = agg.aggregate([l.point_world for l in good], [l.peak.score for l in good],
                          [l.peak.frame for l in good], conf["aggregation"], conf)
    if conf["crop_anchor_m"] is not None and crop is not None:
        point = anchor_to_crop(qp, qdet, poses, cam, lifter, conf, crop, point)
    qp.pred_3d_vec_world = point
    if query_cam_from_world is not None:
        qp.pred_3d_vec_query_frame = to_camera(query_cam_from_world, point)[0]
    return qp


def main(detections, poses, sfm_dir, queries, intrinsics, out, clip_uid, scan_uid, conf,
         scan_from_model=None, frames_dir=None, scan_dir=None):
    """Write `out` (vq3d.formats.clip_predictions) for every query of `clip_uid`.

    `scan_from_model`: pose_merge's sub-model Sim(3) file (None with imported poses: fitted
    then); `frames_dir` is needed only by the `mono` depth source; `scan_dir` (the clip's scan
    folder) by the `scan` depth source and the scan fallback (none: that fallback is skipped); `conf` holds the predict keys
    of `vq3d.stages.config_slice` (or the whole validated predict section)."""
    det = read_clip_detections(detections)
    if det.clip_uid != clip_uid:
        raise InputError(detections, f"clip_uid is {det.clip_uid!r}, expected {clip_uid!r}")
    clip_queries = read_queries(queries).for_clip(clip_uid)
    all_poses = read_poses(poses)
    clip_poses = all_poses.get(clip_uid)
    if clip_poses is None:
        log.warning("%s: no entry for clip %s; every query gets a null prediction", poses, clip_uid)
    elif not clip_poses.good.any():
        log.warning("%s: clip %s has no good pose", poses, clip_uid)
    intr = read_intrinsics(intrinsics)
    lifter = _Lifter(conf, sfm_dir, clip_poses, frames_dir, scan_from_model, clip_uid, scan_dir)

    result = ClipPredictions(clip_uid, scan_uid, conf["depth"], conf["aggregation"])
    keys = [(q.annotation_index, q.query_set, q.query_frame) for q in clip_queries]
    crops = {(q.annotation_index, q.query_set): q.visual_crop for q in clip_queries
             if q.visual_crop is not None}
    known = {(a, s) for a, s, _ in keys}
    # Queries the detector saw but the query file lacks are kept: the detections file is per clip.
    keys += [(q.annotation_index, q.query_set, q.query_frame) for q in det.queries
             if q.key not in known]
    for ai, qset, query_frame in keys:
        qdet = det.get(ai, qset)
        if qdet is None:
            qp = QueryPrediction(ai, qset, query_frame, reason="no detections for this query")
            query_cam_from_world = frame_cam_from_world(clip_poses, query_frame)
            if query_cam_from_world is not None:
                qp.query_frame_pose = _to_4x4(query_cam_from_world)
        else:
            cam = lookup(intr, scan_uid, *qdet.image_size, source=intrinsics)
            if not conf["undistort"]:
                cam = pinhole(cam)  # the research code's back-projection, for comparisons only
            vc = crops.get((ai, qset))
            crop = None if vc is None else CropBox(int(vc.frame), (
                float(vc.x), float(vc.y), float(vc.x + vc.width), float(vc.y + vc.height)))
            qp = predict_query(query_frame, qdet, clip_poses, cam, lifter, conf, crop)
            qp.query_frame = query_frame
        if qp.reason:
            log.info("%s query (%d, %s): no 3D prediction: %s", clip_uid, ai, qset, qp.reason)
        else:
            lifted = sum(p.point is not None for p in qp.peaks)
            source = (f"{lifted} lifted peak(s) of {len(qp.peaks)}" if lifted
                      else "the visual crop (no peak lifted)")
            log.info("%s query (%d, %s): %s from %s%s", clip_uid, ai, qset,
                     np.round(qp.pred_3d_vec_world, 3).tolist(), source,
                     "" if qp.query_frame_pose is not None else f"; {qp.query_pose_reason}")
        result.queries.append(qp)
    n_pred = sum(q.pred_3d_vec_world is not None for q in result.queries)
    log.info("%s: %d/%d queries with a 3D prediction (depth %s, aggregation %s)", clip_uid, n_pred,
             len(result.queries), conf["depth"], conf["aggregation"])
    write_clip_predictions(out, result)
    return result


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--detections", required=True, help="per-clip detections (detect stage)")
    parser.add_argument("--poses", required=True, help="the clip's EgoLoc pose JSON")
    parser.add_argument("--sfm-dir", required=True, help="the clip's SfM folder (models/<k>/)")
    parser.add_argument("--scan-from-model", help="pose_merge's scan_from_model.json (without: "
                                                  "each sub-model is fitted to the poses)")
    parser.add_argument("--queries", required=True, help="VQ2D query file of the VQ3D clips")
    parser.add_argument("--intrinsics", required=True, help="scan_to_intrinsics JSON")
    parser.add_argument("--out", required=True, help="per-clip predictions JSON to write")
    parser.add_argument("--clip-uid", required=True)
    parser.add_argument("--scan-uid", required=True)
    parser.add_argument("--depth", choices=["sfm", "triangulate", "scan", "mono"], default="sfm")
    parser.add_argument("--aggregation", choices=list(agg.MODES), default="mf_geomedian")
    parser.add_argument("--mono-checkpoint", help="local TorchScript depth model (depth mono)")
    parser.add_argument("--frames-dir", help="the clip's frames (depth mono only)")
    parser.add_argument("--scan-dir", help="the clip's scan folder (depth scan, and the scan-surface "
                                           "fallback; without it that fallback is skipped)")


def run(args: argparse.Namespace) -> int:
    from ..config import defaults

    conf = {**defaults("predict"), "depth": args.depth, "aggregation": args.aggregation}
    if args.mono_checkpoint:
        conf["mono_checkpoint"] = args.mono_checkpoint
    main(args.detections, args.poses, args.sfm_dir, args.queries, args.intrinsics, args.out,
         args.clip_uid, args.scan_uid, conf, scan_from_model=args.scan_from_model,
         frames_dir=args.frames_dir, scan_dir=args.scan_dir)
    return 0
