"""splatpack's own C++/CUDA kernels (sources: the top-level ``cuda/`` folder), compiled on first use.

``ops(device)`` returns ``torch.ops.splatpack`` when the kernels run on that device, else None, and the caller
runs its torch reference instead. The extension is built once per machine with ``torch.utils.cpp_extension.load``
into torch's extension cache (``TORCH_EXTENSIONS_DIR``, default ``~/.cache/torch_extensions``): a cold CPU
build takes about a minute, a cached load none; ``python -m splatpack.kernels`` (run by scripts/bootstrap.sh)
builds it ahead of use. With a CUDA build of torch and the CUDA toolkit the same build adds the CUDA kernels.
Without a compiler, or when the build fails, one log line says so and the torch references run.

``SPLATPACK_KERNELS`` picks the path: ``auto`` (default: the kernels when they build), ``torch`` (never build;
the references run) or ``native`` (the kernels, or an error saying why not).
"""

from __future__ import annotations

import functools
import logging
import os
import shutil
from pathlib import Path

import torch

from splatpack.errors import SplatpackError

ENV = "SPLATPACK_KERNELS"
MODES = ("auto", "torch", "native")
# A source checkout: the package sits at <root>/splatpack/kernels, the sources at <root>/cuda.
SOURCE_DIR = Path(__file__).resolve().parents[2] / "cuda"
# PLAS agrees bit for bit with the torch reference only without fused multiply-adds (cuda/include/splatpack_math.h);
# at::parallel_for is serial without OpenMP.
CXX_FLAGS = ("-O3", "-ffp-contract=off", "-fopenmp")
CUDA_FLAGS = ("-O3",)

_log = logging.getLogger(__name__)


def mode() -> str:
    """The ``SPLATPACK_KERNELS`` setting: auto, torch or native."""
    value = os.environ.get(ENV, "auto").strip().lower() or "auto"
    if value not in MODES:
        raise SplatpackError(f"{ENV}={value!r} is not a kernel setting; choose one of {', '.join(MODES)}")
    return value


def cuda_buildable() -> bool:
    """Whether this torch is a CUDA build and the CUDA toolkit is found (then the build includes the kernels)."""
    from torch.utils import cpp_extension

    return torch.version.cuda is not None and cpp_extension.CUDA_HOME is not None


def sources(cuda: bool) -> list[Path]:
    """The extension's source files: the binding, the CPU twins and, for a CUDA build, the CUDA kernels."""
    files = [SOURCE_DIR / "binding.cpp", *sorted((SOURCE_DIR / "cpu").glob("*.cpp"))]
    return files + sorted((SOURCE_DIR / "kernels").glob("*.cu")) if cuda else files


def build(*, cuda: bool | None = None, verbose: bool = False):
    """Compile the extension (or load it from torch's cache) and return ``torch.ops.splatpack``; raises on failure."""
    from torch.utils import cpp_extension

    cuda = cuda_buildable() if cuda is None else cuda
    if not (SOURCE_DIR / "binding.cpp").is_file():
        raise RuntimeError(f"kernel sources not found in {SOURCE_DIR} (an install without the cuda/ folder)")
    compiler = os.environ.get("CXX", "c++")
    if shutil.which(compiler) is None:
        raise RuntimeError(f"no C++ compiler ({compiler}) on the PATH")
    cpp_extension.load(
        name="splatpack_kernels_cuda" if cuda else "splatpack_kernels",
        sources=[str(p) for p in sources(cuda)],
        extra_include_paths=[str(SOURCE_DIR / "include")],
        extra_cflags=[*CXX_FLAGS, *(["-DSPLATPACK_WITH_CUDA"] if cuda else [])],
        extra_cuda_cflags=list(CUDA_FLAGS),
        extra_ldflags=["-fopenmp"],
        with_cuda=cuda,
        is_python_module=False,
        verbose=verbose,
    )
    return torch.ops.splatpack


@functools.cache
def _library() -> tuple[object | None, bool]:
    """(the ops or None, whether they include CUDA), built once per process."""
    cuda = cuda_buildable()
    try:
        return build(cuda=cuda), cuda
    except Exception as error:  # a failed build of any kind means: run the references
        reason = (str(error).strip().splitlines() or [type(error).__name__])[0][:300]
        if mode() == "native":
            raise SplatpackError(f"{ENV}=native but splatpack's kernels did not build: {reason}") from error
        _log.warning("splatpack's native kernels are unavailable (%s); running the torch reference", reason)
        return None, False


def ops(device: torch.device | str):
    """``torch.ops.splatpack`` when the kernels run on ``device`` under the current setting, else None."""
    if mode() == "torch":
        return None
    kind = torch.device(device).type
    if kind not in ("cpu", "cuda"):
        return None
    library, has_cuda = _library()
    if kind == "cuda" and not has_cuda:
        if mode() == "native":
            raise SplatpackError(f"{ENV}=native but the kernels were built without CUDA (no CUDA torch or CUDA_HOME)")
        return None
    return library
