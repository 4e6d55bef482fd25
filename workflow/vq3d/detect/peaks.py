"""Detection peaks from per-frame scores.

`vq2d`: Ego4D's VQ2D recipe exactly (episodic-memory VQ2D/perform_vq_inference.py, the lines after
"Generate a time signal of scores"): per-frame max score (0 for a frame with no box), median
filter with an odd kernel (`smoothing`, made odd by +1 as Ego4D does), `scipy.signal.find_peaks(
distance, width, prominence)` on that signal as it is (no padding), then the MOST RECENT peak
whose smoothed score reaches `min_score` (Ego4D's `signals.peak_similarity_thresh`); with none,
the top box of the last scored frame (`ret_bboxes[-1][0]`). One peak per query. `min_score: null`
takes Ego4D's value for the backend: 0.50 for `siamrcnn` (VQ2D/README.md runs infer_vq.sh with
PEAK_SIMILARITY_THRESH 0.50 for SiamRCNN), else 0.0 (VQ2D/vq2d/config.yaml).
`vq2d_padded`: the same with the smoothed signal zero-padded at both ends, so a detection run
touching an edge (in view at the first scored frame, or still in view just before the query frame,
the "last seen" case find_peaks alone never reports) is a peak too.
`all`: every find_peaks peak of the zero-padded smoothed signal, one box each (the top box of that
frame), at the same distance/width/prominence; with none, the frame of the highest smoothed score.
This is *not* EgoLoc's recipe (its peak code was never published): EgoLoc's released val peak
file has consecutive peaks closer than find_peaks' distance 25 (474 of its 2555 gaps), which no
find_peaks run with distance 25 can produce.

Stage `peaks` (rule peaks, `main`): detect's per-frame boxes in, the same file with every query's
peaks out. It is its own rule so that a peak setting reruns this cheap step, not the detector's
pass over the frames (hours of GPU with SiamRCNN).

Beyond Ego4D (whose SiamRCNN puts a box on every frame): a verifying backend (`features`) leaves
frames without one. So a smoothed peak can sit on a frame with no box (the median fills a
one-frame gap in a run): its box is then the best box within the filter's window, the frame that
made the peak. And where Ego4D's fallback frame has no box, the latest best-scoring frame is
taken, from the raw scores if the median erased a short run. No peak at all only when no frame
has a box.
"""

from __future__ import annotations

import logging

import numpy as np
from scipy.signal import find_peaks, medfilt

from ..errors import InputError
from ..formats.clip_detections import (ClipDetections, Peak, ScoredBox, read_clip_detections,
                                       write_clip_detections)

log = logging.getLogger(__name__)

METHODS = ("vq2d", "vq2d_padded", "all")
# Ego4D's peak similarity threshold per backend (module doc); others: VQ2D/vq2d/config.yaml's 0.0
EGO4D_MIN_SCORE = {"siamrcnn": 0.50}


def min_score_for(conf: dict, backend: str) -> float:
    """The peak similarity threshold: `conf["min_score"]`, or Ego4D's value for `backend`."""
    value = conf["min_score"]
    return float(EGO4D_MIN_SCORE.get(backend, 0.0) if value is None else value)


def score_signal(frames: list[tuple[int, list[ScoredBox]]]) -> np.ndarray:
    return np.array([max((b.score for b in boxes), default=0.0) for _, boxes in frames], float)


def smooth(signal: np.ndarray, smoothing: int) -> np.ndarray:
    kernel = int(smoothing)
    if kernel % 2 == 0:
        kernel += 1
    if kernel <= 1 or signal.size == 0:
        return signal.astype(float)
    return medfilt(signal.astype(float), kernel_size=kernel)


def find_signal_peaks(signal_sm: np.ndarray, conf: dict, *, pad: bool = True) -> np.ndarray:
    """Indices of find_peaks peaks of an already smoothed signal; with `pad`, of the signal with a
    zero at each end (so a maximum touching an edge counts), else exactly Ego4D's call."""
    if signal_sm.size == 0:
        return np.zeros(0, int)
    signal = np.concatenate([[0.0], signal_sm, [0.0]]) if pad else signal_sm
    peaks, _ = find_peaks(signal, distance=conf["distance"], width=conf["width"],
                          prominence=conf["prominence"])
    return peaks - 1 if pad else peaks


def pick_peaks(frames: list[tuple[int, list[ScoredBox]]], conf: dict) -> list[Peak]:
    """Peaks of one query's scored frames (ascending frame numbers) by the configured method;
    `conf`: the detect.peaks section."""
    if not frames:
        return []
    if conf["method"] not in METHODS:
        raise ValueError(f"unknown peak method {conf['method']!r} (expected one of {METHODS})")
    raw = score_signal(frames)
    sm = smooth(raw, conf["smoothing"])
    idx = find_signal_peaks(sm, conf, pad=conf["method"] != "vq2d")
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

    if conf["method"] in ("vq2d", "vq2d_padded"):
        threshold = 0.0 if conf["min_score"] is None else float(conf["min_score"])
        for i in idx[::-1]:
            if sm[i] >= threshold:
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


def no_peak_reason(frames) -> str:
    if not frames:
        return "no frame was scored"
    return f"no frame of {len(frames)} scored before the query frame has a box"


def pick_clip(det: ClipDetections, conf: dict) -> ClipDetections:
    """`det` with each query's peaks picked from its scored frames by `conf` (the detect.peaks
    section; min_score null: Ego4D's threshold for det's backend). A query that arrives with
    peaks (EgoLoc's precomputed peak file: peaks, no scored frames) keeps them."""
    conf = {**conf, "min_score": min_score_for(conf, det.backend)}
    for q in det.queries:
        if not q.peaks:
            q.peaks = pick_peaks(q.frames, conf)
            q.reason = None if q.peaks else (q.reason or no_peak_reason(q.frames))
        if q.peaks:
            log.info("query %s: %d peaks %s", q.key, len(q.peaks), [p.frame for p in q.peaks])
        else:
            log.warning("query %s: no peak: %s", q.key, q.reason)
    return det


def main(detections, out, clip_uid, conf):
    """Stage entry point (rule `peaks`): detect's file `detections` with the peaks of
    `conf["peaks"]` (the detect.peaks section) written to `out`."""
    det = read_clip_detections(detections)
    if det.clip_uid != clip_uid:
        raise InputError(detections, f"clip_uid is {det.clip_uid!r}, expected {clip_uid!r}")
    write_clip_detections(out, pick_clip(det, conf["peaks"]))
