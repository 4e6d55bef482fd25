# One entry for every rule: calls the stage function named in params.stage (see vq3d.stage_runner).
from vq3d.stage_runner import run_from_snakemake

run_from_snakemake(snakemake)  # noqa: F821 (injected by Snakemake)
