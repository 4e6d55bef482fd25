"""The hard synthetic tier (`synth.preset: hard`): what real egocentric VQ3D data looks like.

Calibrated to the real anchors through hard_stats.json (derived by
benchmarks/hard_anchor_stats.py --write-table from Ego4D's scan_to_intrinsics.json and EgoLoc's
vq_val_vq3d.json; the anchor files themselves are never shipped):
- cameras: the five real RADIAL_FISHEYE calibrations (1440×1080 and 1920×1080), one per scene in
  turn, times the variant's resolution factor;
- clip durations, query-frame positions, response-track lengths, track-to-query gaps,
  visual-crop sizes and positions: drawn by inverse CDF from the anchors' quantiles, and the
  head-mounted trajectory is planned so that the rendered sightings follow the draws (the
  annotations are still read from the rendered id buffers: what is drawn is the plan, what is
  measured is the rendering, compared in docs/benchmarks.md).
Not in the anchors, so set from physics and stated as such: head angular speeds (rate-limited
gaze shifts up to HEAD_MAX_DEG_S plus walking jitter), motion blur along the image motion of that
rotation during the exposure, auto-exposure with lag and white-balance drift, shot + read noise
amplified by the gain, H.264 at BITS_PER_PIXEL, hands passing in front of the lens.

Scenes: low-texture painted walls with few posters, plain one-colour objects with little print,
repeated identical instances and look-alike distractors (same shape, near hue), more clutter.

Variants (SCALES): `full` is the calibration as measured; `ci` scales resolution by 1/4 and time
by 1/30 (a 480 s clip becomes 16 s) — a scaled-down variant for tests and CPU benchmarks, not the
calibration itself. What it keeps: response tracks' length in frames, crop sizes relative to the
frame, head-turn speeds, dwell times, blur in proportion to the image; what it changes: the
picture is the full-scale one seen smaller (sensor noise per pixel × 1/4, bit rate × 1/4 rather
than × 1/16), walks between planned sightings are faster (at most 0.5 s instead of 2 s), and a
track-to-query gap is at least the anchors' 5th percentile in frames (9).
"""

from __future__ import annotations

from functools import lru_cache
from pathlib import Path

import cv2
import numpy as np
from scipy.ndimage import gaussian_filter1d

from ..formats.hard_stats import read_hard_stats
from . import textures as tx
from .camera import Fisheye, cam_from_world, look_rotation, yaw_pitch_forward
from .scene import Scene, SceneObject, _object_faces, _tex, furnish_walls, spot_on_a_table

SCALES = {"full": (1.0, 1.0), "ci": (0.25, 1 / 30)}   # (resolution factor, time factor)
CLIP_FPS = 5
HEAD_MAX_DEG_S = 180.0     # gaze-shift speed limit (head turns; fast ones blur)
WALK_SPEED = 1.1           # m/s
BITS_PER_PIXEL = 0.064     # H.264: 4 Mbit/s at 1920×1080, 30 fps (assumed; the anchors hold no video)
EXPOSURE_S = (1 / 120, 1 / 50)   # base exposure range; auto-exposure lengthens it up to a frame time
READ_NOISE = 2.5           # grey levels at unit gain
SHOT_NOISE = 0.35          # variance per grey level at unit gain
EYE = 1.6


@lru_cache(maxsize=1)
def stats() -> dict:
    return read_hard_stats(Path(__file__).with_name("hard_stats.json"))


def draw(rng: np.random.Generator, name: str) -> float:
    """One value of an anchor quantity, by inverse CDF over its quantile table."""
    t = stats()
    return float(np.interp(rng.random(), t["levels"], t["quantiles"][name]))


def camera(seed: int, scene: int, scale: str) -> Fisheye:
    """The real calibration of scene `scene` (the table's cameras in turn from the seed),
    scaled to the variant's resolution (f, cx, cy scale with the pixels; k1, k2 do not)."""
    cams = stats()["cameras"]
    c = cams[(seed + scene) % len(cams)]
    s = SCALES[scale][0]
    W, H = 2 * int(round(c["width"] * s / 2)), 2 * int(round(c["height"] * s / 2))
    return Fisheye(W, H, f=c["f"] * W / c["width"], cx=c["cx"] * W / c["width"], cy=c["cy"] * H / c["height"],
                   k1=c["k1"], k2=c["k2"])


def clip_durations(rng: np.random.Generator, n: int, scale: str) -> list[float]:
    """Clip lengths in seconds on the 5 fps grid (at least 4 s)."""
    ts = SCALES[scale][1]
    return [max(4.0, round(draw(rng, "duration_s") * ts * CLIP_FPS) / CLIP_FPS) for _ in range(n)]


# ------------------------------------------------------------------------------ scene

def _plain_face(rng, h, w, colour, print_seed=None):
    """One colour, soft shading, at most a small mark: a plain object's face."""
    img = tx.colorize(tx.noise(rng, h, w, octaves=4), colour, 0.04)
    if print_seed is not None:
        r = np.random.default_rng(print_seed)
        c = tuple(int(v * 0.55) for v in colour)
        x, y = int(w * r.uniform(0.2, 0.6)), int(h * r.uniform(0.3, 0.7))
        cv2.rectangle(img, (x, y), (x + max(2, w // 6), y + max(2, h // 10)), c, -1)
    return img


def _plain_box_faces(rng, size, colour, print_seed):
    px = 400
    sx, sy, sz = size
    dims = {"front": (sy, sz), "back": (sy, sz), "left": (sx, sz), "right": (sx, sz), "top": (sy, sx)}
    return {k: _plain_face(rng, max(8, int(h * px)), max(8, int(w * px)), colour,
                           print_seed if k == "front" else None) for k, (w, h) in dims.items()}


def _busy(rng, w_m, h_m, px=300):
    """Workshop stock: a tool board / stacked shelves, many small items and labels (dense detail)."""
    h, w = max(16, int(h_m * px)), max(16, int(w_m * px))
    img = tx.colorize(tx.noise(rng, h, w, octaves=6), tx.random_color(rng, sat=(0.05, 0.4), val=(0.3, 0.7)), 0.25)
    for _ in range(int(w * h / 900)):
        c = tx.random_color(rng, sat=(0.0, 0.9), val=(0.1, 0.95))
        x, y = int(rng.integers(0, w)), int(rng.integers(0, h))
        r = int(rng.integers(3, 18))
        k = rng.integers(0, 4)
        if k == 0:
            cv2.rectangle(img, (x, y), (x + int(r * rng.uniform(0.5, 3)), y + r), c, -1)
        elif k == 1:
            cv2.circle(img, (x, y), r // 2 + 1, c, -1, cv2.LINE_AA)
        elif k == 2:
            cv2.line(img, (x, y), (x + int(rng.integers(-30, 30)), y + int(rng.integers(5, 40))), c, 2, cv2.LINE_AA)
        else:
            cv2.rectangle(img, (x, y), (x + r, y + 2 * r), c, 1)
    tx.text_marks(rng, img, int(w * h / 5000), scale=(0.3, 0.7))
    return img


def _near_colour(rng, colour, hue_shift=8):
    hsv = cv2.cvtColor(np.uint8([[colour]]), cv2.COLOR_BGR2HSV)[0, 0].astype(int)
    hsv[0] = (hsv[0] + int(rng.choice([-1, 1])) * int(rng.integers(3, hue_shift + 1))) % 180
    hsv[1] = int(np.clip(hsv[1] + rng.integers(-25, 26), 30, 255))
    hsv[2] = int(np.clip(hsv[2] + rng.integers(-25, 26), 40, 255))
    return tuple(int(c) for c in cv2.cvtColor(np.uint8([[hsv]]), cv2.COLOR_HSV2BGR)[0, 0])


def build_scene(rng: np.random.Generator, n_queries: int) -> Scene:
    """A room with bare walls and plain, repeated, look-alike objects (object kinds: query,
    distractor (a look-alike: same shape, near colour), repeat (an identical copy), clutter)."""
    W, D, H = rng.uniform(5.0, 7.0), rng.uniform(4.0, 5.5), rng.uniform(2.5, 2.8)
    sc = Scene(size=np.array([W, D, H]))
    z = np.array([0, 0, 1.0])
    floor = _tex(rng, D, W, rng.choice(["tiles", "wood"]))
    grime = tx.noise(rng, *floor.shape[:2], octaves=8, persistence=0.8)  # worn, stained floor
    floor = np.clip(floor * (1 + 0.35 * grime[..., None]), 0, 255).astype(np.uint8)
    tx.text_marks(rng, floor, int(floor.size / 3 / 20000), scale=(0.3, 0.8))  # litter, marks
    sc.add_face([W / 2, D / 2, 0], z, [1, 0, 0], D, W, floor)
    sc.add_face([W / 2, D / 2, H], -z, [1, 0, 0], D, W, _tex(rng, D, W, "plain"))
    walls = [(np.array([W / 2, 0, H / 2]), np.array([0, 1.0, 0]), W, np.array([1.0, 0, 0])),
             (np.array([W, D / 2, H / 2]), np.array([-1.0, 0, 0]), D, np.array([0, 1.0, 0])),
             (np.array([W / 2, D, H / 2]), np.array([0, -1.0, 0]), W, np.array([-1.0, 0, 0])),
             (np.array([0, D / 2, H / 2]), np.array([1.0, 0, 0]), D, np.array([0, -1.0, 0]))]
    busy = set(rng.choice(4, size=3, replace=False).tolist())
    for wi, (c, n, length, along) in enumerate(walls):
        # Bare paint; two walls carry workshop clutter (tool boards, stacked stock: busy panels),
        # as the real scans' rooms do (their renders are far more textured than bare rooms).
        sc.add_face(c, n, z, length, H, _tex(rng, length, H, "plain"))
        for _ in range(int(rng.integers(2, 4)) if wi in busy else int(rng.random() < 0.5)):
            w_m, h_m = (rng.uniform(1.0, 2.0), rng.uniform(0.8, 1.4)) if wi in busy else \
                (rng.uniform(0.4, 0.8), rng.uniform(0.4, 0.7))
            w_m = min(w_m, 0.45 * length)
            pos = c + along * rng.uniform(-length / 2 + w_m / 2 + 0.05, length / 2 - w_m / 2 - 0.05) + n * 0.005
            pos[2] = rng.uniform(1.0 + h_m / 2, min(H - 0.1 - h_m / 2, 2.0)) if wi in busy else rng.uniform(1.3, 1.9)
            tex = _busy(rng, w_m, h_m) if wi in busy else _tex(rng, w_m, h_m, "poster", px=300)
            sc.add_face(pos, n, z, w_m, h_m, tex, cell_m=None)
    tops = furnish_walls(sc, rng, walls, [0.45, 0.3, 0.25], lambda kind, L, dep, hgt: {
        "front": (_busy(rng, L, hgt, px=250) if kind == "shelf" or rng.random() < 0.4
                  else _tex(rng, L, hgt, "wood" if rng.random() < 0.5 else "plain", px=250)),
        "back": _tex(rng, L, hgt, "plain", px=60),
        "left": _tex(rng, dep, hgt, "plain", px=150), "right": _tex(rng, dep, hgt, "plain", px=150),
        "top": _tex(rng, L, dep, "wood", px=250)})
    placed: list[tuple[np.ndarray, float]] = []

    def place(size, title, kind, colour, print_seed, twin=None, printed=False):
        p = spot_on_a_table(rng, tops, size, placed)
        if p is None:
            return None
        obj = SceneObject(len(sc.objects), title, kind, p, np.asarray(size), float(rng.uniform(-np.pi, np.pi)), twin)
        faces = (_object_faces(rng, size, title, colour, print_seed) if printed
                 else _plain_box_faces(rng, size, colour, print_seed))
        sc.add_box(p, size, obj.yaw, faces, obj=obj.index + 1)
        sc.objects.append(obj)
        return obj

    from .scene import TITLES

    titles = list(rng.permutation(TITLES))
    for q in range(n_queries):
        size = np.array([rng.uniform(0.08, 0.3), rng.uniform(0.08, 0.3), rng.uniform(0.06, 0.3)])
        colour = tx.random_color(rng, sat=(0.3, 0.9), val=(0.35, 0.95))
        marks = int(rng.integers(0, 2**31)) if rng.random() < 0.5 else None  # half carry a small print
        obj = place(size, titles[q % len(titles)], "query", colour, marks)
        if obj is None:
            continue
        place(size, obj.title, "distractor", _near_colour(rng, colour), marks, twin=obj.index)
        if rng.random() < 0.5:  # an identical copy elsewhere in the room
            place(size, obj.title, "repeat", colour, marks, twin=obj.index)
    for k in range(int(rng.integers(25, 40))):  # tools, packets, tins: printed, some plain
        size = np.array([rng.uniform(0.05, 0.3), rng.uniform(0.05, 0.3), rng.uniform(0.04, 0.3)])
        if k % 3:
            palette = tuple(tx.random_color(rng, sat=(0.2, 0.9)) for _ in range(3))
            place(size, "clutter", "clutter", palette, int(rng.integers(0, 2**31)), printed=True)
        else:
            place(size, "clutter", "clutter", tx.random_color(rng, sat=(0.1, 0.7)), None)
    sc.walk_min = np.array([0.8, 0.8])
    sc.walk_max = np.array([W - 0.8, D - 0.8])
    return sc


# ------------------------------------------------------------------------------ plan

def plan_queries(rng: np.random.Generator, n_frames: int, objects: list[SceneObject], cam: Fisheye,
                 scale: str = "full") -> list[dict]:
    """Per query object: the drawn query frame, response track [start, end], crop frame, and
    the viewing distances that give the drawn box sizes (clip frames). In the `ci` variant a
    track-to-query gap is at least the anchors' 5th percentile in frames: scaled by 1/30 most
    gaps would be 1-2 frames, nearer the query than almost any real one."""
    last = n_frames - 1
    min_gap = 2 if scale == "full" else int(np.interp(0.05, stats()["levels"], stats()["quantiles"]["gap_frames"]))
    out = []
    res = cam.height / 1080
    for obj in objects:
        qf = int(np.clip(round(draw(rng, "query_frac") * last), 4, last))
        gap = max(min_gap, int(round(draw(rng, "gap_frac") * last)))
        end = qf - gap
        length = int(round(draw(rng, "track_len")))
        if end < 1:
            end = max(1, min(qf - 2, length))
        start = max(0, end - length + 1)
        crop = int(np.clip(qf + round(draw(rng, "crop_offset_frac") * last), 0, last))
        if start - 2 <= crop <= qf:  # never on the track (as in the anchors) nor between it and the query
            crop = qf + 2 + (qf - crop) if qf + 2 + (qf - crop) <= last else max(0, start - 3 - (qf - crop))
        short = float(np.sort(obj.size)[1])  # the box's middle extent ≈ the short side seen
        dist = lambda px: float(np.clip(cam.f * short / max(px * res, 4.0), 0.45, 4.5))  # noqa: E731
        out.append({"object": obj.index, "query_frame": qf, "track": (start, end), "crop_frame": crop,
                    "track_dist": dist(draw(rng, "crop_short_1080")), "crop_dist": dist(draw(rng, "crop_short_1080"))})
    return out


def _stand(scene: Scene, rng, target: np.ndarray, dist: float) -> np.ndarray:
    """Camera centre at `dist` from `target`, from the room's side, inside the walkable area."""
    lo, hi = scene.walk_min, scene.walk_max
    d = (lo + hi) / 2 - target[:2]
    d /= np.linalg.norm(d) + 1e-9
    a = rng.uniform(-0.7, 0.7)
    d = np.array([np.cos(a) * d[0] - np.sin(a) * d[1], np.sin(a) * d[0] + np.cos(a) * d[1]])
    dz = min(EYE - target[2], 0.75 * dist)
    horiz = np.sqrt(max(dist**2 - dz**2, 0.09))
    xy = np.clip(target[:2] + d * horiz, lo, hi)
    return np.array([xy[0], xy[1], target[2] + dz])


def trajectory(scene: Scene, rng: np.random.Generator, duration: float, fps: int,
               visits: list[tuple[float, float, np.ndarray, float]], avoid: list[tuple[float, float, int]],
               max_walk_s: float = 2.0):
    """cam_from_world (N×3×4) for `duration` s: the `visits` (t0, t1, target, distance) at their
    times, fillers elsewhere (furniture, walls, distractors, repeats, clutter; never an object
    of `avoid` (t0, t1, object index) inside its window), walks between stand points at
    WALK_SPEED (a visit waits at most `max_walk_s` for the walk to it: the `ci` variant's compressed
    time walks faster), rate-limited head turns, walking jitter."""
    n = int(round(duration * fps))
    fillers = [o for o in scene.objects if o.kind != "query"]
    W, D, _ = scene.size
    segs = []  # (t0, t1, stand, target)
    t, pos = 0.0, _stand(scene, rng, np.array([W / 2, D / 2, 1.0]), 2.0)
    visits = sorted(visits, key=lambda v: v[0])
    vi = 0
    while t < duration:
        if vi < len(visits) and visits[vi][0] - t < 3.5:
            t0, t1, target, dist = visits[vi]
            vi += 1
            stand = _stand(scene, rng, target, dist)
            walk = np.linalg.norm(stand[:2] - pos[:2]) / WALK_SPEED
            t0 = max(t0, t + min(walk, max_walk_s))
            t1 = max(t1, t0 + 0.2)
        else:
            r = rng.random()
            if r < 0.45 and fillers:
                o = fillers[int(rng.integers(0, len(fillers)))]
                if any(a <= t <= b and o.twin == k for a, b, k in avoid):
                    continue
                target, dist = o.centre, rng.uniform(0.8, 2.2)
            elif r < 0.75:
                f = scene.furniture[int(rng.integers(0, len(scene.furniture)))] if scene.furniture else None
                target = np.array(f["centre"]) + [0, 0, f["size"][2] / 2] if f else np.array([W / 2, 0.3, 1.0])
                dist = rng.uniform(1.2, 2.8)
            else:
                target = np.array([rng.uniform(0, W), rng.uniform(0, D), rng.uniform(0.4, 2.2)])
                dist = rng.uniform(1.5, 3.0)
            stand = _stand(scene, rng, target, dist)
            walk = np.linalg.norm(stand[:2] - pos[:2]) / WALK_SPEED
            t0 = t + min(walk, 1.25 * max_walk_s) * rng.uniform(0.6, 1.0)
            t1 = t0 + rng.uniform(0.8, 2.5)  # dwell: physical in every variant
            if vi < len(visits):
                t1 = min(t1, visits[vi][0] - 0.3)
            if t1 <= t0:
                t1 = t0 + 0.2
        segs.append((t0, t1, stand, np.asarray(target, float), pos.copy(), t))
        pos, t = stand, t1
    # Per frame: centre (walk from the previous stand point during [t_prev, t0], hold) and gaze.
    times = np.arange(n) / fps
    centres = np.zeros((n, 3))
    look = np.zeros((n, 3))
    si = 0
    for k, tk in enumerate(times):
        while si + 1 < len(segs) and tk > segs[si][1]:
            si += 1
        t0, t1, stand, target, prev, tp = segs[si]
        a = 1.0 if tk >= t0 else float(np.clip((tk - tp) / max(t0 - tp, 1e-6), 0, 1))
        a = a * a * (3 - 2 * a)
        centres[k] = prev + a * (stand - prev)
        look[k] = target
    walking = np.r_[0, np.linalg.norm(np.diff(centres[:, :2], axis=0), axis=1) * fps] > 0.2
    centres[:, 2] += 0.025 * np.sin(2 * np.pi * 1.9 * times + rng.uniform(0, 6.3)) * walking
    d = look - centres
    want_yaw = np.unwrap(np.arctan2(d[:, 1], d[:, 0]))
    want_pitch = np.arctan2(d[:, 2], np.linalg.norm(d[:, :2], axis=1))
    yaw, pitch = np.zeros(n), np.zeros(n)
    yaw[0], pitch[0] = want_yaw[0], want_pitch[0]
    step = np.radians(HEAD_MAX_DEG_S) / fps
    for i in range(1, n):
        dy = (want_yaw[i] - yaw[i - 1] + np.pi) % (2 * np.pi) - np.pi
        yaw[i] = yaw[i - 1] + np.clip(dy, -step, step)
        pitch[i] = pitch[i - 1] + np.clip(want_pitch[i] - pitch[i - 1], -0.6 * step, 0.6 * step)

    def jitter(sigma_deg, smooth_s):
        return np.radians(sigma_deg) * gaussian_filter1d(rng.standard_normal(n), smooth_s * fps) * np.sqrt(smooth_s * fps * 3.5)

    amp = 1 + 1.5 * gaussian_filter1d(walking.astype(float), 0.3 * fps)  # more head motion while walking
    yaw = gaussian_filter1d(yaw, 0.08 * fps) + jitter(1.5, 0.15) * amp
    pitch = np.clip(gaussian_filter1d(pitch, 0.08 * fps) + jitter(1.5, 0.15) * amp, np.radians(-70), np.radians(35))
    roll = jitter(3.0, 0.4)
    return np.stack([cam_from_world(look_rotation(yaw_pitch_forward(yaw[i], pitch[i]), roll[i]), centres[i])
                     for i in range(n)])


def sightings_plan(scene: Scene, plans: list[dict], clip_start_s: float) -> tuple[list, list]:
    """Trajectory visits and avoid-windows (video seconds) of one clip's query plans."""
    objs = {o.index: o for o in scene.objects}
    visits, avoid = [], []
    for p in plans:
        o = objs[p["object"]]
        s, e = p["track"]
        visits.append((clip_start_s + s / CLIP_FPS, clip_start_s + e / CLIP_FPS, o.centre, p["track_dist"]))
        c = p["crop_frame"]
        visits.append((clip_start_s + (c - 1) / CLIP_FPS, clip_start_s + (c + 1) / CLIP_FPS, o.centre, p["crop_dist"]))
        avoid.append((clip_start_s + (e + 1) / CLIP_FPS, clip_start_s + p["query_frame"] / CLIP_FPS, o.index))
    return visits, avoid


# ------------------------------------------------------------------------------ image faults

class Faults:
    """Per-frame camera faults, deterministic from `rng`: auto-exposure (lagged gain toward a
    target brightness, exposure time up to one frame, then analogue gain), white-balance drift,
    motion blur of the camera's rotation during the exposure, shot + read noise times the gain,
    hands/arms passing in front of the lens (they also hide objects in the id buffer)."""

    def __init__(self, rng: np.random.Generator, cam: Fisheye, poses: np.ndarray, fps: int, res_scale: float = 1.0):
        self.rng, self.cam, self.poses, self.fps = rng, cam, poses, fps
        # A scaled-down variant is the full-resolution video seen smaller: per-pixel sensor noise
        # averages down by the scale (1/res_scale² sensor pixels per pixel).
        self.noise_scale = float(res_scale)
        n = len(poses)
        self.t_base = rng.uniform(*EXPOSURE_S)
        self.target = rng.uniform(95, 125)
        self.gain = 1.0
        self.alpha = 1 - np.exp(-1 / (0.6 * fps))  # AE lag ≈ 0.6 s
        drift = np.stack([gaussian_filter1d(rng.standard_normal(n), 4 * fps, mode="wrap") for _ in range(2)], 1)
        drift *= 0.06 / (drift.std(0) + 1e-9)
        self.wb = np.stack([1 + drift[:, 0], np.ones(n), 1 + drift[:, 1]], 1).astype(np.float32)  # B, G, R gains
        self.hands = []  # (k0, k1, side, colour)
        k = int(rng.uniform(3, 10) * fps)
        while k < n:
            length = int(rng.uniform(0.6, 2.5) * fps)
            skin = tx.random_color(rng, sat=(0.25, 0.55), val=(0.35, 0.85))
            hsv = cv2.cvtColor(np.uint8([[skin]]), cv2.COLOR_BGR2HSV)[0, 0]
            hsv[0] = int(rng.integers(5, 20))
            skin = tuple(int(c) for c in cv2.cvtColor(np.uint8([[hsv]]), cv2.COLOR_HSV2BGR)[0, 0])
            self.hands.append((k, k + length, int(rng.choice([-1, 1])), skin, rng.uniform(0.25, 0.55)))
            k += length + int(rng.uniform(5, 20) * fps)
        self.blur_px = np.zeros(n)
        self.exposure_s = np.zeros(n)

    def _rotation_flow(self, k: int) -> np.ndarray:
        """Image motion (px/s) at the centre from the camera's rotation around frame k."""
        a, b = max(k - 1, 0), min(k + 1, len(self.poses) - 1)
        if a == b:
            return np.zeros(2)
        R_rel = self.poses[b][:, :3] @ self.poses[a][:, :3].T
        d = R_rel @ np.array([0.0, 0.0, 1.0])
        return self.cam.f * d[:2] / max(d[2], 1e-3) * self.fps / (b - a)

    def _hand(self, img: np.ndarray, ids: np.ndarray, k: int) -> None:
        for k0, k1, side, skin, reach in self.hands:
            if not k0 <= k < k1:
                continue
            H, W = img.shape[:2]
            u = (k - k0) / max(k1 - k0 - 1, 1)
            rise = np.sin(np.pi * u)  # in from the bottom edge and out again
            cx = W * (0.5 + side * (0.45 - 0.25 * u))
            cy = H * (1.15 - reach * rise)
            mask = np.zeros((H, W), np.uint8)
            ax = (int(W * 0.11), int(H * 0.16))
            ang = float(side * (25 + 20 * u))
            cv2.ellipse(mask, (int(cx), int(cy)), ax, ang, 0, 360, 1, -1, cv2.LINE_AA)
            arm_end = (int(cx + side * W * 0.25), int(H * 1.3))
            cv2.line(mask, (int(cx), int(cy)), arm_end, 1, int(W * 0.13))
            m = mask.astype(bool)
            shade = (1 + 0.12 * tx.noise(self.rng, H, W, octaves=3))[..., None]
            hand = np.clip(np.asarray(skin, np.float32) * shade, 0, 255).astype(np.uint8)
            img[m] = hand[m]
            ids[m] = 0

    def apply(self, img: np.ndarray, ids: np.ndarray, k: int) -> np.ndarray:
        """The recorded frame k (uint8 BGR); `ids` is updated in place for occluders."""
        self._hand(img, ids, k)
        frame = img.astype(np.float32)
        mean = float(frame[::8, ::8].mean()) + 1.0
        self.gain += self.alpha * (np.clip(self.target / mean, 0.35, 3.0) - self.gain)
        t_exp = float(np.clip(self.t_base * self.gain, 1 / 2000, 1 / 30))
        analogue = self.gain * self.t_base / t_exp
        self.exposure_s[k] = t_exp
        flow = self._rotation_flow(k) * t_exp
        length = float(np.hypot(*flow))
        self.blur_px[k] = length
        if length >= 1.5:
            size = int(np.ceil(length)) | 1
            kern = np.zeros((size, size), np.float32)
            c = size // 2
            dx, dy = flow / length * length / 2
            cv2.line(kern, (int(round(c - dx)), int(round(c - dy))), (int(round(c + dx)), int(round(c + dy))), 1.0, 1,
                     cv2.LINE_AA)
            frame = cv2.filter2D(frame, -1, kern / kern.sum(), borderType=cv2.BORDER_REFLECT)
        frame *= np.float32(self.gain) * self.wb[k][None, None, :]
        np.clip(frame, 0, 255, out=frame)
        sigma = self.noise_scale * np.sqrt(SHOT_NOISE * frame * analogue + (READ_NOISE * analogue) ** 2)
        frame += sigma * self.rng.standard_normal(frame.shape, dtype=np.float32)
        return np.clip(frame, 0, 255).astype(np.uint8)


def encoder_args(width: int, height: int, fps: int, res_scale: float = 1.0) -> list[str]:
    """libx264 at BITS_PER_PIXEL (constrained VBR) instead of the easy tier's near-lossless CRF. A
    scaled-down variant keeps the bits per second of its full-scale picture times the scale (each of
    its pixels holds 1/res_scale² full-scale pixels of content)."""
    rate = int(BITS_PER_PIXEL * width * height * fps / res_scale)
    return ["-b:v", str(rate), "-maxrate", str(int(rate * 1.5)), "-bufsize", str(rate * 2)]
