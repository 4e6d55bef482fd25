"""Ego4D's VQ2D SiamRCNN (detectron2 + the official vq2d checkpoint), as a thin adapter.

It reproduces episodic-memory VQ2D/extract_vq_detection_scores.py: the reference is the visual
crop with the model's INPUT.REFERENCE_CONTEXT_PAD pixels of context, padded square with value 125
and resized (bilinear on floats, then truncated to uint8, as Ego4D's torch code does) to the
model's INPUT.REFERENCE_SIZE (both read from the model config, as Ego4D does); each frame (RGB, resized to the original size if needed) is downscaled to
`downscale_height` and sent in batches with the reference to `SiamPredictor`; the boxes come back
scaled by 1/scale and truncated to int, as Ego4D does. Scores are the predictor's (in [0, 1]).

detectron2 is not on PyPI: it is imported only when a predictor is built, from the VQ2D checkout
(`vq2d_root` on sys.path: it provides `detectron2_extensions` and `vq2d`). Tests inject a
`predictor` object instead; benchmarks/siamrcnn_random.py runs it on Ego4D's real SiamRCNN
(random weights) where detectron2 is built."""

from __future__ import annotations

import logging
import sys
from pathlib import Path

import cv2
import numpy as np

from ...errors import DependencyError, InputError
from ...formats.clip_detections import ScoredBox
from ..framestore import FrameStore, crop_rect
from .base import FrameBoxes, QueryJob

log = logging.getLogger(__name__)



def build_predictor(conf: dict):
    """SiamPredictor from the VQ2D code base, loading the checkpoint as Ego4D does (detectron2's
    DefaultPredictor); one clear line when it cannot be had."""
    for key in ("config", "checkpoint"):
        if not conf[key]:
            raise InputError(f"config detect.siamrcnn.{key}", "is not set: the siamrcnn backend "
                             "needs the VQ2D model config.yaml and model.pth")
        if not Path(conf[key]).is_file():
            raise InputError(conf[key], f"detect.siamrcnn.{key} does not exist")
    root = conf["vq2d_root"]
    if root:
        if not (Path(root) / "vq2d").is_dir() or not (Path(root) / "detectron2_extensions").is_dir():
            raise InputError(root, "detect.siamrcnn.vq2d_root is not an episodic-memory/VQ2D "
                                   "checkout (no vq2d/ and detectron2_extensions/ in it)")
        if root not in sys.path:
            sys.path.insert(0, root)
    try:
        from detectron2_extensions.config import get_cfg  # type: ignore
        from vq2d.baselines import SiamPredictor  # type: ignore
    except ImportError as exc:
        raise DependencyError(
            f"the siamrcnn backend needs detectron2 and Ego4D's VQ2D code ({exc}); run with "
            "--use-conda (envs/vq2d-detectron2.yaml builds detectron2) and set "
            "detect.siamrcnn.vq2d_root, or use backend 'features' or 'precomputed'") from None
    cfg = get_cfg()
    cfg.set_new_allowed(True)
    cfg.merge_from_file(conf["config"])
    cfg.MODEL.ROI_HEADS.SCORE_THRESH_TEST = conf["score_thresh"]
    cfg.MODEL.WEIGHTS = conf["checkpoint"]
    cfg.MODEL.DEVICE = conf["device"]
    cfg.INPUT.FORMAT = "RGB"
    return SiamPredictor(cfg)


def reference_params(predictor) -> tuple[int, int]:
    """(context pad, size) of the reference window, from the model's own config as Ego4D reads
    them (net.cfg.INPUT.REFERENCE_CONTEXT_PAD, net.cfg.INPUT.REFERENCE_SIZE)."""
    try:
        return int(predictor.cfg.INPUT.REFERENCE_CONTEXT_PAD), int(predictor.cfg.INPUT.REFERENCE_SIZE)
    except AttributeError as exc:
        raise DependencyError(f"the SiamRCNN predictor's config has no INPUT.REFERENCE_CONTEXT_PAD/"
                              f"REFERENCE_SIZE ({exc}): not Ego4D's VQ2D config?") from None


def reference_window(image_rgb: np.ndarray, rect, pad: int, size: int) -> np.ndarray:
    """VQ2D's extract_window_with_context on a numpy image: `pad` pixels of context (clipped to
    the image), padded square with 125, bilinear resize (half-pixel centres, no antialias: torch's
    interpolate(align_corners=False)) on floats, truncated to uint8 like Ego4D's `.byte()`."""
    h, w = image_rgb.shape[:2]
    x1, y1, x2, y2 = (int(v) for v in rect)
    x1, y1, x2, y2 = max(x1 - pad, 0), max(y1 - pad, 0), min(x2 + pad, w), min(y2 + pad, h)
    win = image_rgb[y1:y2, x1:x2].astype(np.float32)
    hh, ww = win.shape[:2]
    if hh != ww:
        d = abs(hh - ww)
        a, b = d // 2, d - d // 2
        pads = ((0, 0), (a, b)) if hh > ww else ((a, b), (0, 0))
        win = np.pad(win, pads + ((0, 0),), constant_values=125)
    out = cv2.resize(win, (size, size), interpolation=cv2.INTER_LINEAR)
    return np.clip(out, 0, 255).astype(np.uint8)


class SiamRCNNBackend:
    name = "siamrcnn"

    def __init__(self, conf: dict, predictor=None):
        self.conf = dict(conf)  # the detect.siamrcnn section (defaults and meaning: the schema)
        self._predictor = predictor

    @property
    def predictor(self):
        if self._predictor is None:
            self._predictor = build_predictor(self.conf)
        return self._predictor

    def _rgb(self, store: FrameStore, fno: int, size) -> np.ndarray:
        img = cv2.cvtColor(store.read(fno), cv2.COLOR_BGR2RGB)
        if img.shape[1] != size[0] or img.shape[0] != size[1]:
            img = cv2.resize(img, size)
        return img

    def detect(self, store: FrameStore, jobs: list[QueryJob], top_k: int) -> dict[tuple[int, str], FrameBoxes]:
        out: dict[tuple[int, str], FrameBoxes] = {}
        c = self.conf
        pad, ref_size = reference_params(self.predictor)
        for job in jobs:
            size = (job.crop.original_width, job.crop.original_height)
            ref_img = self._rgb(store, job.crop.frame, size)
            crop_rect(job.crop, ref_img.shape, job.source)  # a clear error for a bad box
            # Ego4D's ref_bbox on the frame at its original size: (x, y, x + w, y + h), each
            # truncated by int() (not crop_rect's outward rounding)
            c0 = job.crop
            reference = reference_window(ref_img, (c0.x, c0.y, c0.x + c0.width, c0.y + c0.height),
                                         pad, ref_size)
            frames: FrameBoxes = []
            window = list(job.frames)
            for start in range(0, len(window), c["batch_size"]):
                batch = window[start:start + c["batch_size"]]
                images, scales = [], []
                for fno in batch:
                    img = self._rgb(store, fno, size)
                    s = float(c["downscale_height"]) / img.shape[0]
                    images.append(cv2.resize(img, None, fx=s, fy=s))
                    scales.append(s)
                outputs = self.predictor(images, [reference] * len(images))
                for fno, s, o in zip(batch, scales, outputs):
                    inst = o["instances"]
                    boxes = np.asarray(_numpy(inst.pred_boxes.tensor) / s).astype(int)
                    scores = np.asarray(_numpy(inst.scores), float)
                    order = np.argsort(-scores, kind="stable")[:top_k]
                    frames.append((fno, [ScoredBox(*map(float, boxes[i]), float(scores[i])) for i in order]))
            out[job.key] = frames
            log.info("siamrcnn: query %s scored %d frames", job.key, len(frames))
        return out


def _numpy(x):
    return x.detach().cpu().numpy() if hasattr(x, "detach") else np.asarray(x)
