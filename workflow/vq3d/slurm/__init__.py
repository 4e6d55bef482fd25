"""Running vq3d on Slurm: a throwaway single-node cluster for tests/CI (`localcluster`), the
self-resubmitting Snakemake controller (`launch`) and per-clip run status (`status`)."""
