"""Head-mounted camera trajectories: walk (~1 m/s, eye height ~1.6 m) from one spot to the next
inside the room's walkable rectangle, looking at things (the query objects, furniture, posters),
with rate-limited head turns, head bob, and pitch/roll jitter."""

from __future__ import annotations

import numpy as np
from scipy.ndimage import gaussian_filter1d

from .camera import cam_from_world, look_rotation, yaw_pitch_forward
from .scene import Scene

EYE = 1.6
SPEED = 1.0           # m/s walking
YAW_RATE = np.radians(70)   # rad/s head-turn limit: ≤ 14° between 5 fps frames
PITCH_RATE = np.radians(40)


def _targets(scene: Scene, rng: np.random.Generator, n: int) -> list[np.ndarray]:
    """Gaze targets: every query object twice (so each clip has sightings before and after its
    query frame), interleaved with furniture, distractors and random wall points."""
    queries = [o.centre for o in scene.objects if o.kind == "query"]
    others = [o.centre for o in scene.objects if o.kind != "query"] + [np.array(f["centre"]) for f in scene.furniture]
    W, D, H = scene.size
    out = []
    while len(out) < n:
        batch = list(rng.permutation(len(queries))) if queries else []
        for qi in batch:
            out.append(queries[qi])
            r = rng.random()
            if r < 0.4 and others:
                out.append(others[int(rng.integers(0, len(others)))])
            elif r < 0.7:
                out.append(np.array([rng.uniform(0, W), rng.uniform(0, D), rng.uniform(0.5, 2.0)]))
        if not batch:
            out.append(np.array([rng.uniform(0, W), rng.uniform(0, D), 1.0]))
    return out[:n]


def _stand_point(scene: Scene, rng, target: np.ndarray) -> np.ndarray:
    """Where to stand to look at `target`: 0.8–1.6 m from it, inside the walkable area."""
    lo, hi = scene.walk_min, scene.walk_max
    centre = (lo + hi) / 2
    d = centre - target[:2]
    d = d / (np.linalg.norm(d) + 1e-9)
    ang = rng.uniform(-0.6, 0.6)
    d = np.array([np.cos(ang) * d[0] - np.sin(ang) * d[1], np.sin(ang) * d[0] + np.cos(ang) * d[1]])
    p = target[:2] + d * rng.uniform(0.8, 1.6)
    return np.clip(p, lo, hi)


def trajectory(scene: Scene, rng: np.random.Generator, duration: float, fps: float) -> np.ndarray:
    """cam_from_world (N×3×4) at `fps` for `duration` seconds."""
    n = int(round(duration * fps))
    dt = 1.0 / fps
    targets = _targets(scene, rng, max(4, int(duration / 2.5) + 2))
    pos = np.clip(scene.walk_min + rng.random(2) * (scene.walk_max - scene.walk_min), scene.walk_min, scene.walk_max)
    xy = np.zeros((n, 2))
    look = np.zeros((n, 3))
    k, ti = 0, 0
    while k < n:
        target = targets[ti % len(targets)]
        ti += 1
        goal = _stand_point(scene, rng, target)
        dist = np.linalg.norm(goal - pos)
        walk = int(np.ceil(dist / (SPEED * rng.uniform(0.7, 1.1)) * fps))
        dwell = int(rng.uniform(1.0, 2.5) * fps)
        for j in range(walk + dwell):
            if k >= n:
                break
            a = min(1.0, (j + 1) / max(walk, 1))
            a = a * a * (3 - 2 * a)  # ease in/out
            xy[k] = pos + a * (goal - pos)
            look[k] = target
            k += 1
        pos = goal
    xy = gaussian_filter1d(xy, 0.3 * fps, axis=0, mode="nearest")
    t = np.arange(n) * dt
    z = EYE + rng.uniform(-0.08, 0.08) + 0.02 * np.sin(2 * np.pi * 1.8 * t + rng.uniform(0, 6.3))
    centres = np.column_stack([xy, z])
    # Desired gaze angles, then rate-limited tracking (a head cannot snap around) and smoothing.
    d = look - centres
    want_yaw = np.unwrap(np.arctan2(d[:, 1], d[:, 0]))
    want_pitch = np.arctan2(d[:, 2], np.linalg.norm(d[:, :2], axis=1))
    yaw, pitch = np.zeros(n), np.zeros(n)
    yaw[0], pitch[0] = want_yaw[0], want_pitch[0]
    for i in range(1, n):
        dy = (want_yaw[i] - yaw[i - 1] + np.pi) % (2 * np.pi) - np.pi
        yaw[i] = yaw[i - 1] + np.clip(dy, -YAW_RATE * dt, YAW_RATE * dt)
        pitch[i] = pitch[i - 1] + np.clip(want_pitch[i] - pitch[i - 1], -PITCH_RATE * dt, PITCH_RATE * dt)

    def jitter(sigma_deg, smooth_s):
        return np.radians(sigma_deg) * gaussian_filter1d(rng.standard_normal(n), smooth_s * fps) * np.sqrt(smooth_s * fps * 3.5)

    yaw = gaussian_filter1d(yaw, 0.15 * fps) + jitter(2.0, 0.3)
    pitch = np.clip(gaussian_filter1d(pitch, 0.15 * fps) + jitter(2.0, 0.3), np.radians(-60), np.radians(30))
    roll = jitter(3.0, 0.5)
    return np.stack([cam_from_world(look_rotation(yaw_pitch_forward(yaw[i], pitch[i]), roll[i]), centres[i]) for i in range(n)])
