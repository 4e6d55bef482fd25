"""The stage table: every rule's stage function and the part of the configuration it reads.

`STAGES` maps each Snakemake rule to its stage function: the rule runs it (vq3d.stage_runner looks
the rule up here), `vq3d <rule-name>` is its CLI front (vq3d.cli), docs/architecture.md lists it,
and tests/test_stages.py checks every rule's named inputs, outputs and params against the
function's signature. `deps` name inputs that only make the DAG wait (the synthetic scans folder):
they are not passed to the function.

A rule's `conf` param is `config_slice(config, rule)`: only the keys its stage reads, so that
Snakemake's params trigger reruns exactly the stages a changed key affects (a merge threshold
reruns pose_merge, not the hours of pose_sfm before it). A stage given a slice can read nothing
else: a key missing from its slice is a KeyError in the stage, caught by its tests.

Keys are top-level keys of one config section; a nested section (detect.peaks) travels whole.
Conditional keys are read only in some modes (the active detection backend's options, the mono
depth network, the NMS thresholds, predict's Sim(3) fit of imported poses), so they join the slice
only in those modes.

What the rule records is `rule_params(config, rule)`: the slice less its `SILENT_AT_DEFAULT`
keys where they hold the schema default. Those keys were added to a stage after results existed,
and their default reproduces what those results ran with. An upgrade then reruns nothing for
them (pose_sfm costs hours per clip); set off the default, they enter the params and rerun the
rule. vq3d.stage_runner puts the defaults back (`complete_conf`) before the stage runs."""

from __future__ import annotations

import copy
from dataclasses import dataclass


@dataclass(frozen=True)
class Stage:
    func: str  # "package.module:function"
    help: str  # one line: the CLI's help and the docs' table
    deps: tuple[str, ...] = ()  # named inputs that only order the DAG: not passed to `func`

    @property
    def module(self) -> str:
        return self.func.split(":")[0]


STAGES: dict[str, Stage] = {
    "synth": Stage("vq3d.synth.generate:main", "generate the synthetic egocentric benchmark"),
    "download": Stage("vq3d.download:main",
                      "fetch Ego4D clips/videos, annotations or 3d scans with the ego4d CLI"),
    "frames": Stage("vq3d.frames:main", "cut a clip and extract its frames at the clip fps"),
    "scan_refs": Stage("vq3d.scan.refs:main",
                       "render a Matterport scan's reference views and geo renders from its mesh"),
    "detect": Stage("vq3d.detect:main", "score a clip's frames against each visual crop"),
    "peaks": Stage("vq3d.detect.peaks:main", "pick each query's detection peaks from the scored frames"),
    "export_peaks": Stage("vq3d.detect.export:main",
                          "the split's detections as EgoLoc's peak file and per-frame dump"),
    "pose_sfm": Stage("vq3d.pose.sfm:main", "SfM of a clip's frames with the scan's intrinsics"),
    "pose_register": Stage("vq3d.pose.register:main", "Sim(3) of SfM sub-models to the scan frame",
                           deps=("scans",)),
    "pose_pnp": Stage("vq3d.pose.pnp:main", "PnP relocalization of clip frames against the scan",
                      deps=("scans",)),
    "pose_merge": Stage("vq3d.pose.merge:main", "merge SfM and PnP poses into the clip's pose JSON"),
    "pose_import": Stage("vq3d.pose.imported:main",
                         "a clip's poses from EgoLoc's/Ego4D's shared pose files, checked"),
    "predict": Stage("vq3d.predict:main", "lift peak detections to 3D and aggregate per query",
                     deps=("scans",)),
    "submission": Stage("vq3d.predict.submission:main", "write the challenge submission file"),
    "evaluate": Stage("vq3d.evaluate:main",
                      "L2, angle, Succ, Succ*, QwP of predictions against annotations"),
    "report_pose_coverage": Stage("vq3d.report.coverage:main",
                                  "report figure: pose sources over all clips"),
    "report_trajectory": Stage("vq3d.report.trajectory:main",
                               "report figure: a clip's top-down trajectory and predictions"),
    "report_detections": Stage("vq3d.report.detections:main",
                               "report figures: a clip's score curves, crops and peak frames"),
    "report_metrics_table": Stage("vq3d.report.metrics_table:main",
                                  "report table: the val metrics and every query's row"),
}


def command(rule: str) -> str:
    """The `vq3d` subcommand of a rule: its name with dashes."""
    return rule.replace("_", "-")

POSE_SIFT = ("sift_max_side", "sift_max_features")

# rule -> (config section, keys of it the stage always reads)
CONFIG_READS: dict[str, tuple[str, tuple[str, ...]]] = {
    "synth": ("synth", ("seed", "scenes", "clips_per_scene", "queries_per_clip", "width", "height",
                        "source_fps", "clip_seconds", "ref_views")),
    "scan_refs": ("scan_refs", ("gl", "width", "height", "fov_deg", "spacing_m", "heights_m", "yaws",
                                "pitch_deg", "min_valid", "min_depth_m", "max_views", "geo",
                                "jpeg_quality")),
    "frames": ("frames", ("fps", "decoder", "max_side", "jpeg_quality")),
    "detect": ("detect", ("backend", "top_k")),
    "peaks": ("detect", ("peaks",)),
    "pose_sfm": ("pose", ("min_sfm_images", "seed", "threads", *POSE_SIFT, "sift_first_octave",
                          "sfm_overlap", "sfm_quadratic_overlap", "sfm_keyframe_stride",
                          "sfm_loop_pairs", "sfm_loop_candidates", "sfm_ba_global_ratio",
                          "sfm_mapper", "sfm_window_frames", "sfm_window_overlap",
                          "sfm_hierarchical_leaf", "sfm_min_inliers", "sfm_init_min_inliers")),
    "pose_register": ("pose", (*POSE_SIFT, "register_keyframes", "register_min_inliers",
                               "register_min_renders", "register_max_error_m", "pnp_max_error_px")),
    "pose_pnp": ("pose", ("pnp", *POSE_SIFT, "pnp_refs", "pnp_ratio", "pnp_min_inliers",
                          "pnp_max_error_px", "pnp_check_stride", "pnp_rotation_groups")),
    "pose_merge": ("pose", ("refine_with_pnp", "sim3_min_pnp_frames", "register_max_error_m",
                            "max_disagreement_m", "interpolate_max_gap")),
    "predict": ("predict", ("depth", "aggregation", "fallback", "undistort", "min_points",
                            "max_depth_m", "sfm_surface_offset", "triangulation_max_error_deg",
                            "triangulation_min_angle_deg", "crop_anchor_m")),
}

DETECT_BACKEND_KEYS = {"features": ("features",), "siamrcnn": ("siamrcnn",),
                       "precomputed": ("precomputed",)}
PREDICT_MONO_KEYS = ("mono_checkpoint", "mono_input_size", "mono_output")
PREDICT_NMS_KEYS = ("nms_threshold", "nms_fusion_threshold")
# Imported poses come without pose_merge's scan_from_model: predict fits each sub-model's then.
PREDICT_IMPORTED_POSES_KEYS = ("sfm_sim3_threshold_m",)


def _detect_section(config: dict) -> dict:
    """The detect section, switched to EgoLoc's shared files when the config points at them."""
    conf = dict(config["detect"])
    shared = config["ego4d"]["precomputed"]
    if config["dataset"]["kind"] == "ego4d" and (shared["detections"] or shared["peaks"]):
        conf.update(backend="precomputed", precomputed=shared["detections"] or shared["peaks"])
    return conf


def read_keys(config: dict, rule: str) -> tuple[str, tuple[str, ...]]:
    """(section, keys) the stage of `rule` reads under `config` (a validated config)."""
    section, keys = CONFIG_READS[rule]
    if rule == "synth" and config["synth"]["preset"] != "easy":
        # preset and scale enter the slice off the easy default only: a demo made before they
        # existed is not regenerated for them
        keys = tuple(k for k in keys if k not in ("width", "height", "clip_seconds")) + ("preset", "scale")
    elif rule == "detect":
        keys += DETECT_BACKEND_KEYS[_detect_section(config)["backend"]]
    elif rule == "predict":
        conf = config["predict"]
        if conf["depth"] == "mono":
            keys += PREDICT_MONO_KEYS
        if conf["aggregation"] == "mf_nms":
            keys += PREDICT_NMS_KEYS
        if config["dataset"]["kind"] == "ego4d" and config["ego4d"]["precomputed"]["poses"]:
            keys += PREDICT_IMPORTED_POSES_KEYS
    return section, keys


def config_slice(config: dict, rule: str) -> dict:
    """The `conf` of `rule`'s stage: the keys of its section it reads, and nothing else."""
    section, keys = read_keys(config, rule)
    source = _detect_section(config) if rule == "detect" else config[section]
    return {k: copy.deepcopy(source[k]) for k in keys}


# rule -> keys added to its stage after results made without them existed, whose schema default
# reproduces those results: at the default they stay out of the rule's params (module doc).
# Changing such a key's default changes results: then it must leave this table.
SILENT_AT_DEFAULT: dict[str, tuple[str, ...]] = {
    "pose_sfm": ("sfm_min_inliers", "sfm_init_min_inliers"),  # COLMAP's own thresholds
}


def _silent_defaults(rule: str) -> dict:
    from .config import defaults

    keys = SILENT_AT_DEFAULT.get(rule, ())
    if not keys:
        return {}
    section = defaults(CONFIG_READS[rule][0])
    return {k: section[k] for k in keys}


def rule_params(config: dict, rule: str) -> dict:
    """The `conf` param a rule records: config_slice less its silent keys at their default."""
    silent = _silent_defaults(rule)
    return {k: v for k, v in config_slice(config, rule).items() if k not in silent or v != silent[k]}


def complete_conf(rule: str, conf: dict) -> dict:
    """A rule's recorded `conf` with its silent keys' defaults put back: the stage's slice."""
    return {**_silent_defaults(rule), **conf}


def stage_conf(rule: str, **overrides) -> dict:
    """The slice `rule` gets from the schema's defaults with `overrides` (keys of its section)
    applied and validated: what tests, benchmarks and the CLI hand a stage function."""
    from .config import load_config

    section = CONFIG_READS[rule][0]
    return config_slice(load_config(overrides={section: overrides}), rule)


def markdown_table() -> str:
    """The stage table as docs/architecture.md shows it (tests/test_stages.py keeps them equal)."""
    rows = ["| rule | `vq3d` subcommand | stage function | config it reads |",
            "|---|---|---|---|"]
    for rule, stage in STAGES.items():
        reads = ""
        if rule in CONFIG_READS:
            section, keys = CONFIG_READS[rule]
            reads = f"`{section}`: " + ", ".join(keys)
            if rule == "detect":
                reads += " + the active backend's section"
            elif rule == "predict":
                reads += (" (+ mono_* with depth mono, nms_* with mf_nms, "
                          "sfm_sim3_threshold_m with imported poses)")
        rows.append(f"| {rule} | `{command(rule)}` | `{stage.func}` | {reads} |")
    return "\n".join(rows) + "\n"


if __name__ == "__main__":
    print(markdown_table(), end="")
