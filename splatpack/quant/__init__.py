"""Quantizers shared by the file formats and the compact attribute codecs.

``kmeans`` holds scalar codebooks (exact-start 1-D k-means) and vector palettes (Lloyd k-means, flat or
two-level, in bounded memory); ``svq`` the sub-vector quantizer built on them. Import the modules themselves:
the package imports nothing, so reading a quantized file (``SvqCode`` only) does not load torch.
"""
