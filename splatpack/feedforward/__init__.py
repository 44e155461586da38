"""Feed-forward scene tokens (GlobalSplat-style, issue 11): posed images -> a fixed budget of Gaussians in one pass."""
