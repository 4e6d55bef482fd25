"""Detection peaks from per-frame scores.

`vq2d`: Ego4D's VQ2D recipe (episodic-memory VQ2D/perform_vq_inference.py): per-frame max score
(0 for a frame with no box), median filter with an odd kernel (`smoothing`, made odd by +1 as
Ego4D does), `scipy.signal.find_peaks(distance, width, prominence)`, then the MOST RECENT peak whose
smoothed score reaches `min_score`; with none, the top box of the last scored frame (Ego4D's
fallback), or the latest best-scoring frame when that one has no box. One peak per query. The
signal is zero-padded at both ends so that a detection run touching an edge still forms a peak.
`all`: EgoLoc's "keep every peak": every find_peaks peak, one box each (the top box of that frame);
with none, the frame of the highest smoothed score.

SiamRCNN puts a box on every frame; a verifying backend (`features`) leaves frames without one.
So a smoothed peak can sit on a frame with no box (the median fills a one-frame gap in a run):
its box is then the best box within the filter's window, the frame that made the peak. And a
detection run shorter than the median's half-width vanishes from the smoothed signal: the
fallback then takes the raw scores. No peak at all only when no frame has a box.
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
    raw = score_signal(frames)
    sm = smooth(raw, conf["smoothing"])
    idx = find_signal_peaks(sm, conf)
    radius = int(conf["smoothing"]) // 2  # the median window is 2 * radius + 1 wide (made odd)

    def peak_at(i: int) -> Peak | None:
        """The peak of smoothed index i on the best boxed frame of its median window (the nearest
        to i, then the latest, on ties); i itself whenever it has a box."""
        if not frames[i][1]:
            lo, hi = max(0, i - radius), min(len(frames), i + radius + 1)
            boxed = [j for j in range(lo, hi) if frames[j][1]]
            if not boxed:
                return None
            i = max(boxed, key=lambda j: (raw[j], -abs(j - i), j))
        fno, boxes = frames[i]
        return Peak(fno, boxes[0])

    def best(signal: np.ndarray, latest: bool = True) -> list[Peak]:
        """The peak at the highest score of `signal` (the latest or the first one); [] if all 0."""
        if signal.max() <= 0:
            return []
        i = len(signal) - 1 - int(np.argmax(signal[::-1])) if latest else int(np.argmax(signal))
        peak = peak_at(i)
        return [peak] if peak is not None else []

    if conf["method"] == "vq2d":
        for i in idx[::-1]:
            if sm[i] >= conf["min_score"]:
                peak = peak_at(int(i))
                if peak is not None:
                    return [peak]
        last = frames[-1]
        if last[1]:
            return [Peak(last[0], last[1][0])]
        # Ego4D's fallback frame has no box: take the latest best-scoring frame instead.
        return best(sm) or best(raw)
    if conf["method"] == "all":
        peaks = {}
        for p in (peak_at(int(i)) for i in idx):
            if p is not None:
                peaks.setdefault(p.frame, p)
        if not peaks:
            return best(sm, latest=False) or best(raw, latest=False)
        return sorted(peaks.values(), key=lambda p: p.frame)
    raise ValueError(f"unknown peak method {conf['method']!r} (expected 'vq2d' or 'all')")
