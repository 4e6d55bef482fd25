# vq3d: Ego4D Visual Queries 3D localization, one clip per job fan-out.
# Run the demo:            snakemake --cores 2 --use-conda   (or without --use-conda in a ready env)
# On a Slurm cluster:      snakemake --profile profiles/slurm
# Inspect without running: snakemake -n  |  snakemake --rulegraph | dot -Tpng > rulegraph.png

import time
from pathlib import Path

from snakemake.utils import min_version

min_version("9.0")

RUN_START = time.time()  # logs written after this belong to this run (onerror, below)


# The working directory's config.yaml if there is one; --configfile/--config override it, and
# every key left out takes the schema's default (the synthetic demo).
if Path("config.yaml").exists():

    configfile: "config.yaml"


include: "rules/common.smk"
include: "rules/download.smk"
include: "rules/frames.smk"
include: "rules/detect.smk"
include: "rules/scan.smk"
include: "rules/pose.smk"
include: "rules/predict.smk"
include: "rules/report.smk"


rule all:
    input:
        final_targets(),
    default_target: True


# A failed run ends with the list of what failed in it (each rule log with its one-line reason, each
# job Slurm ended with its Slurm log), not only "Look above for error messages".
onerror:
    from vq3d.slurm.status import print_run_failures

    print_run_failures(LOGS, RUN_START - 2, log)
