#!/usr/bin/env bash
# GPU suite (issue 17.5): on a machine with an NVIDIA GPU, in under 8 minutes of wall time,
# installs what it needs from PyPI, then measures NVDEC frame extraction vs the CPU, pycolmap-cuda12
# SfM features + matching vs the CPU on a 600-frame synthetic clip (plus a complete SfM with the
# time left), and the detect stage; every figure goes into one JSON file (--out). Without a GPU,
# or with --cpu-only, the GPU parts are recorded as skipped and the CPU parts still run.
#
#   benchmarks/gpu_suite.sh [--out gpu_suite.json] [--work DIR] [--frames 600] [--budget 450]
#                           [--tiny] [--cpu-only] [--no-install] [--wheels DIR]
#
#   --tiny        20 frames at 320x240 (the CPU test, seconds)
#   --no-install  use the Python environment as it is (vq3d's deps importable)
#   --wheels DIR  install from a folder of wheels instead of PyPI (a machine with no network)
#   --budget S    wall-time budget in seconds, installation included (default 450: under 8 min)
# Install: a venv in WORK (system site-packages visible) with pycolmap-cuda12 on a GPU machine,
# numpy scipy pyyaml jsonschema opencv-python-headless imageio-ffmpeg — no torch, no snakemake:
# the suite calls the stage functions. If pip cannot reach PyPI the suite says so in the report
# and runs with what is installed. The measuring code is benchmarks/gpu_suite.py.
set -euo pipefail
T0=$(date +%s)
REPO=$(cd "$(dirname "$0")/.." && pwd)
OUT=gpu_suite.json; WORK=""; FRAMES=600; BUDGET=450; TINY=(); CPU_ONLY=0; INSTALL=1; WHEELS=""
while [ $# -gt 0 ]; do
  case "$1" in
    --out) OUT=$2; shift 2 ;;
    --work) WORK=$2; shift 2 ;;
    --frames) FRAMES=$2; shift 2 ;;
    --budget) BUDGET=$2; shift 2 ;;
    --tiny) TINY=(--tiny); shift ;;
    --cpu-only) CPU_ONLY=1; shift ;;
    --no-install) INSTALL=0; shift ;;
    --wheels) WHEELS=$2; shift 2 ;;
    -h|--help) sed -n '2,21p' "$0"; exit 0 ;;
    *) echo "gpu_suite.sh: unknown option $1 (see --help)" >&2; exit 2 ;;
  esac
done
WORK=${WORK:-$(mktemp -d -t vq3d-gpu-suite.XXXXXX)}
mkdir -p "$WORK"
OUT=$(cd "$(dirname "$OUT")" && pwd)/$(basename "$OUT")
PY=${PYTHON:-python3}
say() { echo "gpu_suite: $*" >&2; }

GPU=0
if [ "$CPU_ONLY" = 0 ] && command -v nvidia-smi >/dev/null 2>&1 && nvidia-smi -L 2>/dev/null | grep -q GPU; then
  GPU=1
fi
say "GPU: $([ $GPU = 1 ] && nvidia-smi -L | head -1 || echo 'none (GPU parts skipped)')"

NOTE="not attempted (--no-install)"
if [ "$INSTALL" = 1 ]; then
  colmap=pycolmap; [ "$GPU" = 1 ] && colmap=pycolmap-cuda12
  pkgs=(numpy scipy pyyaml jsonschema opencv-python-headless imageio-ffmpeg "$colmap")
  pipargs=(-q --disable-pip-version-check); [ -n "$WHEELS" ] && pipargs+=(--no-index --find-links "$WHEELS")
  if "$PY" -m venv --system-site-packages "$WORK/venv" >&2 &&
     timeout 180 "$WORK/venv/bin/python" -m pip install "${pipargs[@]}" "${pkgs[@]}" >&2; then
    PY="$WORK/venv/bin/python"
    NOTE="installed into $WORK/venv: ${pkgs[*]}"
  else
    NOTE="pip install ${pkgs[*]} failed (no PyPI access? try --wheels DIR): running with $PY as it is"
  fi
  say "$NOTE"
fi

# NVDEC needs an ffmpeg built with the cuda hwaccel: the one on the PATH, else the pip one.
if [ "$GPU" = 1 ] && [ -z "${VQ3D_FFMPEG:-}" ]; then
  for cand in "$(command -v ffmpeg || true)" \
              "$("$PY" -c 'import imageio_ffmpeg as m; print(m.get_ffmpeg_exe())' 2>/dev/null || true)"; do
    if [ -n "$cand" ] && "$cand" -hide_banner -hwaccels 2>/dev/null | grep -qx cuda; then
      export VQ3D_FFMPEG=$cand; break
    fi
  done
fi

export PYTHONPATH="$REPO/workflow${PYTHONPATH:+:$PYTHONPATH}"
exec "$PY" "$REPO/benchmarks/gpu_suite.py" --out "$OUT" --work "$WORK" --frames "$FRAMES" \
  --gpu "$GPU" --deadline $((T0 + BUDGET)) --t0 "$T0" --install-note "$NOTE" "${TINY[@]}"
