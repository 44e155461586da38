"""Edits of a whole scene: the non-finite value rule, rigid/similarity transforms, filters, merging, ordering and
decimation. Each function takes ``Splats`` and returns new ``Splats``; ``splatpack transform`` chains them."""
