"""The MatterPak export of a synthetic room: the OBJ/MTL/JPEG files, read back with an independent
OBJ parser, reproduce the scene's geometry and texture pixels; the point cloud lies on the surfaces."""

from __future__ import annotations

import re

import cv2
import numpy as np
import pytest

from vq3d.formats.matterpak import read_cloud
from vq3d.synth.matterpak import write_matterpak
from vq3d.synth.scene import build_scene


def _parse_obj(path):
    v, vt, faces, mtl, current = [], [], [], None, None
    for line in path.read_text().splitlines():
        parts = line.split()
        if not parts or parts[0].startswith("#"):
            continue
        if parts[0] == "mtllib":
            mtl = parts[1]
        elif parts[0] == "v":
            v.append([float(x) for x in parts[1:4]])
        elif parts[0] == "vt":
            vt.append([float(x) for x in parts[1:3]])
        elif parts[0] == "usemtl":
            current = parts[1]
        elif parts[0] == "f":
            idx = [tuple(int(i) - 1 for i in p.split("/")) for p in parts[1:]]
            faces.append((current, idx))
    return np.array(v), np.array(vt), faces, mtl


def _parse_mtl(path):
    out, cur = {}, None
    for line in path.read_text().splitlines():
        parts = line.split()
        if parts[:1] == ["newmtl"]:
            cur = parts[1]
        elif parts[:1] == ["map_Kd"]:
            out[cur] = parts[1]
    return out


@pytest.fixture(scope="module")
def pak(tmp_path_factory):
    scene = build_scene(np.random.default_rng([7, 0, 1]), 3)
    out = tmp_path_factory.mktemp("pak") / "unict_3dscan_001"
    info = write_matterpak(scene, out, "unict_3dscan_001")
    return scene, out, info


def test_files_and_names(pak):
    scene, out, info = pak
    names = sorted(p.name for p in out.iterdir())
    mid = info["obj"][:-4]
    assert re.fullmatch(r"[A-Za-z0-9]{11}", mid)
    assert info["mtl"] == f"{mid}.mtl" and info["cloud"] == "cloud.xyz"
    assert set(names) == {info["obj"], info["mtl"], "cloud.xyz", *info["textures"]}
    assert all(re.fullmatch(rf"{mid}_\d{{3}}\.jpg", t) for t in info["textures"])
    v, vt, faces, mtllib = _parse_obj(out / info["obj"])
    assert mtllib == info["mtl"]
    assert len(faces) == info["faces"] == 2 * len(scene.quads)
    mats = _parse_mtl(out / info["mtl"])
    assert set(mats.values()) == set(info["textures"])
    assert {m for m, _ in faces} <= set(mats)


def test_geometry_winding_and_texture_pixels(pak):
    """Every face faces the side its quad is seen from; a point inside a face, textured through the
    OBJ's own UVs and the JPEG on disk, shows the scene's texture pixel at that point."""
    scene, out, info = pak
    v, vt, faces, _ = _parse_obj(out / info["obj"])
    mats = _parse_mtl(out / info["mtl"])
    images = {m: cv2.imread(str(out / f)) for m, f in mats.items()}
    rng = np.random.default_rng(0)
    diffs = []
    for k, q in enumerate(scene.quads):
        for tri in faces[2 * k: 2 * k + 2]:
            mat, idx = tri
            p = v[[i for i, _ in idx]]
            n = np.cross(p[1] - p[0], p[2] - p[0])
            assert n @ q.normal > 0, f"quad {k}: face points away from its visible side"
            # the two faces use exactly the quad's corners
            assert all(np.linalg.norm(q.corners - X0, axis=1).min() < 1e-5 for X0 in p)
            uv = vt[[j for _, j in idx]]
            tex_def = scene.textures[q.tex][0]
            img = images[mat]
            h, w = img.shape[:2]
            assert (h, w) == tex_def.shape[:2]
            for _ in range(5):
                a, b = rng.random(2)
                if a + b > 1:
                    a, b = 1 - a, 1 - b
                bary = np.array([1 - a - b, a, b])
                X = bary @ p
                u, vv = bary @ uv
                # the scene's own definition: pixel (s, t) sits at origin + s*es + t*et
                s = (X - q.origin) @ q.es / (q.es @ q.es)
                t = (X - q.origin) @ q.et / (q.et @ q.et)
                assert abs(u * w - s) < 1e-3 * w + 1e-3 and abs((1 - vv) * h - t) < 1e-3 * h + 1e-3
                si, ti = int(np.clip(s, 0, w - 1)), int(np.clip(t, 0, h - 1))
                diffs.append(np.abs(img[ti, si].astype(int) - tex_def[ti, si].astype(int)).max())
    assert np.median(diffs) <= 12  # JPEG, not a copy bug: a wrong mapping gives ~50+


def test_cloud_on_surfaces(pak):
    scene, out, _ = pak
    pts, rgb = read_cloud(out / "cloud.xyz")
    assert len(pts) > 1000 and rgb.shape == pts.shape
    W, D, H = scene.size
    assert pts[:, 0].min() >= -1e-3 and pts[:, 0].max() <= W + 1e-3
    assert pts[:, 2].min() >= -1e-3 and pts[:, 2].max() <= H + 1e-3
    # every point lies on the plane of some quad (distance to the nearest plane ~ 0)
    sample = pts[:: max(1, len(pts) // 300)]
    planes = np.array([np.append(q.normal, -q.normal @ q.corners[0]) for q in scene.quads])
    dist = np.abs(np.hstack([sample, np.ones((len(sample), 1))]) @ planes.T).min(1)
    assert dist.max() < 1e-3
