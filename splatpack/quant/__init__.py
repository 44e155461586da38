"""Quantizers shared by the file formats and the compact attribute codecs.

``kmeans`` holds scalar codebooks (exact-start 1-D k-means) and vector palettes (Lloyd k-means, flat or
two-level, in bounded memory); ``svq`` the sub-vector quantizer built on them.
"""

from splatpack.quant.kmeans import assign, kmeans_1d, kmeans_palette, lloyd

__all__ = ["assign", "kmeans_1d", "kmeans_palette", "lloyd"]
