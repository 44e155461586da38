#!/usr/bin/env bash
# Create .venv and install splatpack with every dependency pinned (requirements/constraints.txt).
# Idempotent: a second run only checks what is installed. PYTHON picks the interpreter (default python3).
# PIP_CONSTRAINT (not -c) so that build-isolation environments also see the torch pin and never pull a
# multi-GB CUDA torch on a CPU machine.
set -euo pipefail
cd "$(dirname "$0")/.."
if [ ! -x .venv/bin/python ]; then
  "${PYTHON:-python3}" -m venv .venv
fi
export PIP_CONSTRAINT="$PWD/requirements/constraints.txt"
export PIP_DISABLE_PIP_VERSION_CHECK=1
pip() { .venv/bin/python -m pip "$@"; }
pip install -q pip==25.3
pip install -q -r requirements/runtime.txt
pip install -q --no-deps nerfstudio==1.1.5
pip install -q --no-deps -e .
# An editable install does not carry build_py's extra file; put the start-up hook in place ourselves.
cp splatpack_compat.pth "$(.venv/bin/python -c 'import sysconfig; print(sysconfig.get_paths()["purelib"])')/"
# splatpack's own kernels (cuda/) into torch's extension cache, so no command pays the first build (~1 min;
# cached: instant). Not fatal: without them the torch references run.
.venv/bin/python -m splatpack.kernels || echo "bootstrap: splatpack's kernels did not build; the torch references will run" >&2
