"""splatpack: small, fast, faithful Gaussian splats.

Kept free of heavy imports: ``splatpack_compat.pth`` imports this package at every interpreter start.
"""

__version__ = "0.1.0"

__all__ = ["Splats", "SplatpackError", "__version__"]


def __getattr__(name):
    if name == "Splats":
        from splatpack.scene import Splats

        return Splats
    if name == "SplatpackError":
        from splatpack.errors import SplatpackError

        return SplatpackError
    raise AttributeError(f"module 'splatpack' has no attribute {name!r}")
