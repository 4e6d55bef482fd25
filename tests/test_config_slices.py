"""Each rule gets only the configuration its stage reads: changing one config key makes
Snakemake's params trigger rerun exactly the rules that read it (issue #12: a merge-only threshold
used to rerun every clip's SfM).

Table-driven over the schema: every leaf key has an expected set of reading rules below (a new key
without an entry fails the test). For each key the workflow is loaded twice in this process,
with the key at its default and changed, and the params Snakemake records per job
(`persistence._params`, what `--rerun-triggers params` compares) are diffed; test_demo checks
the same on a finished run with a real dry-run."""

from __future__ import annotations

import copy
from pathlib import Path

import pytest
from snakemake.exceptions import WorkflowError

from vq3d.config import ConfigError, load_config, load_schema

# Keys that change which jobs exist or where their files are: reruns follow from missing files,
# not from params.
STRUCTURE = "structure"

POSE = {
    "min_sfm_images": {"pose_sfm"}, "seed": {"pose_sfm"}, "threads": {"pose_sfm"},
    "sift_first_octave": {"pose_sfm"}, "sfm_overlap": {"pose_sfm"},
    "sfm_quadratic_overlap": {"pose_sfm"}, "sfm_keyframe_stride": {"pose_sfm"},
    "sfm_loop_pairs": {"pose_sfm"}, "sfm_loop_candidates": {"pose_sfm"},
    "sfm_ba_global_ratio": {"pose_sfm"},
    "sfm_mapper": {"pose_sfm"}, "sfm_window_frames": {"pose_sfm"},
    "sfm_window_overlap": {"pose_sfm"}, "sfm_hierarchical_leaf": {"pose_sfm"},
    "sfm_min_inliers": {"pose_sfm"}, "sfm_init_min_inliers": {"pose_sfm"},
    # SIFT of the clip frames (SfM, PnP) and of the scan renders (registration).
    "sift_max_side": {"pose_sfm", "pose_register", "pose_pnp"},
    "sift_max_features": {"pose_sfm", "pose_register", "pose_pnp"},
    "register_keyframes": {"pose_register"}, "register_min_inliers": {"pose_register"},
    "register_min_renders": {"pose_register"},
    # The Sim(3) RANSAC threshold: renders (register) and renders + PnP frames (merge).
    "register_max_error_m": {"pose_register", "pose_merge"},
    "pnp_max_error_px": {"pose_register", "pose_pnp"},
    "pnp": {"pose_pnp"}, "pnp_refs": {"pose_pnp"}, "pnp_ratio": {"pose_pnp"},
    "pnp_min_inliers": {"pose_pnp"}, "pnp_check_stride": {"pose_pnp"},
    "pnp_rotation_groups": {"pose_pnp"},
    "refine_with_pnp": {"pose_merge"}, "sim3_min_pnp_frames": {"pose_merge"},
    "max_disagreement_m": {"pose_merge"}, "interpolate_max_gap": {"pose_merge"},
}
PREDICT_ALWAYS = ["depth", "aggregation", "min_points", "max_depth_m", "sfm_surface_offset",
                  "triangulation_max_error_deg", "triangulation_min_angle_deg", "fallback",
                  "undistort", "crop_anchor_m"]
MONO = ["mono_checkpoint", "mono_input_size", "mono_output"]
NMS = ["nms_threshold", "nms_fusion_threshold"]
FEATURES = ["max_side", "min_side", "max_keypoints", "crop_min_side", "ratio", "min_inliers",
            "ransac_px", "score_scale", "threads", "colour", "colour_weight",
            "colour_auto_max_keypoints"]
SIAMRCNN = ["config", "checkpoint", "vq2d_root", "device", "batch_size", "score_thresh",
            "downscale_height"]
SCAN_REFS = ["gl", "width", "height", "fov_deg", "spacing_m", "heights_m", "yaws", "pitch_deg",
             "min_valid", "min_depth_m", "max_views", "geo", "jpeg_quality"]
EGO4D = ["annotations", "queries", "mapping", "intrinsics", "scans_dir", "scan_names", "videos_dir",
         "source", "aws_profile", "version", "precomputed.detections", "precomputed.peaks",
         "precomputed.poses"]

# Default (synthetic demo) configuration: key -> rules whose params change.
EXPECTED: dict[str, set | str] = {
    "data_dir": STRUCTURE, "results_dir": STRUCTURE,
    "dataset.kind": STRUCTURE, "dataset.split": STRUCTURE,
    "synth.seed": STRUCTURE,  # part of the clip ids
    "synth.queries_per_clip": {"synth"}, "synth.width": {"synth"},
    "synth.height": {"synth"}, "synth.source_fps": {"synth"}, "synth.clip_seconds": {"synth"},
    "synth.scenes": STRUCTURE, "synth.clips_per_scene": STRUCTURE,
    "synth.preset": {"synth"}, "synth.ref_views": {"synth"}, "synth.scale": set(),  # scale: the hard tier's only
    **{f"ego4d.{k}": set() for k in EGO4D},  # the synthetic dataset reads no ego4d key
    **{f"scan_refs.{k}": set() for k in SCAN_REFS},  # synthetic scans carry their views
    "frames.fps": {"frames"}, "frames.decoder": {"frames"}, "frames.max_side": {"frames"},
    "frames.jpeg_quality": {"frames"},
    "detect.backend": {"detect"}, "detect.top_k": {"detect"},
    "detect.precomputed": set(),  # read by the precomputed backend only
    **{f"detect.peaks.{k}": {"peaks"} for k in
       ["method", "smoothing", "distance", "width", "prominence", "min_score"]},
    **{f"detect.features.{k}": {"detect"} for k in FEATURES},
    **{f"detect.siamrcnn.{k}": set() for k in SIAMRCNN},  # backend features
    **{f"pose.{k}": v for k, v in POSE.items()},
    **{f"predict.{k}": {"predict"} for k in PREDICT_ALWAYS},
    **{f"predict.{k}": set() for k in MONO + NMS},  # depth sfm, aggregation mf_geomedian
    # Only imported poses need predict's own Sim(3) fit: merged ones come with pose_merge's.
    "predict.sfm_sim3_threshold_m": set(),
}

# Keys read only in some modes: (context, key) -> rules, in that context.
CONDITIONAL = [
    *[({"detect": {"backend": "siamrcnn"}}, f"detect.siamrcnn.{k}", {"detect"}) for k in SIAMRCNN],
    *[({"detect": {"backend": "siamrcnn"}}, f"detect.features.{k}", set()) for k in FEATURES[:2]],
    ({"detect": {"backend": "precomputed", "precomputed": "a.json"}}, "detect.precomputed", {"detect"}),
    ({"synth": {"preset": "hard"}}, "synth.scale", {"synth"}),
    *[({"synth": {"preset": "hard"}}, f"synth.{k}", set()) for k in ("width", "height", "clip_seconds")],
    *[({"predict": {"depth": "mono", "mono_checkpoint": "m.pt"}}, f"predict.{k}", {"predict"})
      for k in MONO],
    *[({"predict": {"aggregation": "mf_nms"}}, f"predict.{k}", {"predict"}) for k in NMS],
]

TINY = {"synth": {"scenes": 1, "clips_per_scene": 1}}


def schema_leaves(node: dict, prefix: str = "") -> dict[str, dict]:
    out = {}
    for name, sub in node.get("properties", {}).items():
        key = f"{prefix}{name}"
        if sub.get("type") == "object" and "properties" in sub:
            out.update(schema_leaves(sub, key + "."))
        else:
            out[key] = sub
    return out


def nested(key: str, value) -> dict:
    out = value
    for part in reversed(key.split(".")):
        out = {part: out}
    return out


def merge(base: dict, extra: dict) -> dict:
    out = copy.deepcopy(base)
    for k, v in extra.items():
        out[k] = merge(out[k], v) if isinstance(v, dict) and isinstance(out.get(k), dict) else v
    return out


def lookup(config: dict, key: str):
    for part in key.split("."):
        config = config[part]
    return config


def changed_value(config: dict, key: str, schema: dict):
    """A valid value of `key` other than its value in `config` (if the schema allows one)."""
    current = lookup(config, key)
    types = schema.get("type") if isinstance(schema.get("type"), list) else [schema.get("type")]
    if "enum" in schema:
        candidates = [v for v in schema["enum"] if v != current]
    elif current is None and "integer" in types:
        candidates = [max(schema.get("minimum", 1), 320)]
    elif current is None and "number" in types:
        candidates = [0.3]
    elif current is None or isinstance(current, str):
        candidates = ["v3", f"{current}2", "other.json"]
    elif isinstance(current, list):
        candidates = [current + current[-1:]]
    elif isinstance(current, bool):
        candidates = [not current]
    elif isinstance(current, int):
        step = schema.get("multipleOf", 1)
        candidates = [current + step, current - step, current + 1000 * step]  # 1000: sizes above a floor
    else:
        candidates = [current * 1.5, current * 0.5, current + 1, current - 1]
    for value in candidates:
        try:
            load_config(overrides=merge(config, nested(key, value)))
            return value
        except ConfigError:
            continue
    # dataset.kind: ego4d needs its files; the workflow refuses to build (a structural change).
    return candidates[0]


class Workflow:
    """Loads the workflow in this process (Snakemake API) and reports each job's recorded params."""

    def __init__(self, repo: Path, workdir: Path):
        self.snakefile, self.workdir = repo / "Snakefile", workdir
        self._cache: dict[str, dict] = {}

    def cached_jobs(self, config: dict) -> dict:
        key = repr(config)
        if key not in self._cache:
            self._cache[key] = self.jobs(config)
        return self._cache[key]

    def jobs(self, config: dict) -> dict[tuple[str, str], tuple[list, list]]:
        """(rule, wildcards) -> (params as Snakemake records them, output paths), every job."""
        return self.map_jobs(config, lambda job, workflow: (workflow.persistence._params(job),
                                                             sorted(map(str, job.output))))

    def map_jobs(self, config: dict, describe) -> dict:
        from snakemake.api import SnakemakeApi
        from snakemake.settings.types import (ConfigSettings, DAGSettings, OutputSettings,
                                              Quietness, ResourceSettings)

        with SnakemakeApi(OutputSettings(quiet={Quietness.ALL})) as api:
            wf = api.workflow(resource_settings=ResourceSettings(cores=1),
                              config_settings=ConfigSettings(config=copy.deepcopy(config)),
                              snakefile=self.snakefile, workdir=self.workdir)
            wf.dag(DAGSettings())
            workflow = wf._workflow
            workflow._prepare_dag(forceall=False, ignore_incomplete=True, lock_warn_only=True)
            workflow._build_dag()
            return {(job.rule.name, str(job.wildcards)): describe(job, workflow)
                    for job in workflow.dag.jobs}


def reading_rules(base: dict, changed: dict) -> set[str] | str:
    if set(base) != set(changed) or any(base[j][1] != changed[j][1] for j in base):
        return STRUCTURE
    return {job[0] for job, (params, _) in base.items() if params != changed[job][0]}


@pytest.fixture(scope="module")
def workflow(repo, tmp_path_factory):
    return Workflow(repo, tmp_path_factory.mktemp("slices"))


def check(workflow, context: dict, key: str, expected) -> str | None:
    leaves = schema_leaves(load_schema())
    config = load_config(overrides=copy.deepcopy(context))
    value = changed_value(config, key, leaves[key])
    base = workflow.cached_jobs(context)
    try:
        got = reading_rules(base, workflow.jobs(merge(context, nested(key, value))))
    except WorkflowError as exc:  # a key that makes the workflow refuse to build
        if expected == STRUCTURE:
            return None
        return f"{key}={value!r}: the workflow did not build ({exc})"
    if got != expected:
        return f"{key}={value!r}: expected {expected}, got {got}"
    return None


def test_every_schema_key_has_an_expected_reader():
    leaves = set(schema_leaves(load_schema()))
    assert leaves == set(EXPECTED), (sorted(leaves - set(EXPECTED)), sorted(set(EXPECTED) - leaves))


def test_each_key_reruns_only_the_rules_that_read_it(workflow):
    problems = [p for key, expected in EXPECTED.items()
                if (p := check(workflow, TINY, key, expected))]
    assert not problems, "\n".join(problems)


def test_keys_read_only_in_some_modes(workflow):
    problems = [p for context, key, expected in CONDITIONAL
                if (p := check(workflow, merge(TINY, context), key, expected))]
    assert not problems, "\n".join(problems)


@pytest.mark.anchors
def test_ego4d_keys_on_the_real_annotations(workflow, anchors):
    """On the real annotation files (44 val clips) the ego4d keys reach the rules that read them."""
    from test_workflow import ego4d_config

    context = ego4d_config(anchors)
    expected = {"ego4d.aws_profile": {"download"}, "ego4d.version": {"download"},
                # predict casts rays into the scan surface (depth scan, the last fallback).
                "ego4d.scans_dir": {"pose_register", "pose_pnp", "scan_refs", "predict"},
                **{f"scan_refs.{k}": {"scan_refs"} for k in SCAN_REFS},
                "ego4d.precomputed.detections": {"detect"}, "ego4d.precomputed.peaks": {"detect"},
                "ego4d.videos_dir": STRUCTURE, "ego4d.source": STRUCTURE,
                "ego4d.precomputed.poses": STRUCTURE,
                "pose.max_disagreement_m": {"pose_merge"}, "detect.top_k": {"detect"},
                "predict.sfm_sim3_threshold_m": set()}
    problems = [p for key, exp in expected.items() if (p := check(workflow, context, key, exp))]
    # Imported poses (no pose_merge): predict fits each sub-model's Sim(3) with its threshold.
    imported = merge(context, {"ego4d": {"precomputed": {"poses": str(anchors)}}})
    problems += [p for p in [check(workflow, imported, "predict.sfm_sim3_threshold_m", {"predict"})] if p]
    assert not problems, "\n".join(problems)


def test_keys_added_later_stay_out_of_the_params_at_their_default(workflow):
    """SILENT_AT_DEFAULT keys (added to a stage after results existed; their default reproduces
    those results): at the default, the params Snakemake records for the rule are exactly those of
    a slice without them, so a finished run made before them is not rerun (pose_sfm: hours per
    clip). Set off the default they enter the params (EXPECTED above: the rule reruns), and the
    stage always gets the whole slice back (complete_conf, as vq3d.stage_runner calls it)."""
    from vq3d.config import defaults
    from vq3d.stages import (CONFIG_READS, SILENT_AT_DEFAULT, complete_conf, config_slice,
                             rule_params)

    assert SILENT_AT_DEFAULT
    jobs = workflow.cached_jobs(TINY)
    config = load_config(overrides=copy.deepcopy(TINY))
    for rule, keys in SILENT_AT_DEFAULT.items():
        assert set(keys) <= set(CONFIG_READS[rule][1]), rule
        older = {k: v for k, v in config_slice(config, rule).items() if k not in keys}
        recorded = [params for (name, _), (params, _) in jobs.items() if name == rule]
        # the recorded params: one repr per param, the conf slice's among them
        assert recorded and all(str(older) in p for p in recorded), (rule, recorded)
        assert rule_params(config, rule) == older
        assert complete_conf(rule, rule_params(config, rule)) == config_slice(config, rule)
        section = CONFIG_READS[rule][0]
        for k in keys:
            off = defaults(section)[k] + 1
            moved = load_config(overrides=merge(copy.deepcopy(TINY), {section: {k: off}}))
            assert rule_params(moved, rule)[k] == off
            assert complete_conf(rule, rule_params(moved, rule))[k] == off
