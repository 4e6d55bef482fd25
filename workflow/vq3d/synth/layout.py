"""Names of everything the synthetic benchmark writes, known before it is generated.

The workflow builds its DAG from these at parse time (a dry-run needs no generated data), and the
generator must write exactly these names."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class SynthClip:
    clip_uid: str
    video_uid: str
    scan_uid: str
    scene: int
    index: int  # clip index within its scene's video


def scan_uid(seed: int, scene: int) -> str:
    return f"synthscan-{seed}-{scene:02d}"


def video_uid(seed: int, scene: int) -> str:
    return f"synthvid-{seed}-{scene:02d}"


def clip_uid(seed: int, scene: int, index: int) -> str:
    return f"synthclip-{seed}-{scene:02d}-{index:02d}"


def clips(synth_config: dict) -> list[SynthClip]:
    seed = synth_config["seed"]
    return [
        SynthClip(clip_uid(seed, s, c), video_uid(seed, s), scan_uid(seed, s), s, c)
        for s in range(synth_config["scenes"])
        for c in range(synth_config["clips_per_scene"])
    ]


# Files under the synthetic dataset folder (data_dir/synth), mirroring Ego4D/EgoLoc names.
FILES = {
    "annotations_val": "vq3d_val.json",
    "annotations_test": "vq3d_test_unannotated_template.json",
    "queries_val": "vq_val_vq3d.json",
    "queries_test": "vq_test_vq3d.json",
    "mapping_val": "mapping_vq2d_to_vq3d_queries_annotations_val.json",
    "mapping_test": "mapping_vq2d_to_vq3d_queries_annotations_test.json",
    "intrinsics": "scan_to_intrinsics.json",
    "videos": "videos",   # videos/<video_uid>.mp4
    "scans": "scans",     # scans/<scan_uid>/...
    "gt": "gt",           # gt/... ground truth for every stage
}
