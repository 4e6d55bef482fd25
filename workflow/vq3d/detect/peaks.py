"""Detection peaks from per-frame scores.

`vq2d`: Ego4D's VQ2D recipe (episodic-memory VQ2D/perform_vq_inference.py): per-frame max score
(0 for a frame with no box), median filter with an odd kernel (`smoothing`, made odd by +1 as
Ego4D does), `scipy.signal.find_peaks(distance, width, prominence)`, then the MOST RECENT peak whose
smoothed score reaches `min_score`; with none, the top box of the last scored frame (Ego4D's
fallback), or the latest best-scoring frame when that one has no box. One peak per query. The
signal is zero-padded at both ends so that a detection run touching an edge still forms a peak.
`all`: EgoLoc's "keep every peak": every find_peaks peak, one box each (the top box of that frame);
with none, the frame of the highest smoothed score (no peak at all if every score is 0).
"""

from __future__ import annotations

import numpy as np
from scipy.signal import find_peaks, medfilt

from ..formats.clip_detections import Peak, ScoredBox

DEFAULTS = {"method": "vq2d", "smoothing": 5, "distance": 25, "width": 3, "prominence": 0.2,
            "min_score": 0.0}


def score_signal(frames: list[tuple[int, list[ScoredBox]]]) -> np.ndarray:
    return np.array([max((b.score for b in boxes), default=0.0) for _, boxes in frames], float)


def smooth(signal: np.ndarray, smoothing: int) -> np.ndarray:
    kernel = int(smoothing)
    if kernel % 2 == 0:
        kernel += 1
    if kernel <= 1 or signal.size == 0:
        return signal.astype(float)
    return medfilt(signal.astype(float), kernel_size=kernel)


def find_signal_peaks(signal_sm: np.ndarray, conf: dict) -> np.ndarray:
    """Indices of find_peaks peaks of an already smoothed signal.

    The signal is padded with a zero at each end: an object already in view at the first scored
    frame, or still in view just before the query frame, is a peak too (find_peaks alone never
    reports a maximum that touches an edge, which loses exactly the "last seen" case)."""
    if signal_sm.size == 0:
        return np.zeros(0, int)
    padded = np.concatenate([[0.0], signal_sm, [0.0]])
    peaks, _ = find_peaks(padded, distance=conf["distance"], width=conf["width"],
                          prominence=conf["prominence"])
    return peaks - 1


def pick_peaks(frames: list[tuple[int, list[ScoredBox]]], conf: dict | None = None) -> list[Peak]:
    """Peaks of one query's scored frames (ascending frame numbers) by the configured method."""
    conf = {**DEFAULTS, **(conf or {})}
    if not frames:
        return []
    sm = smooth(score_signal(frames), conf["smoothing"])
    idx = find_signal_peaks(sm, conf)

    def peak_at(i: int) -> Peak | None:
        fno, boxes = frames[i]
        return Peak(fno, boxes[0]) if boxes else None

    if conf["method"] == "vq2d":
        for i in idx[::-1]:
            if sm[i] >= conf["min_score"]:
                return [peak_at(int(i))]
        last = peak_at(len(frames) - 1)
        if last is not None:
            return [last]
        # Ego4D's fallback frame has no box: take the latest best-scoring frame instead.
        if sm.max() <= 0:
            return []
        best = peak_at(int(len(sm) - 1 - np.argmax(sm[::-1])))
        return [best] if best is not None else []
    if conf["method"] == "all":
        if idx.size == 0:
            if sm.max() <= 0:
                return []
            idx = np.array([int(np.argmax(sm))])
        return [p for p in (peak_at(int(i)) for i in idx) if p is not None]
    raise ValueError(f"unknown peak method {conf['method']!r} (expected 'vq2d' or 'all')")
