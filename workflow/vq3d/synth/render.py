"""A fast z-buffered renderer for scenes made of textured planar quads.

Per quad: clip against the near plane in camera space, warp its texture into the bounding box
of its projection with one homography (cv2.warpPerspective from the right mip level), take the
inverse depth from the plane equation (1/z is affine in pixel coordinates for a plane), and keep
the pixels nearer than the z-buffer. The fisheye image is the pinhole canvas remapped with a
precomputed map (see camera.distortion_maps)."""

from __future__ import annotations

import cv2
import numpy as np

from ..geometry import camera_centre, to_camera
from .camera import Fisheye, Pinhole, distortion_maps, remap_fast
from .scene import Scene

NEAR = 0.05  # metres


def _clip_near(pts: np.ndarray) -> np.ndarray:
    """Sutherland–Hodgman clip of a camera-space polygon (N×3) against z >= NEAR."""
    out = []
    n = len(pts)
    for i in range(n):
        a, b = pts[i], pts[(i + 1) % n]
        ina, inb = a[2] >= NEAR, b[2] >= NEAR
        if ina:
            out.append(a)
        if ina != inb:
            t = (NEAR - a[2]) / (b[2] - a[2])
            out.append(a + t * (b - a))
    return np.array(out) if out else np.zeros((0, 3))


class Renderer:
    def __init__(self, scene: Scene, canvas: Pinhole):
        self.scene = scene
        self.canvas = canvas
        K = canvas.K()
        K[0, 2] -= 0.5  # OpenCV pixel centres are integers
        K[1, 2] -= 0.5
        self.K_cv = K
        self.K_cv_inv = np.linalg.inv(K)
        q = scene.quads
        self.corners = np.stack([x.corners for x in q])                       # Q×4×3
        self.tex_from_world_basis = np.stack([np.stack([x.es, x.et, x.origin], 1) for x in q])  # Q×3×3
        self.normals = np.stack([x.normal for x in q])
        self.centres = self.corners.mean(1)
        cell_tex_area = []
        for x in q:  # texture pixels covered by a cell (its world area over one texel's area)
            area = np.linalg.norm(np.cross(x.corners[1] - x.corners[0], x.corners[3] - x.corners[0]))
            cell_tex_area.append(area / np.linalg.norm(np.cross(x.es, x.et)))
        self.cell_tex_area = np.array(cell_tex_area)
        h, w = canvas.height, canvas.width
        self.uu, self.vv = np.meshgrid(np.arange(w, dtype=np.float32), np.arange(h, dtype=np.float32))

    def render(self, cam_from_world: np.ndarray, want_ids: bool = True):
        """Pinhole canvas render: BGR image, inverse depth (0 = nothing), object ids (uint8)."""
        R, t = cam_from_world[:, :3], cam_from_world[:, 3]  # the texture basis below
        centre = camera_centre(cam_from_world)
        h, w = self.canvas.height, self.canvas.width
        img = np.zeros((h, w, 3), np.uint8)
        invz = np.zeros((h, w), np.float32)
        ids = np.zeros((h, w), np.uint8)
        # Back faces away; nearest cells first so the z-test rejects more and writes less.
        facing = np.einsum("qk,qk->q", self.normals, centre[None] - self.centres) > 1e-9
        cam_corners = to_camera(cam_from_world, self.corners)                  # Q×4×3
        order = np.argsort(np.linalg.norm(self.centres - centre, axis=1))
        for qi in order:
            if not facing[qi]:
                continue
            pc = cam_corners[qi]
            if (pc[:, 2] < NEAR).all():
                continue
            poly = pc if (pc[:, 2] >= NEAR).all() else _clip_near(pc)
            if len(poly) < 3:
                continue
            pix = poly @ self.K_cv.T
            pix = pix[:, :2] / pix[:, 2:3]
            x0, y0 = np.floor(pix.min(0)).astype(int)
            x1, y1 = np.ceil(pix.max(0)).astype(int) + 1
            x0, y0, x1, y1 = max(x0, 0), max(y0, 0), min(x1, w), min(y1, h)
            if x1 <= x0 or y1 <= y0:
                continue
            quad = self.scene.quads[qi]
            # Mip level from texels per pixel over the (clipped) projection.
            proj_area = cv2.contourArea(pix.astype(np.float32))
            if len(poly) != 4:  # clipped: estimate from the visible part's share of the cell
                proj_area = max(proj_area, 1.0) * 4
            ratio = self.cell_tex_area[qi] / max(proj_area, 1.0)
            levels = self.scene.textures[quad.tex]
            lvl = int(np.clip(np.floor(0.5 * np.log2(max(ratio, 1e-9)) + 0.3), 0, len(levels) - 1))
            texture = levels[lvl]
            s = 2.0**lvl
            # level pixel → level-0 pixel (pyrDown keeps pixel-centre alignment at 2x+0.5)
            lvl_to_tex = np.array([[s, 0, 0.5 * (s - 1)], [0, s, 0.5 * (s - 1)], [0, 0, 1]])
            basis_cam = R @ self.tex_from_world_basis[qi]
            basis_cam[:, 2] += t
            img_from_tex = self.K_cv @ basis_cam
            M = np.array([[1, 0, -x0], [0, 1, -y0], [0, 0, 1.0]]) @ img_from_tex @ lvl_to_tex
            bw, bh = x1 - x0, y1 - y0
            warped = cv2.warpPerspective(texture, M, (bw, bh), flags=cv2.INTER_LINEAR, borderMode=cv2.BORDER_REPLICATE)
            mask = np.zeros((bh, bw), np.uint8)
            cv2.fillConvexPoly(mask, np.round((pix - [x0, y0]) * 16).astype(np.int32), 1, cv2.LINE_8, 4)
            # Plane n·X = d in camera space: 1/z = (n · K^-1 [u v 1]) / d.
            n_cam = R @ quad.normal
            d = float(n_cam @ pc[0])
            coef = (n_cam @ self.K_cv_inv) / d
            iz = coef[0] * self.uu[y0:y1, x0:x1] + coef[1] * self.vv[y0:y1, x0:x1] + np.float32(coef[2])
            zroi = invz[y0:y1, x0:x1]
            upd = (mask > 0) & (iz > zroi)
            np.copyto(zroi, iz, where=upd)
            np.copyto(img[y0:y1, x0:x1], warped, where=upd[..., None])
            if want_ids:
                np.copyto(ids[y0:y1, x0:x1], np.uint8(quad.obj), where=upd)
        return img, invz, ids


class FisheyeRenderer:
    """Renders straight to the RADIAL_FISHEYE camera (image and per-pixel object ids)."""

    def __init__(self, scene: Scene, cam: Fisheye):
        self.cam = cam
        canvas, mx, my = distortion_maps(cam)
        self.pinhole = Renderer(scene, canvas)
        self.map1, self.map2 = remap_fast(mx, my)
        self.map_x, self.map_y = mx, my

    def render(self, cam_from_world: np.ndarray):
        img, _, ids = self.pinhole.render(cam_from_world)
        out = cv2.remap(img, self.map1, self.map2, cv2.INTER_LINEAR, borderMode=cv2.BORDER_REPLICATE)
        out_ids = cv2.remap(ids, self.map_x, self.map_y, cv2.INTER_NEAREST, borderMode=cv2.BORDER_CONSTANT)
        return out, out_ids
