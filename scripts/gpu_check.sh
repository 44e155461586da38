#!/usr/bin/env bash
# Everything that needs a CUDA GPU, in one run (< 8 min): build splatpack's kernels with CUDA, run every CUDA
# test (tests/test_kernels.py: CUDA kernels vs the references; tests/test_render.py: our renderer vs gsplat)
# and the kernel benchmarks on the GPU (bench/kernels.py --device cuda), and write all of it to one file.
#
#   scripts/gpu_check.sh [RESULTS_FILE]      # default bench/results/gpu_check.txt (+ kernels_cuda.json)
#
# Needs the project's venv with a CUDA build of torch (README, "On a CUDA machine"; PYTHON overrides
# .venv/bin/python) and the CUDA toolkit (CUDA_HOME, else found under /usr/local).
# Every step has its own time limit; a failing step is recorded and the next one still runs. gsplat compiles
# its own CUDA ops on first use (minutes, cached): do that once beforehand (README, "On a CUDA machine"), or the
# renderer step runs out of time.
set -uo pipefail
cd "$(dirname "$0")/.."
OUT=${1:-bench/results/gpu_check.txt}
mkdir -p "$(dirname "$OUT")"
PYTHON=${PYTHON:-.venv/bin/python}
if [ -z "${CUDA_HOME:-}" ]; then
  CUDA_HOME=$(ls -d /usr/local/cuda-13* /usr/local/cuda 2>/dev/null | head -n 1 || true)
fi
export CUDA_HOME
# Build for this GPU only (fastest), in a cache of its own.
TORCH_CUDA_ARCH_LIST=${TORCH_CUDA_ARCH_LIST:-$("$PYTHON" -c 'import torch; print("%d.%d" % torch.cuda.get_device_capability())' 2>/dev/null)}
export TORCH_CUDA_ARCH_LIST
export TORCH_EXTENSIONS_DIR=${TORCH_EXTENSIONS_DIR:-$PWD/.cache/torch_extensions_cuda}
export SPLATPACK_KERNELS=native  # a kernel that does not build is a failure here, not a fallback

status=0
step() {  # step NAME SECONDS COMMAND...: run with a time limit, record its exit status
  local name=$1 limit=$2
  shift 2
  echo "=== $name (limit ${limit} s) $(date -u +%H:%M:%S)"
  local start=$SECONDS
  timeout "$limit" "$@"
  local rc=$?
  echo "=== $name: exit $rc in $((SECONDS - start)) s"
  [ "$rc" -eq 0 ] || status=1
}

{
  echo "splatpack gpu_check, $(date -u '+%Y-%m-%d %H:%M:%S UTC'), commit $(git rev-parse --short HEAD 2>/dev/null)"
  nvidia-smi --query-gpu=name,driver_version,memory.total --format=csv,noheader 2>&1
  "$PYTHON" -c 'import torch; print("torch", torch.__version__, "CUDA", torch.version.cuda, "GPU", torch.cuda.is_available() and torch.cuda.get_device_name(0))'
  echo "CUDA_HOME=$CUDA_HOME TORCH_CUDA_ARCH_LIST=$TORCH_CUDA_ARCH_LIST PYTHON=$PYTHON"
  step "build kernels (CPU + CUDA)" 200 "$PYTHON" -m splatpack.kernels
  step "kernel tests (CUDA and CPU)" 100 "$PYTHON" -m pytest -q -rs -p no:cacheprovider tests/test_kernels.py
  step "renderer vs gsplat" 60 "$PYTHON" -m pytest -q -rs -p no:cacheprovider tests/test_render.py -k "gsplat or backend"
  step "kernel benchmarks (GPU)" 100 "$PYTHON" bench/kernels.py --device cuda
  echo "gpu_check: $([ "$status" -eq 0 ] && echo 'all steps passed' || echo 'SOME STEPS FAILED')"
  exit "$status"
} 2>&1 | tee "$OUT"
rc=${PIPESTATUS[0]}
echo "wrote $OUT"
exit "$rc"
