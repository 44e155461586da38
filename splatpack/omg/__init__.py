"""Optimized Minimal Gaussians (OMG; Lee, Ko, Park, NeurIPS 2025), the parts that choose which Gaussians live.

Pure tensor functions, independent of nerfstudio; the training model (``splatpack.nerfstudio.omg``) applies
their results with the parameter surgery that keeps optimizer and densification state consistent.

- ``sampling``: intersection-preserving sampling (keep a share of the Gaussians, drawn by importance) and the
  re-initialisation of the survivors;
- ``pruning``: local-distinctiveness (LD) scores and the score-mass threshold, presets XS..XL;
- ``densify``: Mini-Splatting's blur split (Gaussians that dominate too large an image area).
- ``depth_reinit``: Mini-Splatting's depth re-initialisation (every Gaussian re-created from points drawn on
  the rendered depth of the training views).

Importance itself (W, A, M per Gaussian and view) comes from the renderer: ``splatpack.render.importance``.
"""
