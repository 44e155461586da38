"""Browser viewer for splat files, built on viser: ``splatpack view FILE [FILE2]``.

- ``gaussians``: Splats -> the arrays viser draws, point-budget selection, robust bounds and the initial camera.
- ``shading``: view-dependent colour (spherical harmonics) for a camera position.
- ``loading``: read a file (or an uploaded one) and time it.
- ``app``: the viser server, its GUI and the A/B comparison.
"""
