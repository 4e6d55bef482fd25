"""Rooms of the synthetic benchmark: textured planar quads with known geometry.

World = scan frame (Matterport-like): metres, z up, floor at z = 0, the room spans
[0, W] × [0, D] × [0, H]. Furniture stands along the walls, small box-shaped objects (the visual
query targets, their look-alike distractors, and clutter) stand on table and cabinet tops."""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from . import textures as tx

TITLES = ["cereal box", "tea box", "toolbox", "book", "tissue box", "board game", "shoe box",
          "speaker", "router", "first aid kit", "cookie tin", "puzzle box", "lunch box", "pencil case"]


@dataclass
class Quad:
    """A textured planar rectangle. Texture pixel (s, t) sits at origin + s*es + t*et (world).
    A big surface is cut into cells that share one texture (corners differ, `H` is the same), so
    each cell picks its own mip level."""
    corners: np.ndarray      # 4×3 world corners (convex, in order)
    origin: np.ndarray
    es: np.ndarray
    et: np.ndarray
    normal: np.ndarray       # the side it is seen from
    tex: int                 # index into Scene.textures
    obj: int                 # id written to the id buffer (0 = room/furniture, k+1 = objects[k])


@dataclass
class SceneObject:
    index: int
    title: str
    kind: str                # query | distractor | clutter
    centre: np.ndarray       # scan frame, metres
    size: np.ndarray         # extent along its own x, y, z
    yaw: float               # rotation about z, radians
    twin: int | None = None  # the query object a distractor imitates


@dataclass
class Scene:
    size: np.ndarray                         # W, D, H
    quads: list[Quad] = field(default_factory=list)
    textures: list[list[np.ndarray]] = field(default_factory=list)  # mip pyramids
    objects: list[SceneObject] = field(default_factory=list)
    furniture: list[dict] = field(default_factory=list)
    walk_min: np.ndarray | None = None       # walkable rectangle (x, y) for the camera
    walk_max: np.ndarray | None = None

    def add_texture(self, img: np.ndarray) -> int:
        self.textures.append(tx.pyramid(img))
        return len(self.textures) - 1

    def add_face(self, centre, normal, up, width_m, height_m, img, obj=0, cell_m: float | None = 1.0) -> None:
        """A rectangle seen from the `normal` side with `up` pointing to the texture's top."""
        normal = np.asarray(normal, float)
        up = np.asarray(up, float)
        right = np.cross(-normal, up)  # viewer looks along -normal: right = forward × up
        h, w = img.shape[:2]
        tex = self.add_texture(img)
        origin = np.asarray(centre, float) - right * width_m / 2 + up * height_m / 2
        es, et = right * width_m / w, -up * height_m / h
        ns = max(1, int(np.ceil(width_m / cell_m))) if cell_m else 1
        nt = max(1, int(np.ceil(height_m / cell_m))) if cell_m else 1
        for i in range(ns):
            for j in range(nt):
                s0, s1, t0, t1 = w * i / ns, w * (i + 1) / ns, h * j / nt, h * (j + 1) / nt
                corners = np.array([origin + s * es + t * et for s, t in ((s0, t0), (s1, t0), (s1, t1), (s0, t1))])
                self.quads.append(Quad(corners, origin, es, et, normal, tex, obj))

    def add_box(self, centre, size, yaw, faces: dict, obj=0, cell_m=None) -> None:
        """A box (no bottom face). `faces` maps 'front','back','left','right','top' → texture."""
        c, s = np.cos(yaw), np.sin(yaw)
        ax, ay, z = np.array([c, s, 0.0]), np.array([-s, c, 0.0]), np.array([0, 0, 1.0])
        hx, hy, hz = np.asarray(size, float) / 2
        centre = np.asarray(centre, float)
        sides = {"front": (ax, hx, 2 * hy), "back": (-ax, hx, 2 * hy), "left": (ay, hy, 2 * hx), "right": (-ay, hy, 2 * hx)}
        for name, (n, off, width) in sides.items():
            self.add_face(centre + n * off, n, z, width, 2 * hz, faces[name], obj, cell_m)
        self.add_face(centre + z * hz, z, ax, 2 * hy, 2 * hx, faces["top"], obj, cell_m)


def _tex(rng, w_m, h_m, kind, px=tx.PX_PER_M):
    h, w = max(8, int(h_m * px)), max(8, int(w_m * px))
    return {"paint": lambda: tx.painted_wall(rng, h, w), "plain": lambda: tx.painted_wall(rng, h, w, True),
            "tiles": lambda: tx.tiles(rng, h, w), "wood": lambda: tx.wood(rng, h, w),
            "poster": lambda: tx.poster(rng, h, w)}[kind]()


def _object_faces(rng, size, title, palette, marks_seed):
    px = 600  # objects are seen close up: finer than room surfaces
    sx, sy, sz = size
    dims = {"front": (sy, sz), "back": (sy, sz), "left": (sx, sz), "right": (sx, sz), "top": (sy, sx)}
    return {k: tx.label_texture(rng, max(16, int(h * px)), max(16, int(w * px)), palette, title, marks_seed + i)
            for i, (k, (w, h)) in enumerate(dims.items())}


def furniture_piece(rng: np.random.Generator, p) -> tuple[str, float, float, float]:
    """(kind, length, depth, height) of a table / cabinet / shelf drawn with probabilities `p`."""
    kind = rng.choice(["table", "cabinet", "shelf"], p=p)
    L = {"table": rng.uniform(1.0, 1.6), "cabinet": rng.uniform(0.8, 1.3), "shelf": rng.uniform(0.8, 1.2)}[kind]
    dep = {"table": rng.uniform(0.6, 0.75), "cabinet": rng.uniform(0.45, 0.6), "shelf": rng.uniform(0.3, 0.4)}[kind]
    hgt = {"table": rng.uniform(0.72, 0.78), "cabinet": rng.uniform(0.85, 1.0), "shelf": rng.uniform(1.6, 1.95)}[kind]
    return kind, L, dep, hgt


def furnish_walls(sc: Scene, rng: np.random.Generator, walls, kind_probs, faces) -> list:
    """Furniture along the walls (tables/cabinets carry the objects, shelves are tall), each
    piece's faces from `faces(kind, L, dep, hgt)`; returns the tops (centre, depth, length,
    height, yaw), with one table added when no piece has a top (a surface for the objects)."""
    tops = []
    for c, n, length, along in walls:
        cursor = -length / 2 + rng.uniform(0.2, 0.6)
        while True:
            kind, L, dep, hgt = furniture_piece(rng, kind_probs)
            if cursor + L > length / 2 - 0.2:
                break
            mid = c + along * (cursor + L / 2) + n * (dep / 2 + 0.01)
            centre = np.array([mid[0], mid[1], hgt / 2])
            yaw = float(np.arctan2(n[1], n[0]))  # local +x = front, facing into the room
            sc.add_box(centre, [dep, L, hgt], yaw, faces(kind, L, dep, hgt), cell_m=1.0)
            sc.furniture.append({"kind": str(kind), "centre": centre.tolist(), "size": [dep, L, hgt], "yaw": yaw})
            if kind != "shelf":
                tops.append((centre, dep, L, hgt, yaw))
            cursor += L + rng.uniform(0.1, 0.9)
    if not tops:
        c, n, length, along = walls[0]
        centre = c + n * 0.35
        centre[2] = 0.375
        sc.add_box(centre, [0.7, 1.2, 0.75], np.pi / 2, {k: _tex(rng, 1.2, 0.75, "wood") for k in
                   ("front", "back", "left", "right", "top")}, cell_m=1.0)
        tops.append((centre, 0.7, 1.2, 0.75, np.pi / 2))
    return tops


def spot_on_a_table(rng: np.random.Generator, tops, size, placed: list) -> np.ndarray | None:
    """Centre of a box of `size` standing on one of `tops` ((centre, depth, length, height, yaw)
    per table) clear of the boxes `placed` so far (appended to); None after 200 tries."""
    for _ in range(200):
        centre, dep, L, hgt, yaw = tops[int(rng.integers(0, len(tops)))]
        ax = np.array([np.cos(yaw), np.sin(yaw), 0])
        ay = np.array([-np.sin(yaw), np.cos(yaw), 0])
        rad = 0.5 * float(np.hypot(size[0], size[1]))
        if dep < 2 * rad + 0.05 or L < 2 * rad + 0.05:
            continue
        p = centre + ax * rng.uniform(-dep / 2 + rad, dep / 2 - rad) * 0.8 + ay * rng.uniform(-L / 2 + rad, L / 2 - rad)
        p[2] = hgt + size[2] / 2
        if all(np.linalg.norm(p[:2] - q[:2]) > rad + r + 0.03 for q, r in placed):
            placed.append((p, rad))
            return p
    return None


def build_scene(rng: np.random.Generator, n_queries: int) -> Scene:
    W, D, H = rng.uniform(5.5, 7.5), rng.uniform(4.5, 6.0), rng.uniform(2.5, 2.8)
    sc = Scene(size=np.array([W, D, H]))
    z = np.array([0, 0, 1.0])
    # Room shell: floor, ceiling (low texture), four walls (one of them plain paint).
    sc.add_face([W / 2, D / 2, 0], z, [1, 0, 0], D, W, _tex(rng, D, W, rng.choice(["tiles", "wood"])))
    sc.add_face([W / 2, D / 2, H], -z, [1, 0, 0], D, W, _tex(rng, D, W, "plain"))
    walls = [  # (centre, inward normal, length, along-wall direction)
        (np.array([W / 2, 0, H / 2]), np.array([0, 1.0, 0]), W, np.array([1.0, 0, 0])),
        (np.array([W, D / 2, H / 2]), np.array([-1.0, 0, 0]), D, np.array([0, 1.0, 0])),
        (np.array([W / 2, D, H / 2]), np.array([0, -1.0, 0]), W, np.array([-1.0, 0, 0])),
        (np.array([0, D / 2, H / 2]), np.array([1.0, 0, 0]), D, np.array([0, -1.0, 0])),
    ]
    plain_wall = int(rng.integers(0, 4))
    for wi, (c, n, length, _) in enumerate(walls):
        sc.add_face(c, n, z, length, H, _tex(rng, length, H, "plain" if wi == plain_wall else "paint"))
    # Posters, a door, notice boards: 5 mm proud of the wall.
    for wi, (c, n, length, along) in enumerate(walls):
        for _ in range(int(rng.integers(1, 4)) if wi != plain_wall else 1):
            w_m, h_m = rng.uniform(0.4, 1.1), rng.uniform(0.4, 0.9)
            pos = c + along * rng.uniform(-length / 2 + w_m, length / 2 - w_m) + n * 0.005
            pos[2] = rng.uniform(1.3, 2.0)
            sc.add_face(pos, n, z, w_m, h_m, _tex(rng, w_m, h_m, "poster", px=300), cell_m=None)
        if wi == (plain_wall + 2) % 4:
            pos = c + along * rng.uniform(-length / 2 + 0.6, length / 2 - 0.6) + n * 0.005
            pos[2] = 1.0
            sc.add_face(pos, n, z, 0.9, 2.0, _tex(rng, 0.9, 2.0, "wood"), cell_m=None)
    # Furniture along the walls: tables/cabinets carry the objects, shelves are tall.
    tops = furnish_walls(sc, rng, walls, [0.45, 0.35, 0.2], lambda kind, L, dep, hgt: {
        "front": _tex(rng, L, hgt, "poster" if kind == "shelf" else ("wood" if rng.random() < 0.6 else "paint"), px=250),
        "back": _tex(rng, L, hgt, "plain", px=60),
        "left": _tex(rng, dep, hgt, "wood", px=150), "right": _tex(rng, dep, hgt, "wood", px=150),
        "top": _tex(rng, L, dep, "wood", px=250)})
    # Objects: queries, a distractor for about half of them (same shape, other look), clutter.
    titles = list(rng.permutation(TITLES))
    placed: list[tuple[np.ndarray, float]] = []

    def place(size, title, kind, palette, marks, twin=None):
        p = spot_on_a_table(rng, tops, size, placed)
        if p is None:
            return None
        obj = SceneObject(len(sc.objects), title, kind, p, np.asarray(size), float(rng.uniform(-np.pi, np.pi)), twin)
        faces = _object_faces(rng, size, title, palette, marks)
        sc.add_box(p, size, obj.yaw, faces, obj=obj.index + 1, cell_m=None)
        sc.objects.append(obj)
        return obj

    for q in range(n_queries):
        size = np.array([rng.uniform(0.1, 0.3), rng.uniform(0.1, 0.3), rng.uniform(0.08, 0.3)])
        palette = tuple(tx.random_color(rng, sat=(0.6, 1.0), val=(0.5, 1.0)) for _ in range(3))
        marks = int(rng.integers(0, 2**31))
        obj = place(size, titles[q % len(titles)], "query", palette, marks)
        if obj is not None and q % 2 == 0:
            alt = tuple(tx.random_color(rng, sat=(0.6, 1.0), val=(0.5, 1.0)) for _ in range(3))
            place(size, obj.title, "distractor", alt, marks + 7919, twin=obj.index)
    for k in range(int(rng.integers(2, 5))):
        size = np.array([rng.uniform(0.08, 0.3), rng.uniform(0.08, 0.3), rng.uniform(0.05, 0.25)])
        palette = tuple(tx.random_color(rng, sat=(0.1, 0.6)) for _ in range(3))
        place(size, "clutter", "clutter", palette, int(rng.integers(0, 2**31)))
    margin = 1.1
    sc.walk_min = np.array([margin, margin])
    sc.walk_max = np.array([W - margin, D - margin])
    return sc


def box_corners(centre, size, yaw) -> np.ndarray:
    """8×3 corners of an object box (scan frame)."""
    c, s = np.cos(yaw), np.sin(yaw)
    R = np.array([[c, -s, 0], [s, c, 0], [0, 0, 1]])
    signs = np.array([[i, j, k] for i in (-1, 1) for j in (-1, 1) for k in (-1, 1)], float)
    return np.asarray(centre) + (signs * np.asarray(size) / 2) @ R.T
