# One entry for every rule: runs the rule's stage function from the stage table (vq3d.stages).
from vq3d.stage_runner import run_from_snakemake

run_from_snakemake(snakemake)  # noqa: F821 (injected by Snakemake)
