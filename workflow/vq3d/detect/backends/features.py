"""Weight-free default backend: SIFT keypoints of the visual crop matched to each frame, verified
geometrically.

Per frame: RootSIFT descriptors (at most `max_keypoints`, frame downscaled to `max_side`, or
upsampled to `min_side` when smaller: a 25-pixel object in 192×144 video has almost no keypoints
at native scale, tests/test_detect.py) are
matched to each crop's descriptors by a dot-product nearest neighbour with Lowe's ratio test and a
mutual check; a homography (cv2.USAC_MAGSAC) is fitted, or a 4-DoF similarity when too few matches
support it; the box is the bounding box of the crop's corners mapped by that transform. Further
boxes (top-k) come from refitting on the matches the previous models left over. The score is
`n / (n + score_scale)` for n inliers (0 below `min_inliers`): a smooth, monotone map to [0, 1) in
which 20 inliers give 0.5 at the default scale. Texture, not shape, has to agree, so a distractor of
the same outline but a different pattern finds no consistent matches.

With `colour` on, a colour cue (vq3d.detect.backends.colour: the crop's ratio histogram
back-projected) adds boxes where plain, printless objects give SIFT nothing, and strengthens the
SIFT boxes it agrees with. `colour: auto` turns it on per query, only for visual crops with fewer
than `colour_auto_max_keypoints` SIFT keypoints: on textured objects colour blobs of the object's
dominant colour elsewhere would outscore the right SIFT match (docs/benchmarks.md).

Each frame is read and described once for all queries of the clip; frames are processed by a pool
of threads (OpenCV releases the GIL)."""

from __future__ import annotations

import logging
import os
import threading
from concurrent.futures import ThreadPoolExecutor

import cv2
import numpy as np

from ...formats.clip_detections import ScoredBox
from ...progress import Progress
from ..framestore import FrameStore, crop_rect
from . import colour as colour_cue
from .base import FrameBoxes, QueryJob, scale_box

log = logging.getLogger(__name__)



def _rootsift(desc: np.ndarray | None) -> np.ndarray:
    """Hellinger-normalised SIFT (RootSIFT): dot products become a better similarity."""
    if desc is None or len(desc) == 0:
        return np.zeros((0, 128), np.float32)
    desc = desc.astype(np.float32)
    desc /= desc.sum(axis=1, keepdims=True) + 1e-7
    return np.sqrt(desc)


class _Crop:
    """A visual crop's keypoints, in working-frame pixels, and its corners."""

    def __init__(self, pts: np.ndarray, desc: np.ndarray, corners: np.ndarray, colour=None):
        self.pts, self.desc, self.corners = pts, desc, corners
        self.area = float(cv2.contourArea(corners.astype(np.float32)))
        self.colour = colour  # colour_cue.ColourModel, or None


class FeaturesBackend:
    name = "features"

    def __init__(self, conf: dict):
        self.conf = dict(conf)  # the detect.features section (defaults and meaning: the schema)
        self._local = threading.local()

    # -- features ---------------------------------------------------------------------------
    def _sift(self, nfeatures: int):
        cache = self._local.__dict__.setdefault("sift", {})
        if nfeatures not in cache:
            cache[nfeatures] = cv2.SIFT_create(nfeatures=nfeatures)
        return cache[nfeatures]

    def _working(self, img: np.ndarray) -> tuple[np.ndarray, float]:
        """Downscale to max_side; returns the image and its scale (working / decoded)."""
        h, w = img.shape[:2]
        s = min(1.0, self.conf["max_side"] / max(h, w))
        s = max(s, min(self.conf["min_side"], self.conf["max_side"]) / max(h, w))
        if s < 1.0:
            img = cv2.resize(img, (round(w * s), round(h * s)), interpolation=cv2.INTER_AREA)
        elif s > 1.0:
            # Small objects in low-resolution video have too few SIFT keypoints at native scale.
            img = cv2.resize(img, (round(w * s), round(h * s)), interpolation=cv2.INTER_CUBIC)
        return img, s

    def describe_frame(self, img: np.ndarray):
        kps, desc = self._sift(self.conf["max_keypoints"]).detectAndCompute(img, None)
        pts = np.array([k.pt for k in kps], np.float32).reshape(-1, 2)
        return pts, _rootsift(desc)

    def describe_crop(self, store: FrameStore, job: QueryJob) -> _Crop:
        img, _ = self._working(store.read(job.crop.frame, gray=True))
        x1, y1, x2, y2 = crop_rect(job.crop, img.shape, job.source)
        patch = img[y1:y2, x1:x2]
        up = max(1.0, self.conf["crop_min_side"] / min(patch.shape))
        if up > 1.0:
            patch = cv2.resize(patch, None, fx=up, fy=up, interpolation=cv2.INTER_CUBIC)
        kps, desc = self._sift(0).detectAndCompute(patch, None)
        pts = np.array([k.pt for k in kps], np.float32).reshape(-1, 2) / up + (x1, y1)
        corners = np.array([[x1, y1], [x2, y1], [x2, y2], [x1, y2]], np.float32)
        if len(pts) < self.conf["min_inliers"]:
            log.warning("%s: visual crop of query %s has only %d keypoints: it will rarely be "
                        "found (textureless or tiny crop)", job.source, job.key, len(pts))
        model = None
        use_colour = self.uses_colour(len(pts))
        log.info("%s: visual crop of query %s: %d SIFT keypoints, colour cue %s (colour: %s)",
                 job.source, job.key, len(pts), "on" if use_colour else "off", self.conf["colour"])
        if use_colour:
            bins, _ = colour_cue.working(store.read(job.crop.frame))
            model = colour_cue.ColourModel(bins, crop_rect(job.crop, bins.shape, job.source))
        return _Crop(pts, _rootsift(desc), corners, model)

    def uses_colour(self, crop_keypoints: int) -> bool:
        """Whether a query whose visual crop has `crop_keypoints` SIFT keypoints gets the colour
        cue: always (colour true), never (false), or only textureless crops (auto)."""
        mode = self.conf["colour"]
        if mode == "auto":
            return crop_keypoints < self.conf["colour_auto_max_keypoints"]
        return bool(mode)

    # -- matching and verification ----------------------------------------------------------
    def match(self, crop: _Crop, pts: np.ndarray, desc: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Ratio-tested, mutual nearest-neighbour matches: (crop points, frame points)."""
        if len(crop.desc) < 2 or len(desc) < 2:
            return np.zeros((0, 2), np.float32), np.zeros((0, 2), np.float32)
        sim = crop.desc @ desc.T
        top2 = np.argpartition(-sim, 1, axis=1)[:, :2]
        rows = np.arange(len(sim))
        s1, s2 = sim[rows, top2[:, 0]], sim[rows, top2[:, 1]]
        swap = s2 > s1
        best = np.where(swap, top2[:, 1], top2[:, 0])
        s1, s2 = np.maximum(s1, s2), np.minimum(s1, s2)
        # unit vectors: squared distance = 2 - 2 * similarity
        d1 = np.sqrt(np.maximum(2 - 2 * s1, 0))
        d2 = np.sqrt(np.maximum(2 - 2 * s2, 0))
        ok = d1 < self.conf["ratio"] * d2
        ok &= np.argmax(sim, axis=0)[best] == rows
        return crop.pts[ok], pts[best[ok]]

    def _plausible(self, crop: _Crop, quad: np.ndarray, shape) -> bool:
        if not np.all(np.isfinite(quad)) or not cv2.isContourConvex(quad.astype(np.float32)):
            return False
        area = float(cv2.contourArea(quad.astype(np.float32)))
        ratio = area / max(crop.area, 1e-6)
        if not (1 / 400 < ratio < 400):
            return False
        h, w = shape[:2]
        bx1, by1 = quad.min(axis=0)
        bx2, by2 = quad.max(axis=0)
        return bx2 > 0 and by2 > 0 and bx1 < w and by1 < h

    def verify(self, crop: _Crop, src: np.ndarray, dst: np.ndarray, shape, top_k: int):
        """Sequential RANSAC: up to top_k (box quad, inliers) from the matches."""
        found = []
        min_in = self.conf["min_inliers"]
        while len(found) < top_k and len(src) >= min_in:
            quad, mask = None, None
            if len(src) >= max(min_in, 8):
                H, m = cv2.findHomography(src, dst, cv2.USAC_MAGSAC, self.conf["ransac_px"],
                                          maxIters=2000, confidence=0.999)
                if H is not None:
                    q = cv2.perspectiveTransform(crop.corners[None], H)[0]
                    if self._plausible(crop, q, shape) and np.linalg.det(H[:2, :2]) > 0:
                        quad, mask = q, m.ravel().astype(bool)
            if quad is None:
                A, m = cv2.estimateAffinePartial2D(src, dst, method=cv2.RANSAC,
                                                   ransacReprojThreshold=self.conf["ransac_px"])
                if A is None:
                    break
                q = crop.corners @ A[:, :2].T + A[:, 2]
                if not self._plausible(crop, q, shape):
                    break
                quad, mask = q, m.ravel().astype(bool)
            n = int(mask.sum())
            if n < min_in:
                break
            found.append((quad, n))
            src, dst = src[~mask], dst[~mask]
        return found

    def score(self, inliers: int) -> float:
        return inliers / (inliers + self.conf["score_scale"])

    # -- the backend ------------------------------------------------------------------------
    def frame_boxes(self, img: np.ndarray, crops: list[_Crop], jobs: list[QueryJob],
                    top_k: int, colour_bins: np.ndarray | None = None) -> list[list[ScoredBox]]:
        """Boxes of one working-scale frame against each crop, in each query's original pixels;
        `colour_bins`: the frame at colour-working scale (colour_cue.working), for the colour cue."""
        pts, desc = self.describe_frame(img)
        h, w = img.shape[:2]
        out = []
        for crop, job in zip(crops, jobs):
            size = (job.crop.original_width, job.crop.original_height)
            src, dst = self.match(crop, pts, desc)
            boxes = []
            for quad, n in self.verify(crop, src, dst, img.shape, top_k):
                x1, y1 = quad.min(axis=0)
                x2, y2 = quad.max(axis=0)
                boxes.append(scale_box(x1, y1, x2, y2, size[0] / w, size[1] / h, self.score(n), size))
            boxes.sort(key=lambda b: -b.score)
            if crop.colour is not None and colour_bins is not None:
                ch, cw = colour_bins.shape
                found = [scale_box(x1, y1, x2, y2, size[0] / cw, size[1] / ch, sc, size)
                         for x1, y1, x2, y2, sc in crop.colour.boxes(colour_bins, top_k, self.conf["colour_weight"])]
                boxes = colour_cue.combine(boxes, found, top_k)
            out.append(boxes)
        return out

    def detect(self, store: FrameStore, jobs: list[QueryJob], top_k: int) -> dict[tuple[int, str], FrameBoxes]:
        crops = [self.describe_crop(store, j) for j in jobs]
        stop = max((j.query_frame for j in jobs), default=0)
        results: dict[tuple[int, str], FrameBoxes] = {j.key: [] for j in jobs}

        colour = any(c.colour is not None for c in crops)  # some query uses the colour cue

        def work(fno: int):
            active = [i for i, j in enumerate(jobs) if fno < j.query_frame]
            img, _ = self._working(store.read(fno, gray=True))  # SIFT on the JPEG's own luma
            bins = colour_cue.working(store.read(fno))[0] if colour else None
            boxes = self.frame_boxes(img, [crops[i] for i in active], [jobs[i] for i in active], top_k, bins)
            return fno, dict(zip(active, boxes))

        threads = self.conf["threads"] or len(os.sched_getaffinity(0))
        scored = Progress(log, "scored", stop, unit="frames")
        with ThreadPoolExecutor(max_workers=threads) as pool:
            for fno, per_job in pool.map(work, range(stop)):
                for i, boxes in per_job.items():
                    results[jobs[i].key].append((fno, boxes))
                scored.update()
        scored.done()
        return results

