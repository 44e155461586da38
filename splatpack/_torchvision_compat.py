"""Let ``import torchvision`` work beside a CPU-only torch.

The only torchvision release that accepts torch 2.13 is a CUDA build; on a CPU torch its compiled ops fail to
load and its import then dies registering a fake kernel for ``torchvision::nms``, whose schema never got
defined. Defining the two schemas first lets the pure-Python parts (``utils``, ``transforms``) import; the
compiled ops themselves still raise when called.

nerfstudio imports torchvision before it loads any plugin, so this must be in place at interpreter start:
``splatpack_compat.pth`` calls ``install()``, which only adds an import hook (no torch import at start-up);
the hook acts once, when something first imports torchvision.
"""

from __future__ import annotations

import importlib.abc
import importlib.util
import sys
from pathlib import Path

_SCHEMAS = (
    "nms(Tensor dets, Tensor scores, float iou_threshold) -> Tensor",
    "qnms(Tensor qdets, Tensor scores, float iou_threshold) -> Tensor",
)


def _define_missing_schemas(package_dir: Path) -> None:
    import torch

    for lib_path in sorted(package_dir.glob("_C*.so")):
        try:
            torch.ops.load_library(str(lib_path))
            return  # the compiled ops load: nothing to patch
        except (OSError, RuntimeError):
            break
    lib = torch.library.Library("torchvision", "FRAGMENT")
    for schema in _SCHEMAS:
        lib.define(schema)
    globals()["_LIBRARY"] = lib  # the fragment must outlive this call


class _TorchvisionHook(importlib.abc.MetaPathFinder):
    def find_spec(self, fullname, path=None, target=None):
        if fullname != "torchvision":
            return None
        sys.meta_path.remove(self)  # act once; the normal finders do the import
        spec = importlib.util.find_spec("torchvision")
        if spec is not None and spec.origin:
            _define_missing_schemas(Path(spec.origin).parent)
        return spec


def install() -> None:
    if not any(isinstance(f, _TorchvisionHook) for f in sys.meta_path):
        sys.meta_path.insert(0, _TorchvisionHook())
