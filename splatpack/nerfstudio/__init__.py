"""nerfstudio method plugin: ``ns-train splatpack`` (Self-Organizing Gaussians) and ``ns-train splatpack-base``.

Registered through the ``nerfstudio.method_configs`` entry point (``splatpack.nerfstudio.method``).
"""
