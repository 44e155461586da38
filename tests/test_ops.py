"""Parameter surgery (splatpack.train.ops): moments and statistics follow their Gaussians exactly."""

from __future__ import annotations

import copy

import pytest
import torch

from splatpack.scene import Splats
from splatpack.train import ops

N, STEPS = 12, 3


def _setup(seed: int = 0):
    """gsplat-named parameters of a random scene, one Adam each after STEPS steps, and DefaultStrategy-like state."""
    g = torch.Generator().manual_seed(seed)
    params = {
        k: torch.nn.Parameter(v.clone()) for k, v in ops.params_from_splats(Splats.random(N, 1, seed=seed)).items()
    }
    optimizers = {k: torch.optim.Adam([p], lr=0.01 * (i + 1), eps=1e-15) for i, (k, p) in enumerate(params.items())}
    grads = [{k: torch.randn(p.shape, generator=g) for k, p in params.items()} for _ in range(STEPS + 1)]
    for step in range(STEPS):
        _step(params, optimizers, grads[step])
    state = {
        "grad2d": torch.rand(N, generator=g),
        "count": torch.randint(0, 9, (N,), generator=g).float(),
        "radii": torch.rand(N, 2, generator=g),
        "scene_scale": 2.5,
        "not_collected": None,
    }
    return params, optimizers, state, grads


def _step(params, optimizers, grads):
    for k, p in params.items():
        p.grad = grads[k].clone()
        optimizers[k].step()


def _moments(params, optimizers):
    return {k: optimizers[k].state[p] for k, p in params.items()}


@pytest.mark.parametrize("how", ["indices", "mask", "permute"])
def test_select_keeps_moments_and_statistics_with_their_gaussians(how):
    params, optimizers, state, grads = _setup()
    before, moments, stats = copy.deepcopy(dict(params)), copy.deepcopy(_moments(params, optimizers)), dict(state)
    if how == "indices":
        index = torch.tensor([7, 2, 2, 11, 0])  # reorder, drop and repeat at once
        ops.select(params, optimizers, state, index)
    elif how == "mask":
        mask = torch.arange(N) % 3 != 1
        index = torch.nonzero(mask).reshape(-1)
        ops.select(params, optimizers, state, mask)
    else:
        index = torch.randperm(N, generator=torch.Generator().manual_seed(3))
        ops.permute(params, optimizers, state, index)
    for k, p in params.items():
        assert isinstance(p, torch.nn.Parameter) and optimizers[k].param_groups[0]["params"] == [p]
        assert torch.equal(p, before[k][index])
        m = optimizers[k].state[p]
        assert torch.equal(m["exp_avg"], moments[k]["exp_avg"][index])
        assert torch.equal(m["exp_avg_sq"], moments[k]["exp_avg_sq"][index])
        assert torch.equal(m["step"], moments[k]["step"]) and float(m["step"]) == STEPS
        assert len(optimizers[k].state) == 1  # the old parameter's state is gone
    for key in ("grad2d", "count", "radii"):
        assert torch.equal(state[key], stats[key][index])
    assert state["scene_scale"] == 2.5 and state["not_collected"] is None


def test_an_adam_step_after_select_equals_training_the_subset_from_the_start():
    """Adam is elementwise: Gaussians kept by select then stepped end exactly where training only them would."""
    params, optimizers, state, grads = _setup()
    index = torch.tensor([9, 1, 4, 4, 6])
    ops.select(params, optimizers, state, index)
    _step(params, optimizers, {k: v[index] for k, v in grads[STEPS].items()})

    ref_params = {
        k: torch.nn.Parameter(v.clone()[index]) for k, v in ops.params_from_splats(Splats.random(N, 1)).items()
    }
    ref_opts = {k: torch.optim.Adam([p], lr=0.01 * (i + 1), eps=1e-15) for i, (k, p) in enumerate(ref_params.items())}
    for step in range(STEPS + 1):
        _step(ref_params, ref_opts, {k: v[index] for k, v in grads[step].items()})
    for k in params:
        assert torch.equal(params[k], ref_params[k]), k
        assert torch.equal(optimizers[k].state[params[k]]["exp_avg_sq"], ref_opts[k].state[ref_params[k]]["exp_avg_sq"])


def test_append_starts_new_gaussians_with_zero_moments_and_keeps_the_step_count():
    params, optimizers, state, grads = _setup()
    before, moments = copy.deepcopy(dict(params)), copy.deepcopy(_moments(params, optimizers))
    new = ops.params_from_splats(Splats.random(4, 1, seed=9))
    cloned_from = torch.tensor([0, 5, 5, 8])
    ops.append(params, optimizers, state, new, {"grad2d": state["grad2d"][cloned_from]})
    assert ops.count(params) == N + 4
    assert torch.equal(state["grad2d"][N:], state["grad2d"][cloned_from]) and torch.equal(
        state["count"][N:], torch.zeros(4)
    )
    assert state["radii"].shape == (N + 4, 2) and not state["radii"][N:].any()
    grads_now = {
        k: torch.randn((N + 4, *v.shape[1:]), generator=torch.Generator().manual_seed(5)) for k, v in before.items()
    }
    _step(params, optimizers, grads_now)

    # The same step on an equivalently built fresh optimizer: concatenated values, zero moments for the new rows.
    for i, (k, p) in enumerate(params.items()):
        fresh = torch.nn.Parameter(torch.cat([before[k], new[k]]))
        opt = torch.optim.Adam([fresh], lr=0.01 * (i + 1), eps=1e-15)
        zeros = torch.zeros((4, *before[k].shape[1:]))
        opt.state[fresh] = {
            "step": moments[k]["step"].clone(),
            "exp_avg": torch.cat([moments[k]["exp_avg"], zeros]),
            "exp_avg_sq": torch.cat([moments[k]["exp_avg_sq"], zeros]),
        }
        fresh.grad = grads_now[k].clone()
        opt.step()
        assert torch.equal(p, fresh), k
        assert float(optimizers[k].state[p]["step"]) == STEPS + 1


def test_remove_matches_gsplat_strategy_ops():
    """Same parameters, moments and statistics as gsplat's own ``strategy.ops.remove`` (its DefaultStrategy prunes
    with it)."""
    gsplat_ops = pytest.importorskip("gsplat.strategy.ops")
    params, optimizers, state, _ = _setup()
    state = {k: v for k, v in state.items() if isinstance(v, torch.Tensor)}
    theirs = copy.deepcopy((params, optimizers, state))
    drop = torch.arange(N) % 4 == 2
    ops.remove(params, optimizers, state, drop)
    gsplat_ops.remove(theirs[0], theirs[1], theirs[2], drop)
    for k in params:
        assert torch.equal(params[k], theirs[0][k])
        for key in ("exp_avg", "exp_avg_sq", "step"):
            assert torch.equal(optimizers[k].state[params[k]][key], theirs[1][k].state[theirs[0][k]][key])
    for key in state:
        assert torch.equal(state[key], theirs[2][key])


def test_bad_selections_are_refused():
    params, optimizers, state, _ = _setup()
    with pytest.raises(ValueError, match="not a permutation"):
        ops.permute(params, optimizers, state, torch.tensor([0] * N))
    with pytest.raises(ValueError, match="mask of shape"):
        ops.select(params, optimizers, state, torch.ones(N + 1, dtype=torch.bool))
    with pytest.raises(ValueError, match="exactly"):
        ops.append(params, optimizers, state, {"means": torch.zeros(1, 3)})


@pytest.mark.parametrize("convention", ["gsplat", "splatfacto"])
def test_name_table_round_trip(convention):
    splats = Splats.random(7, 2, seed=1)
    params = ops.params_from_splats(splats, convention)
    assert set(params) == set(ops.PARAM_NAMES[convention].values())
    if convention == "splatfacto":
        assert params["features_dc"].shape == (7, 3) and params["opacities"].shape == (7, 1)
        assert params["features_rest"].shape == (7, 8, 3)
    back = ops.splats_from_params(params, convention)
    for field in Splats.FIELDS:
        assert torch.equal(getattr(back, field), getattr(splats, field))
