"""Parameter surgery: select, reorder, append and remove Gaussians together with their optimizer and strategy state.

Conventions (gsplat's strategies and nerfstudio's splatfacto share them): ``params`` maps names to (N, ...)
parameters (a dict or ``torch.nn.ParameterDict``; entries are replaced by new ``Parameter``s); ``optimizers``
maps the same names to the optimizer of that parameter (names without one are allowed); ``state`` is a
densification strategy's dict (gsplat ``DefaultStrategy``: ``grad2d``, ``count``, ``radii``) or ``None``.
A tensor whose leading dimension is N is per-Gaussian and follows its Gaussians: parameters, Adam's
``exp_avg`` / ``exp_avg_sq`` (any optimizer's per-element state), strategy statistics. Everything else stays
as it is: Adam's ``step`` (one count per parameter, so Gaussians kept or added keep its bias correction),
scalars such as ``scene_scale``, statistics not collected yet (``None``).

``PARAM_NAMES`` is the one table between ``Splats`` fields and the names gsplat and splatfacto use.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, MutableMapping
from typing import Any

import torch
from torch import Tensor

from splatpack.scene import Splats

# Splats field -> parameter name, per convention. gsplat keeps the Splats shapes (sh0 (N, 1, 3), opacities (N,));
# splatfacto's gauss_params store features_dc (N, 3) and opacities (N, 1).
PARAM_NAMES = {
    "gsplat": {
        "means": "means",
        "quats": "quats",
        "log_scales": "scales",
        "opacity_logits": "opacities",
        "sh0": "sh0",
        "shN": "shN",
    },
    "splatfacto": {
        "means": "means",
        "quats": "quats",
        "log_scales": "scales",
        "opacity_logits": "opacities",
        "sh0": "features_dc",
        "shN": "features_rest",
    },
}
_SPLATFACTO_SHAPES = {"sh0": lambda n: (n, 3), "opacity_logits": lambda n: (n, 1)}

Params = MutableMapping[str, Tensor]
Optimizers = Mapping[str, torch.optim.Optimizer]
State = MutableMapping[str, Any] | None


def params_from_splats(splats: Splats, convention: str = "gsplat") -> dict[str, Tensor]:
    """The fields of ``splats`` under ``convention``'s names and shapes (tensors, not copies where shapes match)."""
    n = len(splats)
    out = {}
    for field, name in PARAM_NAMES[convention].items():
        value = getattr(splats, field)
        if convention == "splatfacto" and field in _SPLATFACTO_SHAPES:
            value = value.reshape(_SPLATFACTO_SHAPES[field](n))
        out[name] = value
    return out


def splats_from_params(params: Mapping[str, Tensor], convention: str = "gsplat") -> Splats:
    """``Splats`` viewing the tensors of ``params`` (named by ``convention``); no copy, gradients flow through."""
    names = PARAM_NAMES[convention]
    n = params[names["means"]].shape[0]
    fields = {field: params[name] for field, name in names.items()}
    if convention == "splatfacto":
        fields["sh0"] = fields["sh0"].reshape(n, 1, 3)
        fields["opacity_logits"] = fields["opacity_logits"].reshape(n)
    return Splats(**fields)


def count(params: Mapping[str, Tensor]) -> int:
    """N, the number of Gaussians (every parameter's leading dimension)."""
    sizes = {p.shape[0] for p in params.values()}
    if len(sizes) != 1:
        raise ValueError(f"parameters disagree on the number of Gaussians: {sorted(sizes)}")
    return sizes.pop()


def _per_gaussian(value: Any, n: int) -> bool:
    return isinstance(value, Tensor) and value.ndim > 0 and value.shape[0] == n


@torch.no_grad()
def _rebuild(
    params: Params,
    optimizers: Optimizers,
    state: State,
    param_fn: Callable[[str, Tensor], Tensor],
    moment_fn: Callable[[Tensor], Tensor],
    state_fn: Callable[[str, Tensor], Tensor],
) -> None:
    """Replace every parameter by ``param_fn(name, old)``, its per-Gaussian optimizer state by ``moment_fn`` and
    the strategy's per-Gaussian statistics by ``state_fn``, keeping the optimizers pointed at the new tensors."""
    n = count(params)
    for name in list(params.keys()):
        old = params[name]
        new = torch.nn.Parameter(param_fn(name, old.detach()), requires_grad=old.requires_grad)
        params[name] = new
        opt = optimizers.get(name)
        if opt is None:
            continue
        for group in opt.param_groups:
            group["params"] = [new if p is old else p for p in group["params"]]
        moments = opt.state.pop(old, None)
        if moments is not None:
            opt.state[new] = {k: moment_fn(v) if _per_gaussian(v, n) else v for k, v in moments.items()}
    if state is not None:
        for key, value in state.items():
            if _per_gaussian(value, n):
                state[key] = state_fn(key, value)


def _as_index(keep: Tensor, n: int) -> Tensor:
    """Indices of a boolean (N,) mask, or the given integer indices."""
    if keep.dtype == torch.bool:
        if keep.shape != (n,):
            raise ValueError(f"mask of shape {tuple(keep.shape)} for {n} Gaussians")
        return torch.nonzero(keep).reshape(-1)
    if keep.ndim != 1 or keep.dtype.is_floating_point:
        raise ValueError("Gaussians are chosen by a boolean mask (N,) or integer indices (M,)")
    return keep


def select(params: Params, optimizers: Optimizers, state: State, keep: Tensor) -> None:
    """Keep the Gaussians ``keep`` (a boolean mask, or indices in any order, repeats allowed): the result's i-th
    Gaussian is old ``keep[i]``, with its optimizer moments and strategy statistics."""
    index = _as_index(keep, count(params))

    def take(*args):
        return args[-1][index]

    _rebuild(params, optimizers, state, take, take, take)


def permute(params: Params, optimizers: Optimizers, state: State, order: Tensor) -> None:
    """Reorder the Gaussians: new i-th = old ``order[i]``; ``order`` must be a permutation of 0..N-1."""
    n = count(params)
    if order.shape != (n,) or not torch.equal(torch.sort(order).values.cpu().long(), torch.arange(n)):
        raise ValueError(f"not a permutation of {n} Gaussians")
    select(params, optimizers, state, order)


def remove(params: Params, optimizers: Optimizers, state: State, drop: Tensor) -> None:
    """Remove the Gaussians ``drop`` (boolean mask or indices); the others keep their order and state."""
    n = count(params)
    keep = torch.ones(n, dtype=torch.bool, device=drop.device)
    keep[_as_index(drop, n)] = False
    select(params, optimizers, state, keep)


def append(
    params: Params,
    optimizers: Optimizers,
    state: State,
    values: Mapping[str, Tensor],
    statistics: Mapping[str, Tensor] | None = None,
) -> None:
    """Append M Gaussians after the N present: ``values[name]`` (M, ...) for every parameter.

    Their optimizer moments start at zero (a new Gaussian has no gradient history); their strategy statistics
    are ``statistics[key]`` (M, ...) where given (e.g. the statistics of the Gaussians they were cloned from),
    else zero.
    """
    if set(values) != set(params):
        raise ValueError(f"append needs values for exactly {sorted(params)}, got {sorted(values)}")
    m = {v.shape[0] for v in values.values()}
    if len(m) != 1:
        raise ValueError(f"appended values disagree on the number of Gaussians: {sorted(m)}")
    m = m.pop()
    statistics = statistics or {}

    def param_fn(name: str, old: Tensor) -> Tensor:
        return torch.cat([old, values[name].to(old)])

    def zeros_after(old: Tensor) -> Tensor:
        return torch.cat([old, old.new_zeros((m, *old.shape[1:]))])

    def state_fn(key: str, old: Tensor) -> Tensor:
        return torch.cat([old, statistics[key].to(old)]) if key in statistics else zeros_after(old)

    _rebuild(params, optimizers, state, param_fn, zeros_after, state_fn)
