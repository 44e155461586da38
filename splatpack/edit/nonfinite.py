"""What happens to non-finite values (NaN, +-Inf): one rule for every reader and for ``Splats.validate``.

Real tools write infinite values: a PlayCanvas compressed PLY's opacity byte 255 decodes to a logit of +Inf,
and splat-transform writes it as such into its PLYs (667 Gaussians of the PlayCanvas guitar sample). Policies:

- ``clamp`` (the default): infinite opacity logits become +-``LOGIT_MAX`` (float32's largest finite value, so
  the opacity is still exactly 0 or 1) and infinite log scales +-``LOG_SCALE_MAX`` = log(float32 max), whose
  linear scale is the largest finite float32 every writer can store. NaN anywhere, and Inf in any other field
  (positions, rotations, colours), is refused: there is no value it could stand for.
- ``drop``: Gaussians holding any non-finite value are removed (logged with the count).
- ``error``: any non-finite value is refused.

Readers apply the policy in force (``reading_policy``, which ``splatpack.io.read`` sets from ``--nonfinite``)
through ``resolve``; ``Splats.validate`` refuses what no policy lets through into a scene: any non-finite value.
"""

from __future__ import annotations

import contextlib
import contextvars
import logging
from collections.abc import Iterator
from typing import Literal

import numpy as np

from splatpack.errors import SplatpackError

Policy = Literal["clamp", "drop", "error"]
POLICIES: tuple[str, ...] = ("clamp", "drop", "error")
DEFAULT: Policy = "clamp"
LOGIT_MAX = float(np.finfo(np.float32).max)
# The float32 just below log(float32 max): float32's own rounding of the log would overflow exp.
LOG_SCALE_MAX = float(np.nextafter(np.float32(np.log(np.finfo(np.float32).max)), np.float32(0)))
# Fields whose infinities ``clamp`` replaces, and the magnitude they get.
CLAMPED = {"opacity_logits": LOGIT_MAX, "log_scales": LOG_SCALE_MAX}

_policy: contextvars.ContextVar[str] = contextvars.ContextVar("splatpack_nonfinite", default=DEFAULT)
log = logging.getLogger(__name__)


def check_policy(policy: str) -> str:
    if policy not in POLICIES:
        raise SplatpackError(f"unknown non-finite policy {policy!r}; use one of {', '.join(POLICIES)}")
    return policy


@contextlib.contextmanager
def reading_policy(policy: str | None) -> Iterator[None]:
    """Readers called inside the block resolve non-finite values with ``policy`` (None: keep the one in force)."""
    if policy is None:
        yield
        return
    token = _policy.set(check_policy(policy))
    try:
        yield
    finally:
        _policy.reset(token)


def current_policy() -> str:
    return _policy.get()


def resolve(
    fields: dict[str, np.ndarray],
    *,
    source=None,
    names: dict[str, tuple[str, ...]] | None = None,
    policy: str | None = None,
) -> dict[str, np.ndarray]:
    """``fields`` (name -> (N, ...) float array, one row per Gaussian) with the policy applied.

    Returns the same arrays when all values are finite, else clamped copies or the surviving rows. ``names``
    (name -> one name per column, e.g. PLY property names) makes the refusal message count per column.
    """
    policy = check_policy(policy or _policy.get())
    n = max(len(v) for v in fields.values())
    # Fields without values (SH degree 0) may come with any shape; they have nothing to check or drop.
    flat = {k: np.asarray(v).view(np.ndarray).reshape(n, np.size(v) // max(n, 1)) for k, v in fields.items()}
    bad = {k: ~np.isfinite(v) for k, v in flat.items()}
    if not any(b.any() for b in bad.values()):
        return fields
    if policy == "drop":
        keep = np.ones(n, dtype=bool)
        for b in bad.values():
            keep &= ~np.asarray(b).any(axis=1)
        log.info("dropped %d Gaussian(s) with NaN/Inf values, kept %d", int((~keep).sum()), int(keep.sum()))
        return {k: np.asarray(v)[keep] if np.size(v) else v for k, v in fields.items()}
    refused = {
        k: b & ~(np.isinf(flat[k]) if policy == "clamp" and k in CLAMPED else np.zeros_like(b)) for k, b in bad.items()
    }
    if any(r.any() for r in refused.values()):
        counts: dict[str, int] = {}
        for k, r in refused.items():
            for name, count in zip((names or {}).get(k, (k,) * r.shape[1]), r.sum(axis=0).tolist()):
                if count:
                    counts[name] = counts.get(name, 0) + count
        listed = ", ".join(f"{name} ({count})" for name, count in counts.items())
        raise SplatpackError(
            f"NaN/Inf values in {sum(counts.values())} entries: {listed}; --nonfinite drop removes those Gaussians",
            source,
        )
    out = dict(fields)
    for k, limit in CLAMPED.items():
        if k in out and bad[k].any():
            v = np.asarray(out[k])
            out[k] = np.clip(v, -limit, limit).astype(v.dtype, copy=False)
    return out


def refuse_nonfinite(arrays: dict, source=None) -> None:
    """Raise naming the first field with a NaN/Inf value, its Gaussian count and first index (``validate``);
    fields are numpy arrays or torch tensors."""
    for name, t in arrays.items():
        if isinstance(t, np.ndarray):
            bad = ~np.isfinite(t)
            if bad.any():
                rows = np.flatnonzero(bad.reshape(t.shape[0], -1).any(axis=1))
                _refuse(name, len(rows), int(rows[0]), source)
            continue
        bad = ~t.isfinite()
        if bad.any():
            rows = bad.reshape(t.shape[0], -1).any(dim=1).nonzero()[:, 0]
            _refuse(name, int(rows.numel()), int(rows[0]), source)


def _refuse(name: str, count: int, first: int, source) -> None:
    raise SplatpackError(f"{name} has {count} Gaussian(s) with NaN/Inf values (first at index {first})", source)
