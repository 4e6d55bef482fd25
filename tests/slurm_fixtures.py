"""A tiny stand-in of the vq3d workflow for the Slurm tests and benchmarks: the same rule names and
per-clip group as the real one (so profiles/slurm applies unchanged), seconds instead of hours;
like the real rules, its rules declare their runtime and memory (the profile holds site settings).

Each clip's `data/<clip>.txt` is its "video"; a file starting with CORRUPT fails `frames` with a
clear error. Every output is written partly, then slept on, then completed, so a job killed
mid-run leaves a half-written file behind for Snakemake to clean up. With a `gate` (a path), every
`predict` job waits until that file exists: a test holds the run open until it has seen what it
waits for (a requeued controller), however fast or slow the machine is.
"""

from __future__ import annotations

from pathlib import Path

TINY_SNAKEFILE = r'''
CLIPS = config["clips"]
NAP = config.get("nap", 1)
GATE = config.get("gate")


def half_write(path, text):
    """Write half, sleep, finish: a kill in between leaves a visibly incomplete file."""
    import time
    with open(path, "w") as f:
        f.write("partial\n")
        f.flush()
        time.sleep(NAP)
        f.write(text + "\ncomplete\n")


rule all:
    input:
        "results/submission.txt",
    default_target: True


rule frames:
    input:
        video="data/{clip}.txt",
    output:
        "results/frames/{clip}.txt",
    log:
        "results/logs/frames/{clip}.log",
    group:
        "clip_gpu"
    resources:
        runtime=lambda wildcards, attempt: 60 * attempt,
        mem_mb=lambda wildcards, attempt: 4000 * attempt,
    run:
        text = open(input.video).read()
        if text.startswith("CORRUPT"):
            with open(log[0], "w") as f:
                f.write(f"bad input: {input.video}: not a video\n")
            raise ValueError(f"bad input: {input.video}: not a video")
        half_write(output[0], text)


rule detect:
    input:
        rules.frames.output,
    output:
        "results/detect/{clip}.txt",
    log:
        "results/logs/detect/{clip}.log",
    group:
        "clip_gpu"
    resources:
        runtime=lambda wildcards, attempt: 120 * attempt,
        mem_mb=lambda wildcards, attempt: 8000 * attempt,
    run:
        half_write(output[0], "detections " + wildcards.clip)


rule pose_sfm:
    input:
        rules.frames.output,
    output:
        "results/pose/{clip}/sfm.txt",
    log:
        "results/logs/pose_sfm/{clip}.log",
    group:
        "clip_gpu"
    resources:
        runtime=lambda wildcards, attempt: 480 * attempt,
        mem_mb=lambda wildcards, attempt: 16000 * attempt,
    run:
        half_write(output[0], "poses " + wildcards.clip)


rule predict:
    input:
        detect=rules.detect.output,
        sfm=rules.pose_sfm.output,
    output:
        "results/predict/{clip}.txt",
    log:
        "results/logs/predict/{clip}.log",
    resources:
        runtime=lambda wildcards, attempt: 30 * attempt,
        mem_mb=lambda wildcards, attempt: 4000 * attempt,
    run:
        if GATE:
            import os, time
            while not os.path.exists(GATE):
                time.sleep(0.5)
        half_write(output[0], "prediction " + wildcards.clip)


rule submission:
    input:
        expand("results/predict/{clip}.txt", clip=CLIPS),
    output:
        "results/submission.txt",
    localrule: True
    run:
        with open(output[0], "w") as f:
            for path in input:
                f.write(open(path).read())
'''


def make_tiny_workflow(root: Path, clips=("c0", "c1", "c2"), nap: float = 1,
                       corrupt=(), gate: str | None = None) -> Path:
    """Write the tiny workflow, its config and its inputs under root; return root."""
    root.mkdir(parents=True, exist_ok=True)
    (root / "Snakefile").write_text(TINY_SNAKEFILE)
    clip_list = ", ".join(f'"{c}"' for c in clips)
    gate_line = f"gate: {gate}\n" if gate else ""
    (root / "config.yaml").write_text(f"clips: [{clip_list}]\nnap: {nap}\n{gate_line}")
    (root / "data").mkdir(exist_ok=True)
    for clip in clips:
        text = "CORRUPT\n" if clip in corrupt else f"video of {clip}\n"
        (root / "data" / f"{clip}.txt").write_text(text)
    return root
