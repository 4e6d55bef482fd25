"""Running vq3d on Slurm: the self-resubmitting Snakemake controller (`launch`) and per-clip run
status (`status`). The single-node cluster the tests and CI start is test infrastructure
(tests/localcluster.py)."""

