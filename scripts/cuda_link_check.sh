#!/usr/bin/env bash
# Optional full CUDA build check of splatpack's kernels (cuda/), NOT part of CI: compiles and links the
# extension with its CUDA kernels against a CUDA build of torch, which needs the CUDA toolkit but no GPU.
# CI only runs `nvcc -c` on each .cu (tests/test_kernels.py); this also checks binding.cpp's CUDA half and
# the link. Costs (measured on the 2-core dev machine): PyPI torch==2.13.0 is a cu130 build, a 527 MB
# download and a ~4.7 GB venv (~2 min), created once in .cache/venv-cuda; the build ~3 min, ~3 GB RAM.
#
#   scripts/cuda_link_check.sh            # CUDA_HOME / TORCH_CUDA_ARCH_LIST may be set; defaults below
#
# It holds torch only (not splatpack's other dependencies): it checks the build, it does not run the tests.
set -euo pipefail
cd "$(dirname "$0")/.."
VENV=${CUDA_VENV:-.cache/venv-cuda}
if [ ! -x "$VENV/bin/python" ]; then
  "${PYTHON:-python3}" -m venv "$VENV"
fi
# Without the local pip config, find-links and constraints: they hold the +cpu torch wheel.
env -u PIP_FIND_LINKS -u PIP_CONSTRAINT PIP_CONFIG_FILE=/dev/null \
  "$VENV/bin/python" -m pip install -q torch==2.13.0 ninja
# Explicit CUDA_HOME: the nvcc on the PATH may be a wrapper script, and torch would guess its parent folder.
if [ -z "${CUDA_HOME:-}" ]; then
  CUDA_HOME=$(ls -d /usr/local/cuda-13* /usr/local/cuda 2>/dev/null | head -n 1 || true)
fi
if [ -z "$CUDA_HOME" ] || [ ! -x "$CUDA_HOME/bin/nvcc" ]; then
  echo "cuda_link_check: no CUDA toolkit found; set CUDA_HOME to its folder" >&2
  exit 2
fi
export CUDA_HOME
export TORCH_CUDA_ARCH_LIST=${TORCH_CUDA_ARCH_LIST:-9.0}
# Its own extension cache: the CPU venv's build of the same name must not be picked up.
export TORCH_EXTENSIONS_DIR=${TORCH_EXTENSIONS_DIR:-$PWD/.cache/torch_extensions_cuda}
"$VENV/bin/python" - <<'PY'
import sys
import time

sys.path.insert(0, ".")
import torch

from splatpack import kernels

assert torch.version.cuda, f"torch {torch.__version__} is not a CUDA build"
assert kernels.cuda_buildable(), "torch does not find the CUDA toolkit (CUDA_HOME)"
start = time.perf_counter()
ops = kernels.build(cuda=True, verbose=True)
for name in ("plas_assign", "tile_importance"):
    getattr(ops, name)  # raises when the op did not register
print(f"cuda_link_check: CUDA extension built and loaded in {time.perf_counter() - start:.0f} s "
      f"(torch {torch.__version__}, CUDA {torch.version.cuda}, arch {torch.cuda.get_arch_list() or 'none'})")
PY
