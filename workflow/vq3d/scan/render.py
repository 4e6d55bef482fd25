"""Headless rendering of a scan's textured mesh: RGB and metric z-depth at a known cam_from_world.

pyrender (OpenGL through PyOpenGL) on EGL: on a GPU node the NVIDIA EGL driver renders, on a CPU
node Mesa's llvmpipe does (Debian libegl-mesa0, libgl1-mesa-dri); `gl: osmesa` uses Mesa's OSMesa
(Debian libosmesa6) where EGL is unavailable (it needs PyOpenGL >= 3.1.5 over pyrender's 3.1.0 pin).
pyrender renders on EGL device `EGL_DEVICE_ID` (default 0: with glvnd the NVIDIA devices come
before Mesa's software one); the rule log and scan.json name the OpenGL renderer that was used. Why pyrender and how fast: docs/benchmarks.md.

Conventions: the camera is a COLMAP PINHOLE (fx, fy, cx, cy; pixel centres at +0.5, x right, y
down, z forward) and the pose is world->camera in the scan frame. pyrender's camera looks down -z
with y up, so its node pose is world_from_cam @ diag(1, -1, -1, 1); its IntrinsicsCamera
projection puts a point at u = fx X/Z + cx measured from the image's left edge, i.e. COLMAP's
pixel convention (tested against analytic geometry in tests/test_scan.py)."""

from __future__ import annotations

import logging
import os
from pathlib import Path

import numpy as np

from ..geometry import world_from_cam
from ..errors import InputError

log = logging.getLogger(__name__)

# OpenGL camera (x right, y up, looking down -z) from the COLMAP/OpenCV camera (y down, z forward).
GL_FROM_CV = np.diag([1.0, -1.0, -1.0, 1.0])


def _import_pyrender(gl: str):
    """pyrender with PyOpenGL bound to the headless platform `gl` (egl | osmesa). PyOpenGL picks
    its platform once per process, at its first import: a different earlier choice is an error."""
    current = os.environ.get("PYOPENGL_PLATFORM")
    if current and current != gl and "OpenGL" in __import__("sys").modules:
        raise RuntimeError(f"OpenGL already bound to {current!r} in this process, cannot switch to {gl!r}")
    os.environ["PYOPENGL_PLATFORM"] = gl
    try:
        import pyrender
        import trimesh
    except ImportError as exc:
        raise ImportError(f"the scan renderer needs pyrender and trimesh (pip install 'vq3d[render]'): {exc}") from exc
    if gl == "osmesa":
        import OpenGL.osmesa
        if not hasattr(OpenGL.osmesa, "OSMesaCreateContextAttribs"):
            raise RuntimeError(f"OSMesa rendering needs PyOpenGL >= 3.1.5 (this is {OpenGL.__version__}, "
                               "pyrender pins 3.1.0): pip install PyOpenGL==3.1.10, or use scan_refs.gl: egl")
    return pyrender, trimesh


def load_mesh(path: str | os.PathLike, gl: str = "egl"):
    """The scan's OBJ (with its MTL and textures) as trimesh geometries; clear errors for a mesh
    that cannot be read or holds no triangles."""
    _, trimesh = _import_pyrender(gl)
    path = Path(path)
    try:
        scene = trimesh.load(path, force="scene", process=False)
    except Exception as exc:  # trimesh raises many kinds for a broken file
        raise InputError(path, f"scan mesh cannot be read: {type(exc).__name__}: {exc}") from None
    geoms = [g for g in scene.dump() if hasattr(g, "faces") and len(g.faces)]
    if not geoms:
        raise InputError(path, "scan mesh holds no triangles")
    return geoms


def downscaled(width: int, height: int, intrinsics, downscale: int) -> tuple[int, int, float, float, float, float]:
    """(w, h, fx, fy, cx, cy) of the same view at 1/downscale the size: the image's outer edges stay
    fixed (pixel coordinates scale about the corner), so the field of view is unchanged."""
    fx, fy, cx, cy = intrinsics
    w, h = width // downscale, height // downscale
    return w, h, fx * w / width, fy * h / height, cx * w / width, cy * h / height


class MeshRenderer:
    """Offscreen renderer of one mesh at one camera size. `render(cam_from_world)` -> (rgb uint8
    H×W×3 in BGR order as OpenCV writes it, z-depth float32 H×W in metres, 0 = no surface)."""

    def __init__(self, geoms, width: int, height: int, fx: float, fy: float, cx: float, cy: float,
                 gl: str = "egl", znear: float = 0.05, zfar: float = 200.0):
        pyrender, _ = _import_pyrender(gl)
        self._pyrender = pyrender
        self.width, self.height = int(width), int(height)
        # Unlit: the texture colour as captured (a scan's textures already hold the lighting).
        self.scene = pyrender.Scene(ambient_light=np.ones(3), bg_color=np.zeros(4))
        for g in geoms:
            mesh = pyrender.Mesh.from_trimesh(g, smooth=False)
            for prim in mesh.primitives:
                # Scans are seen from inside and their winding is not always consistent.
                prim.material.doubleSided = True
            self.scene.add(mesh)
        self.intrinsics = (float(fx), float(fy), float(cx), float(cy))
        self.camera = pyrender.IntrinsicsCamera(fx, fy, cx, cy, znear=znear, zfar=zfar)
        self.node = self.scene.add(self.camera, pose=np.eye(4))
        try:
            self.renderer = pyrender.OffscreenRenderer(self.width, self.height)
        except Exception as exc:
            raise RuntimeError(f"no headless OpenGL context ({gl}): {type(exc).__name__}: {exc}; "
                               "install Debian libegl1 libegl-mesa0 libgl1-mesa-dri (or libosmesa6 "
                               "with scan_refs.gl: osmesa)") from exc
        self.gl = gl
        self.gl_renderer = self._gl_string()
        log.info("mesh renderer: %s via %s, %dx%d", self.gl_renderer, gl, self.width, self.height)

    def _gl_string(self) -> str:
        try:
            from OpenGL import GL
            return GL.glGetString(GL.GL_RENDERER).decode()
        except Exception:  # informative only
            return "unknown OpenGL renderer"

    def render(self, cam_from_world: np.ndarray, downscale: int = 1) -> tuple[np.ndarray, np.ndarray]:
        """`downscale` > 1: the same view at 1/downscale the size (cheap visibility tests)."""
        self._set_size(int(downscale))
        m = np.asarray(cam_from_world, float)[:3]
        pose = np.vstack([world_from_cam(m), [0.0, 0.0, 0.0, 1.0]])
        self.scene.set_pose(self.node, pose @ GL_FROM_CV)
        color, depth = self.renderer.render(self.scene, flags=self._pyrender.RenderFlags.FLAT)
        return np.ascontiguousarray(color[:, :, ::-1]), depth.astype(np.float32)

    def _set_size(self, downscale: int) -> None:
        w, h, fx, fy, cx, cy = downscaled(self.width, self.height, self.intrinsics, downscale)
        if (self.renderer.viewport_width, self.renderer.viewport_height) != (w, h):
            self.camera.fx, self.camera.fy, self.camera.cx, self.camera.cy = fx, fy, cx, cy
            self.renderer.viewport_width, self.renderer.viewport_height = w, h

    def close(self) -> None:
        self.renderer.delete()
