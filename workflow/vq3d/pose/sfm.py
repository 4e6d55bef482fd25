"""Stage pose_sfm: pycolmap SfM of one clip's frames with the scan's known fisheye intrinsics.

Output folder (`out_dir`):
    database.db      SIFT features and verified matches of the clip frames (register reuses it)
    models/<k>/      COLMAP binary sub-models, largest first (several are normal)
    sfm.json         {"frames": n, "camera": {...}, "models": [{"dir", "images", "points3D"}],
                      "seconds": {...}}

Matching: sequential (each frame with the next `sfm_overlap`, quadratic overlap) plus loop
closure among keyframes (every `sfm_keyframe_stride`-th frame), because egocentric clips revisit
places and pure sequential matching drifts. Loop pairs (`sfm_loop_pairs`): `exhaustive` (default)
matches every keyframe with every other (quadratic in the clip; with SfM windows, in the window);
`retrieval` pairs each keyframe with its `sfm_loop_candidates` most similar keyframes by a VLAD
descriptor built from the clip's own SIFT (vq3d.pose.retrieval), linear in the frames. Intrinsics stay fixed: they are the
scan's calibrated RADIAL_FISHEYE.

Speed knobs (pose config): `sift_first_octave` (0: SIFT on the ≤ `sift_max_side` image itself,
not COLMAP's 2× upsampled one), `sfm_overlap` / `sfm_quadratic_overlap` / `sfm_keyframe_stride` /
`sfm_loop_pairs` / `sfm_loop_candidates` (matching pairs), `sfm_mapper` (`incremental`,
`global` or `hierarchical`), `sfm_ba_global_ratio` (incremental mapping: grow the model by this
factor between global bundle adjustments), `sfm_window_frames` / `sfm_window_overlap` (long
clips mapped in overlapping windows, vq3d.pose.windows: each mapping bounded, so the cost grows
linearly with the clip; loop pairs are then matched only inside a window, the only ones a
window's mapping uses), all measured in docs/benchmarks.md."""

from __future__ import annotations

import logging
import shutil
import time
from pathlib import Path

import pycolmap

from ..atomic import atomic_dir
from ..formats.pose_internal import write_sfm_info
from . import colmap_io, retrieval
from .windows import clip_windows
from ..progress import Progress

log = logging.getLogger(__name__)

MAPPERS = ("incremental", "global", "hierarchical")


LOOP_PAIRS = ("retrieval", "exhaustive")


def loop_pairs(database: Path, names: list[str], conf: dict) -> list[tuple[str, str]]:
    """Loop-closure pairs among the keyframes (pairs sequential matching covers are skipped)."""
    stride, overlap = int(conf["sfm_keyframe_stride"]), int(conf["sfm_overlap"])
    kind = conf["sfm_loop_pairs"]
    if kind == "retrieval":
        pairs = retrieval.loop_pairs(database, names, stride, overlap,
                                     int(conf["sfm_loop_candidates"]), int(conf["seed"]))
    elif kind == "exhaustive":
        pairs = retrieval.exhaustive_pairs(names, stride, overlap)
    else:
        raise ValueError(f"pose.sfm_loop_pairs must be one of {LOOP_PAIRS}, got {kind!r}")
    spans = clip_windows(len(names), conf)
    if len(spans) == 1:
        return pairs
    # Windowed mapping never uses a pair across windows: match only those inside one (exhaustive
    # pairs then grow with the windows, i.e. linearly, instead of with the square of the clip).
    window_of = {}
    for w, (a, b) in enumerate(spans):
        for i in range(a, b):
            window_of.setdefault(names[i], set()).add(w)
    return [(p, q) for p, q in pairs if window_of[p] & window_of[q]]


def mapper_options(conf: dict) -> pycolmap.IncrementalPipelineOptions:
    opts = pycolmap.IncrementalPipelineOptions()
    opts.min_model_size = max(3, int(conf["min_sfm_images"]))
    # Known calibration: keep it fixed through every bundle adjustment and registration.
    opts.ba_refine_focal_length = False
    opts.ba_refine_principal_point = False
    opts.ba_refine_extra_params = False
    opts.mapper.abs_pose_refine_focal_length = False
    opts.mapper.abs_pose_refine_extra_params = False
    # Short clips: fewer init trials; random seed fixed for reproducible sub-models.
    opts.random_seed = int(conf["seed"])
    opts.num_threads = int(conf["threads"])
    # Global BA whenever the model has grown by this factor (COLMAP: 1.1): fewer full
    # adjustments of a long clip; local BA after every image keeps the new ones accurate.
    ratio = float(conf["sfm_ba_global_ratio"])
    opts.ba_global_frames_ratio = ratio
    opts.ba_global_points_ratio = ratio
    # Registering a frame into a model needs this many 2D-3D inliers (COLMAP: 30); the model's
    # first pair needs `sfm_init_min_inliers` (COLMAP: 100). Low-texture, blurred frames have few.
    opts.mapper.abs_pose_min_num_inliers = int(conf["sfm_min_inliers"])
    opts.mapper.init_min_num_inliers = int(conf["sfm_init_min_inliers"])
    return opts


def global_options(conf: dict, known_camera: bool) -> pycolmap.GlobalPipelineOptions:
    opts = pycolmap.GlobalPipelineOptions()
    opts.min_model_size = max(3, int(conf["min_sfm_images"]))
    opts.random_seed = int(conf["seed"])
    opts.num_threads = int(conf["threads"])
    ba = opts.mapper.bundle_adjustment
    ba.refine_focal_length = not known_camera
    ba.refine_principal_point = False
    ba.refine_extra_params = not known_camera
    return opts


def extract(database: Path, image_dir: Path, names: list[str], camera: pycolmap.Camera | None,
            conf: dict) -> None:
    """SIFT of the clip frames, one shared camera (the known fisheye when given). SIFT's first
    octave is `sift_first_octave` (COLMAP's default −1 doubles the image first: 4× the pixels
    for small-scale features the ≤ 1024 px frames do not need)."""
    reader = pycolmap.ImageReaderOptions()
    if camera is not None:
        reader.camera_model = camera.model.name
        reader.camera_params = ",".join(f"{v:.10g}" for v in camera.params)
    else:
        reader.camera_model = "SIMPLE_RADIAL"
    opts = colmap_io.extraction_options(conf, int(conf["threads"]))
    opts.sift.first_octave = int(conf["sift_first_octave"])
    opts.num_threads = int(conf["threads"])
    pycolmap.extract_features(database, image_dir, image_names=names,
                              camera_mode=pycolmap.CameraMode.SINGLE, reader_options=reader,
                              extraction_options=opts, device=colmap_io.device())


def match(database: Path, names: list[str], work: Path, conf: dict) -> int:
    """Sequential matches plus the keyframe loop-closure pairs; returns how many loop pairs."""
    overlap = int(conf["sfm_overlap"])
    pairing = pycolmap.SequentialPairingOptions()
    pairing.overlap = overlap
    pairing.quadratic_overlap = bool(conf["sfm_quadratic_overlap"])
    matching = pycolmap.FeatureMatchingOptions()
    matching.use_gpu = pycolmap.has_cuda
    matching.num_threads = int(conf["threads"])
    pycolmap.match_sequential(database, matching_options=matching, pairing_options=pairing,
                              device=colmap_io.device())
    loops = loop_pairs(database, names, conf)
    colmap_io.match_pairs(database, loops, work, int(conf["threads"]))
    return len(loops)


def map_images(database: Path, image_dir: Path, names: list[str], out: Path,
               camera: pycolmap.Camera | None, conf: dict, restrict: bool
               ) -> dict[int, pycolmap.Reconstruction]:
    """One mapping of `names`: a window of the database's images (`restrict`), or all of them."""
    mapper = conf["sfm_mapper"]
    subset = list(names) if restrict else []  # empty: every image of the database
    if mapper == "global":
        log.info("SfM: global mapping of %d images", len(names))
        opts = global_options(conf, camera is not None)
        opts.image_names = subset
        return pycolmap.global_mapping(database, image_dir, out, opts)
    if mapper not in ("incremental", "hierarchical"):
        raise ValueError(f"pose.sfm_mapper must be one of {MAPPERS}, got {mapper!r}")
    opts = mapper_options(conf)
    if camera is None:  # unknown calibration (the real renders benchmark): refine focal only
        opts.ba_refine_focal_length = True
        opts.mapper.abs_pose_refine_focal_length = True
    opts.image_names = subset
    if mapper == "hierarchical":
        # COLMAP's scene-graph clusters of <= sfm_hierarchical_leaf images mapped one by one and
        # merged through their shared images.
        hier = pycolmap.HierarchicalPipelineOptions()
        hier.incremental_options = opts
        hier.num_threads = opts.num_threads
        hier.num_workers = 1  # the job's threads go to each cluster's bundle adjustment
        hier.clustering_options.leaf_max_num_images = int(conf["sfm_hierarchical_leaf"])
        hier.clustering_options.image_overlap = int(conf["sfm_window_overlap"])
        log.info("SfM: hierarchical mapping of %d images", len(names))
        return pycolmap.hierarchical_mapping(database, image_dir, out, hier)
    registered = Progress(log, "SfM:", len(names), unit="images registered")
    recs = pycolmap.incremental_mapping(database, image_dir, out, opts,
                                        next_image_callback=registered.update)
    registered.done()
    return recs


def run_sfm(image_dir: Path, names: list[str], camera: pycolmap.Camera | None, work: Path,
            conf: dict) -> tuple[dict[int, pycolmap.Reconstruction], dict]:
    """Features, matches and mapping of `names` into `work` (database.db, models/)."""
    database = work / "database.db"
    seconds = {}
    t0 = time.perf_counter()
    log.info("SfM: extracting SIFT of %d frames", len(names))
    extract(database, image_dir, names, camera, conf)
    seconds["features"] = time.perf_counter() - t0
    log.info("SfM: features in %.1f s; matching", seconds["features"])

    t0 = time.perf_counter()
    loops = match(database, names, work, conf)
    seconds["matching"] = time.perf_counter() - t0
    log.info("matched %d frames (sequential overlap %d + %d loop-closure pairs) in %.1f s",
             len(names), int(conf["sfm_overlap"]), loops, seconds["matching"])

    t0 = time.perf_counter()
    models_dir = work / "models"
    models_dir.mkdir()
    spans = clip_windows(len(names), conf)
    if len(spans) > 1:
        log.info("SfM: %s mapping of %d images in %d windows %s", conf["sfm_mapper"], len(names),
                 len(spans), spans)
    recs = {}
    for w, (start, stop) in enumerate(spans):
        out = models_dir / f"window{w}"
        out.mkdir()
        for rec in map_images(database, image_dir, names[start:stop], out, camera, conf,
                              restrict=len(spans) > 1).values():
            recs[len(recs)] = rec
    seconds["mapping"] = time.perf_counter() - t0
    # Renumber largest first so models/0 is the main one.
    ordered = sorted(recs.values(), key=lambda r: r.num_reg_images(), reverse=True)
    shutil.rmtree(models_dir)
    models_dir.mkdir()
    models = {}
    for k, rec in enumerate(ordered):
        (models_dir / str(k)).mkdir()
        rec.write(models_dir / str(k))
        models[k] = rec
    log.info("SfM: %d/%d images registered in %d sub-model(s) %s (mapping %.1f s)",
             sum(r.num_reg_images() for r in ordered), len(names), len(ordered),
             [r.num_reg_images() for r in ordered], seconds["mapping"])
    return models, seconds


def main(frames_dir, intrinsics, out_dir, scan_uid, conf, threads: int = -1):
    """`threads`: the job's (the rule's `threads`; -1: every CPU); pose.threads > 0 overrides."""
    conf = {**conf, "threads": conf["threads"] if conf["threads"] > 0 else threads}
    if conf["sfm_mapper"] not in MAPPERS:
        raise ValueError(f"pose.sfm_mapper must be one of {MAPPERS}, got {conf['sfm_mapper']!r}")
    names = colmap_io.list_frames(frames_dir)
    clip_windows(len(names), conf)  # windows that cannot advance fail now, not after matching
    width, height = colmap_io.image_size(Path(frames_dir) / names[0])
    params = colmap_io.read_fisheye(intrinsics, scan_uid, width, height)
    camera = colmap_io.fisheye_camera(params, width, height)
    log.info("SfM of %d frames (%dx%d) of scan %s, RADIAL_FISHEYE %s, device %s",
             len(names), width, height, scan_uid, params, colmap_io.device().name)
    with atomic_dir(out_dir) as work:
        models, seconds = run_sfm(Path(frames_dir), names, camera, work, conf)
        write_sfm_info(work, len(names),
                       {"model": "RADIAL_FISHEYE", "width": width, "height": height,
                        "params": list(map(float, params))},
                       [{"dir": f"models/{k}", "images": rec.num_reg_images(),
                         "points3D": rec.num_points3D()} for k, rec in models.items()],
                       seconds)
