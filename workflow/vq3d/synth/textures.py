"""Procedural textures (BGR uint8) with the kind of detail SIFT finds in real rooms: multi-scale
noise, tiles, wood grain, posters and text-like marks, plus deliberately low-texture paint.

Every function takes a numpy Generator, so a scene's pixels depend only on its seed."""

from __future__ import annotations

import string

import cv2
import numpy as np

PX_PER_M = 200  # texture resolution of room surfaces: sharp at ~1 m with f≈400 px


def noise(rng: np.random.Generator, h: int, w: int, octaves: int = 6, persistence: float = 0.55) -> np.ndarray:
    """Multi-scale value noise in [-1, 1] (float32, h×w): sums of upsampled random grids."""
    out = np.zeros((h, w), np.float32)
    amp, total = 1.0, 0.0
    for o in range(octaves):
        cells = 2 ** (o + 1)
        gh, gw = max(2, h * cells // max(h, w)), max(2, w * cells // max(h, w))
        grid = rng.standard_normal((gh + 1, gw + 1)).astype(np.float32)
        out += amp * cv2.resize(grid, (w, h), interpolation=cv2.INTER_CUBIC)
        total += amp
        amp *= persistence
    out /= total
    return np.clip(out / (3 * out.std() + 1e-6), -1, 1)


def colorize(field: np.ndarray, base, contrast: float) -> np.ndarray:
    """Map a [-1, 1] field around a BGR base colour."""
    base = np.asarray(base, np.float32)
    img = base[None, None, :] * (1.0 + contrast * field[..., None])
    return np.clip(img, 0, 255).astype(np.uint8)


def random_color(rng: np.random.Generator, sat=(0.3, 0.9), val=(0.4, 0.95)) -> tuple[int, int, int]:
    hsv = np.uint8([[[rng.integers(0, 180), int(255 * rng.uniform(*sat)), int(255 * rng.uniform(*val))]]])
    return tuple(int(c) for c in cv2.cvtColor(hsv, cv2.COLOR_HSV2BGR)[0, 0])


def text_marks(rng: np.random.Generator, img: np.ndarray, n: int, scale=(0.4, 1.2), color=None) -> None:
    """Scatter short random strings (in place): the strongest SIFT features of real labels."""
    h, w = img.shape[:2]
    for _ in range(n):
        s = "".join(rng.choice(list(string.ascii_uppercase + string.digits), rng.integers(2, 8)))
        sc = float(rng.uniform(*scale))
        col = color if color is not None else random_color(rng, val=(0.0, 0.6))
        org = (int(rng.integers(0, max(1, w - 20))), int(rng.integers(12, max(13, h))))
        cv2.putText(img, s, org, int(rng.choice([0, 2, 3, 4])), sc, col, max(1, int(sc * 2)), cv2.LINE_AA)


def painted_wall(rng, h, w, low_texture: bool = False) -> np.ndarray:
    base = random_color(rng, sat=(0.05, 0.35), val=(0.6, 0.9))
    img = colorize(noise(rng, h, w), base, 0.03 if low_texture else 0.18)
    if not low_texture:  # scuffs, marks, switches: sparse structure
        for _ in range(int(w * h / 40000)):
            c = random_color(rng, val=(0.2, 0.7))
            x, y = int(rng.integers(0, w)), int(rng.integers(0, h))
            r = int(rng.integers(3, 25))
            if rng.random() < 0.5:
                cv2.circle(img, (x, y), r, c, -1, cv2.LINE_AA)
            else:
                cv2.rectangle(img, (x, y), (x + 2 * r, y + int(1.5 * r)), c, -1)
        text_marks(rng, img, int(w * h / 60000))
    return img


def tiles(rng, h, w, tile_px: int = 60) -> np.ndarray:
    base = np.asarray(random_color(rng, sat=(0.05, 0.4), val=(0.5, 0.9)), np.float32)
    img = colorize(noise(rng, h, w, octaves=7), base, 0.12)
    ny, nx = h // tile_px + 1, w // tile_px + 1
    shade = cv2.resize((1 + 0.12 * rng.standard_normal((ny, nx))).astype(np.float32), (nx * tile_px, ny * tile_px),
                       interpolation=cv2.INTER_NEAREST)[:h, :w]
    img = np.clip(img * shade[..., None], 0, 255).astype(np.uint8)
    grout = tuple(int(c * 0.45) for c in base)
    for x in range(0, w, tile_px):
        cv2.line(img, (x, 0), (x, h), grout, 2)
    for y in range(0, h, tile_px):
        cv2.line(img, (0, y), (w, y), grout, 2)
    return img


def wood(rng, h, w) -> np.ndarray:
    base = np.asarray([40 + rng.integers(0, 30), 90 + rng.integers(0, 40), 140 + rng.integers(0, 50)], np.float32)
    yy = np.arange(h, dtype=np.float32)[:, None] / h
    warp = noise(rng, h, w, octaves=4)
    grain = np.sin((yy * rng.uniform(20, 40) + 1.5 * warp) * 2 * np.pi)
    field = 0.6 * grain + 0.4 * noise(rng, h, w, octaves=7)
    img = colorize(field, base, 0.25)
    for y in rng.integers(0, h, int(h / 120) + 1):  # plank seams
        cv2.line(img, (0, int(y)), (w, int(y)), tuple(int(c * 0.4) for c in base), 2)
    return img


def poster(rng, h, w) -> np.ndarray:
    """Bold shapes, stripes and text: a picture/poster/notice board."""
    img = np.full((h, w, 3), random_color(rng, val=(0.6, 1.0)), np.uint8)
    for _ in range(int(rng.integers(6, 14))):
        c = random_color(rng)
        kind = rng.integers(0, 3)
        x, y = int(rng.integers(0, w)), int(rng.integers(0, h))
        s = int(rng.integers(min(h, w) // 12, min(h, w) // 3))
        if kind == 0:
            cv2.circle(img, (x, y), s, c, -1, cv2.LINE_AA)
        elif kind == 1:
            cv2.rectangle(img, (x, y), (x + s, y + int(s * rng.uniform(0.3, 1.5))), c, -1)
        else:
            pts = rng.integers(0, [w, h], (3, 2)).astype(np.int32)
            cv2.fillConvexPoly(img, pts, c, cv2.LINE_AA)
    text_marks(rng, img, int(rng.integers(3, 10)), scale=(0.6, 2.0))
    cv2.rectangle(img, (0, 0), (w - 1, h - 1), (20, 20, 20), max(2, w // 60))
    return img


def label_texture(rng, h: int, w: int, palette: tuple, title: str, seed_marks: int) -> np.ndarray:
    """A product-like face (query objects and their look-alikes): strong colours, a big logo and
    text. `palette` (3 BGR colours) and `seed_marks` set the look, so a distractor built with a
    different palette/marks has the same shape but a different appearance."""
    bg, fg, accent = palette
    img = np.full((h, w, 3), bg, np.uint8)
    r = np.random.default_rng(seed_marks)
    band = int(h * r.uniform(0.2, 0.35))
    cv2.rectangle(img, (0, int(h * r.uniform(0.1, 0.5))), (w, int(h * r.uniform(0.1, 0.5)) + band), fg, -1)
    cv2.circle(img, (int(w * r.uniform(0.25, 0.75)), int(h * r.uniform(0.3, 0.7))), int(min(h, w) * r.uniform(0.15, 0.3)),
               accent, -1, cv2.LINE_AA)
    for i in range(int(r.integers(3, 7))):
        x = int(w * r.uniform(0, 0.9))
        cv2.line(img, (x, 0), (x + int(w * 0.1), h), accent, max(1, w // 40))
    sc = max(0.3, w / 160)
    cv2.putText(img, title[:6].upper(), (int(w * 0.05), int(h * 0.9)), 2, sc, (255, 255, 255), max(1, int(sc * 2)), cv2.LINE_AA)
    cv2.putText(img, title[:6].upper(), (int(w * 0.05), int(h * 0.9)), 2, sc, (0, 0, 0), 1, cv2.LINE_AA)
    text_marks(r, img, 6, scale=(0.3, 0.8), color=(10, 10, 10))
    cv2.rectangle(img, (0, 0), (w - 1, h - 1), fg, max(1, w // 50))
    return img


def pyramid(img: np.ndarray, min_side: int = 4) -> list[np.ndarray]:
    """Mip levels (level L is 2^-L scale), so a far surface is sampled without aliasing."""
    levels = [img]
    while min(levels[-1].shape[:2]) >= 2 * min_side:
        levels.append(cv2.pyrDown(levels[-1]))
    return levels
