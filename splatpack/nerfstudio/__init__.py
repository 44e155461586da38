"""nerfstudio method plugin: ``ns-train splatpack`` (Self-Organizing Gaussians) and ``ns-train splatpack-base``.

Registered through the ``nerfstudio.method_configs`` entry point (``splatpack.nerfstudio.method``).
"""

import numpy as np
import torch

# nerfstudio's exponential LR scheduler leaves numpy float64 learning rates in every checkpoint, and torch >= 2.6
# loads weights only by default, so ns-eval / ns-render / ns-viewer (which import this package through the run's
# config) would refuse them. numpy scalars are plain data: allowlist exactly those types, rather than loading
# checkpoints unsafely.
torch.serialization.add_safe_globals([np._core.multiarray.scalar, np.dtype, np.dtypes.Float64DType])
