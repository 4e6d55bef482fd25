"""Colour cue of the features backend, for plain objects SIFT cannot see (one colour, no print).

The crop's Lab histogram over the histogram of the rest of its frame (Swain & Ballard's ratio
histogram: colours the crop has and its surroundings lack score high, a wall of the same paint as
the background scores low) is back-projected on each frame; connected regions of high ratio
become boxes, scored by their mean ratio, how much of their box they fill and how well their
aspect ratio agrees with the crop's. Colour alone cannot tell an object from a look-alike of a
near colour or an identical copy; the peak picker and the 3D aggregation have to (docs/benchmarks.md).

Scores are capped at `colour_weight` (below what a SIFT match of ~20 inliers earns), so a textured
match outranks a colour blob; where both agree on a box, the scores combine as independent
evidence: 1 − (1 − s_sift)(1 − s_colour)."""

from __future__ import annotations

import cv2
import numpy as np

from ...formats.clip_detections import ScoredBox

BINS = (4, 16, 16)       # L, a, b: coarse lightness, so auto-exposure changes do not matter much
MAX_SIDE = 480           # colour work at most this large (cheap, and blobs, not detail, matter)
MIN_RATIO = 0.45         # back-projection level that counts as the crop's colour


def _bins(lab: np.ndarray) -> np.ndarray:
    L, a, b = (lab[..., i].astype(np.int32) for i in range(3))
    return (L * BINS[0] // 256) * (BINS[1] * BINS[2]) + (a * BINS[1] // 256) * BINS[2] + b * BINS[2] // 256


def working(img_bgr: np.ndarray) -> tuple[np.ndarray, float]:
    """Lab bin indices of a frame at colour-working scale, and that scale (working / decoded)."""
    h, w = img_bgr.shape[:2]
    s = min(1.0, MAX_SIDE / max(h, w))
    if s < 1.0:
        img_bgr = cv2.resize(img_bgr, (round(w * s), round(h * s)), interpolation=cv2.INTER_AREA)
    img_bgr = cv2.GaussianBlur(img_bgr, (3, 3), 0)  # sensor noise would scatter the bins
    return _bins(cv2.cvtColor(img_bgr, cv2.COLOR_BGR2LAB)), s


class ColourModel:
    """The ratio histogram of one visual crop (rect in colour-working pixels of its frame)."""

    def __init__(self, bins: np.ndarray, rect: tuple[int, int, int, int]):
        x1, y1, x2, y2 = rect
        n = BINS[0] * BINS[1] * BINS[2]
        inside = np.zeros(bins.shape, bool)
        inside[y1:y2, x1:x2] = True
        # The middle of the crop: its border is often background.
        mx, my = (x2 - x1) // 6, (y2 - y1) // 6
        core = bins[y1 + my:y2 - my, x1 + mx:x2 - mx] if (x2 - x1 > 6 and y2 - y1 > 6) else bins[y1:y2, x1:x2]
        obj = np.bincount(core.ravel(), minlength=n).astype(np.float64)
        ctx = np.bincount(bins[~inside].ravel(), minlength=n).astype(np.float64)
        obj /= max(obj.sum(), 1)
        ctx /= max(ctx.sum(), 1)
        ratio = obj / (obj + ctx + 1e-4)
        # Colours covering less than 3 % of the crop are noise, not the object.
        ratio[obj < 0.03] = 0
        self.lut = ratio.astype(np.float32)
        self.w, self.h = max(x2 - x1, 1), max(y2 - y1, 1)
        self.aspect = self.w / self.h
        self.area = float(self.w * self.h)
        self.informative = float((obj * (ratio > MIN_RATIO)).sum())  # crop share in distinctive colours

    def boxes(self, bins: np.ndarray, top_k: int, weight: float) -> list[tuple[float, float, float, float, float]]:
        """(x1, y1, x2, y2, score) in colour-working pixels, best first."""
        if self.informative < 0.25:
            return []  # the crop's colours are its surroundings' too: colour says nothing
        prob = cv2.GaussianBlur(self.lut[bins], (5, 5), 0)
        mask = (prob > MIN_RATIO).astype(np.uint8)
        mask = cv2.morphologyEx(mask, cv2.MORPH_OPEN, np.ones((3, 3), np.uint8))
        n, labels, stats, _ = cv2.connectedComponentsWithStats(mask, connectivity=8)
        out = []
        for i in range(1, n):
            x, y, w, h, area = (int(v) for v in stats[i])
            if area < 12 or not (self.area / 40 < w * h < self.area * 40):
                continue
            fill = area / (w * h)
            mean = float(prob[labels == i].mean()) if area < 20000 else float(prob[y:y + h, x:x + w].mean())
            aspect = np.exp(-abs(np.log((w / h) / self.aspect)))
            score = weight * mean * np.sqrt(fill) * aspect
            out.append((float(x), float(y), float(x + w), float(y + h), float(score)))
        out.sort(key=lambda b: -b[4])
        return out[:top_k]


def _iou(a, b) -> float:
    ix = max(0.0, min(a.x2, b.x2) - max(a.x1, b.x1))
    iy = max(0.0, min(a.y2, b.y2) - max(a.y1, b.y1))
    inter = ix * iy
    union = (a.x2 - a.x1) * (a.y2 - a.y1) + (b.x2 - b.x1) * (b.y2 - b.y1) - inter
    return inter / union if union > 0 else 0.0


def combine(sift: list[ScoredBox], colour: list[ScoredBox], top_k: int) -> list[ScoredBox]:
    """SIFT boxes first; a colour box overlapping one (IoU ≥ 0.3) strengthens it, others join."""
    out = list(sift)
    for c in colour:
        hit = next((k for k, s in enumerate(out) if _iou(s, c) >= 0.3), None)
        if hit is None:
            out.append(c)
        else:
            s = out[hit]
            out[hit] = ScoredBox(s.x1, s.y1, s.x2, s.y2, 1 - (1 - s.score) * (1 - c.score))
    out.sort(key=lambda b: -b.score)
    return out[:top_k]
