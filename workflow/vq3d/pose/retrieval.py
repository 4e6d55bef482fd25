"""Loop-closure pairs for pose_sfm by image retrieval, at a cost linear in the clip's frames.

Every `stride`-th frame is a keyframe. Each keyframe gets a global descriptor: VLAD of its SIFT
descriptors (RootSIFT, residuals to a small codebook k-means-trained on the clip's own keyframes,
intra-normalised, signed square root, L2), so nothing is downloaded and no vocabulary tree file is
needed. Each keyframe is then paired with its `candidates` most similar keyframes more than
`overlap` frames away (sequential matching covers the nearer ones): at most
`candidates × frames / stride` pairs, where matching every keyframe with every other (the old
scheme) grew with the square of the clip (~28,700 pairs at 2,400 frames, stride 10).
"""

from __future__ import annotations

import logging
from pathlib import Path

import cv2
import numpy as np
import pycolmap

log = logging.getLogger(__name__)

WORDS = 64             # VLAD codebook size (64 × 128 = 8,192-dimensional descriptors)
TRAIN_PER_IMAGE = 100  # descriptors per keyframe sampled for the codebook
TRAIN_MAX = 40_000


def keyframe_indices(n_frames: int, stride: int) -> list[int]:
    return list(range(0, n_frames, max(1, stride)))


def rootsift(desc: np.ndarray) -> np.ndarray:
    d = desc.astype(np.float32)
    d /= np.maximum(d.sum(1, keepdims=True), 1e-9)
    return np.sqrt(d)


def codebook(descs: list[np.ndarray], words: int, seed: int) -> np.ndarray:
    rng = np.random.default_rng(seed)
    per = max(1, min(TRAIN_PER_IMAGE, TRAIN_MAX // max(len(descs), 1)))
    sample = np.concatenate([d[rng.choice(len(d), min(per, len(d)), replace=False)]
                             for d in descs if len(d)])
    k = max(1, min(words, len(sample)))
    cv2.setRNGSeed(seed)
    crit = (cv2.TERM_CRITERIA_EPS + cv2.TERM_CRITERIA_MAX_ITER, 20, 1e-4)
    _, _, centres = cv2.kmeans(sample, k, None, crit, 1, cv2.KMEANS_PP_CENTERS)
    return centres


def vlad(desc: np.ndarray, centres: np.ndarray) -> np.ndarray:
    """One image's VLAD vector (unit length; zeros for an image without features)."""
    k, dim = centres.shape
    if not len(desc):
        return np.zeros(k * dim, np.float32)
    d2 = (desc ** 2).sum(1)[:, None] - 2 * desc @ centres.T + (centres ** 2).sum(1)[None]
    word = d2.argmin(1)
    v = np.zeros((k, dim), np.float32)
    np.add.at(v, word, desc - centres[word])
    v /= np.maximum(np.linalg.norm(v, axis=1, keepdims=True), 1e-9)  # intra-normalisation
    v = np.sign(v) * np.sqrt(np.abs(v))
    v = v.ravel()
    return v / max(float(np.linalg.norm(v)), 1e-9)


def global_descriptors(descs: list[np.ndarray], words: int = WORDS, seed: int = 0) -> np.ndarray:
    """VLAD (rows, unit length) of images given their raw SIFT descriptors (uint8 or float)."""
    root = [rootsift(d) for d in descs]
    centres = codebook(root, words, seed)
    return np.stack([vlad(d, centres) for d in root])


def retrieval_pairs(frames: list[int], gdesc: np.ndarray, candidates: int,
                    overlap: int) -> list[tuple[int, int]]:
    """Pairs (i, j), i < j, of positions in `frames`: each keyframe with its `candidates` most
    similar keyframes whose frame numbers differ by more than `overlap`; deduplicated."""
    if candidates <= 0 or len(frames) < 2:
        return []
    f = np.asarray(frames)
    sim = gdesc @ gdesc.T
    sim[np.abs(f[:, None] - f[None]) <= overlap] = -np.inf
    pairs = set()
    k = min(candidates, len(frames) - 1)
    for i in range(len(frames)):
        best = np.argpartition(-sim[i], k - 1)[:k]
        for j in best:
            if np.isfinite(sim[i, j]):
                pairs.add((min(i, int(j)), max(i, int(j))))
    return sorted(pairs)


def read_descriptors(database: Path, names: list[str]) -> list[np.ndarray]:
    db = pycolmap.Database.open(str(database))
    try:
        ids = {img.name: img.image_id for img in db.read_all_images()}
        return [np.asarray(db.read_descriptors(ids[n]).data) for n in names]
    finally:
        db.close()


def loop_pairs(database: Path, names: list[str], stride: int, overlap: int, candidates: int,
               seed: int = 0) -> list[tuple[str, str]]:
    """Retrieval loop-closure pairs (image names) of the clip frames `names` (in frame order)."""
    keys = keyframe_indices(len(names), stride)
    if len(keys) < 2 or candidates <= 0:
        return []
    gdesc = global_descriptors(read_descriptors(database, [names[k] for k in keys]), seed=seed)
    pairs = retrieval_pairs(keys, gdesc, candidates, overlap)
    return [(names[keys[i]], names[keys[j]]) for i, j in pairs]


def exhaustive_pairs(names: list[str], stride: int, overlap: int) -> list[tuple[str, str]]:
    """Every keyframe against every other (more than `overlap` frames apart): quadratic; kept to
    measure against (pose.sfm_loop_pairs: exhaustive)."""
    keys = keyframe_indices(len(names), stride)
    return [(names[a], names[b]) for i, a in enumerate(keys) for b in keys[i + 1:] if b - a > overlap]
