#!/usr/bin/env bash
# Snakemake runs this inside the new vq2d-detectron2 env right after creating it (--use-conda).
# detectron2 is not on PyPI and its setup.py imports torch, so it is built here, after torch, with
# build isolation off. The commit is the one vq3d's adapter was tested against
# (benchmarks/siamrcnn_random.py). VQ3D_DETECTRON2_SRC: a local checkout instead (sites without
# GitHub access); MAX_JOBS: parallel compile jobs (default 4).
set -euo pipefail
src=${VQ3D_DETECTRON2_SRC:-git+https://github.com/facebookresearch/detectron2.git@02b5c4e295e990042a714712c21dc79b731e8833}
if command -v nvcc >/dev/null; then
  # the env's CUDA toolkit; build the CUDA ops even where this node has no GPU (a login node)
  export CUDA_HOME=${CUDA_HOME:-$(dirname "$(dirname "$(command -v nvcc)")")}
  # GPU generations to compile for: CUDA 13 dropped Volta (sm_70)
  cuda_major=$(nvcc --version | sed -n 's/.*release \([0-9]*\)\..*/\1/p')
  if [ "${cuda_major:-12}" -ge 13 ]; then archs="7.5;8.0;8.6;9.0+PTX"; else archs="7.0;7.5;8.0;8.6;9.0+PTX"; fi
  export FORCE_CUDA=${FORCE_CUDA:-1} TORCH_CUDA_ARCH_LIST=${TORCH_CUDA_ARCH_LIST:-$archs}
fi
MAX_JOBS=${MAX_JOBS:-4} python -m pip install --no-build-isolation --no-deps "$src"
python -c "import detectron2, detectron2._C; print('detectron2', detectron2.__version__, 'built')"
