"""OMG's compact attributes: the MLP fields (shapes, gradients, storage) and sub-vector quantization."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from splatpack.errors import SplatpackError
from splatpack.omg import field_bake
from splatpack.omg.compact import CompactScene
from splatpack.omg.field_bake import FieldConfig
from splatpack.omg.fields import AttributeFields, contract, frequency_encoding
from splatpack.quant import svq


def _inputs(n=500, seed=0):
    g = torch.Generator().manual_seed(seed)
    return torch.randn(n, 3, generator=g) * 1.5, torch.randn(n, 6, generator=g)


def test_contraction_is_linear_inside_and_bounded_outside():
    center = torch.tensor([0.5, -1.0, 2.0])
    inside = center + torch.tensor([[0.3, -0.2, 0.1], [0.0, 0.0, 0.0]])
    u = contract(inside, center, 2.0)
    assert torch.allclose(u, ((inside - center) / 2.0 + 2) / 4)
    directions = torch.nn.functional.normalize(torch.randn(1000, 3, generator=torch.Generator().manual_seed(0)), dim=-1)
    for distance in (3.0, 1e4):  # |y| = distance / radius: contracted to 2 - 1/|y|
        u = contract(center + directions * distance, center, 2.0)
        assert (u >= 0).all() and (u <= 1).all()
        assert torch.allclose((u * 4 - 2).norm(dim=-1), torch.full((1000,), 2 - 2.0 / distance), atol=1e-4)


def test_frequency_encoding_layout():
    u = torch.tensor([[0.25, 0.5, 1.0]])
    e = frequency_encoding(u, 4)
    assert e.shape == (1, 3 + 6 * 4)
    assert torch.allclose(e[0, :3], u[0])
    assert torch.allclose(e[0, 3:6], torch.sin(torch.pi * u[0]), atol=1e-6)  # k = 0, then k = 1 ... per axis block


def test_fields_shapes_and_gradients_reach_features_and_every_mlp():
    net = AttributeFields()
    assert sum(p.numel() for p in net.parameters()) < 20000  # ~27 KB in fp16: OMG's 0.03 MB
    positions, features = _inputs()
    features.requires_grad_(True)
    dc, opacity, rest = net(positions, features)
    assert dc.shape == (500, 3) and opacity.shape == (500,) and rest.shape == (500, 15, 3)
    assert torch.equal(rest, torch.zeros_like(rest))  # the view head starts at zero
    (dc.square().sum() + opacity.sum() + rest.sum()).backward()
    assert features.grad[:, :3].abs().sum() > 0  # T feeds DC and opacity
    assert net.view[-1].weight.grad.abs().sum() > 0  # the zero layer learns, and then opens the path to V
    torch.nn.init.normal_(net.view[-1].weight, std=0.1)
    net.zero_grad()
    features.grad = None
    dc, opacity, rest = net(positions, features)
    (dc.square().sum() + opacity.sum() + rest.sum()).backward()
    assert features.grad[:, 3:].abs().sum() > 0  # V feeds the SH rest
    for name, p in net.named_parameters():
        assert p.grad is not None and p.grad.abs().sum() > 0, name


def test_numpy_bake_of_stored_weights_matches_the_torch_forward():
    net = AttributeFields(FieldConfig(frequencies=6, hidden=32, center=(0.1, 0.2, 0.3), radius=2.0))
    torch.nn.init.normal_(net.view[-1].weight)
    positions, features = _inputs(1000)
    positions[:100] *= 50  # contracted: far outside the radius
    config, weights = net.to_arrays()
    assert {k: v.shape for k, v in weights.items()} == FieldConfig.from_dict(config).weight_shapes()
    with torch.no_grad():
        want = net(positions, features)
    full = field_bake.bake(config, weights, positions.numpy(), features.numpy(), 3)
    chunked = field_bake.bake(config, weights, positions.numpy(), features.numpy(), 3, chunk=300)
    for a, b, c in zip(want, full, chunked):
        assert np.allclose(b, c, atol=1e-6)  # chunking changes only BLAS summation order
        assert np.allclose(b, a.numpy(), atol=2e-5, rtol=1e-5)
    dc, opacity, rest = field_bake.bake(config, weights, positions.numpy(), features.numpy(), 1)
    assert rest.shape == (1000, 3, 3) and np.allclose(rest, full[2][:, :3], atol=1e-6)
    config, weights = AttributeFields(FieldConfig(frequencies=2, hidden=8, sh_rest=3)).to_arrays()
    with pytest.raises(SplatpackError, match="needs 15"):
        field_bake.bake(config, weights, positions.numpy(), features.numpy(), 3)


def test_bad_field_storage_is_refused():
    config, weights = AttributeFields(FieldConfig(frequencies=2, hidden=8)).to_arrays()
    x, f = np.zeros((4, 3), np.float32), np.zeros((4, 6), np.float32)
    with pytest.raises(SplatpackError, match="unknown field settings"):
        field_bake.bake({**config, "bogus": 1}, weights, x, f, 0)
    with pytest.raises(SplatpackError, match="out of range"):
        field_bake.bake({**config, "hidden": 10**9}, weights, x, f, 0)
    bad = dict(weights)
    bad["dc.0.weight"] = bad["dc.0.weight"][:, :-1]
    with pytest.raises(SplatpackError, match="dc.0.weight"):
        field_bake.bake(config, bad, x, f, 0)
    bad = dict(weights)
    bad["space.0.bias"] = np.full_like(bad["space.0.bias"], np.nan)
    with pytest.raises(SplatpackError, match="non-finite"):
        field_bake.bake(config, bad, x, f, 0)
    with pytest.raises(SplatpackError, match="do not match"):
        field_bake.bake(config, {k: v for k, v in weights.items() if k != "view.2.bias"}, x, f, 0)


def test_svq_assigns_each_subvector_its_nearest_entry():
    rng = np.random.default_rng(0)
    x = rng.normal(size=(3000, 6)).astype(np.float32)
    code = svq.fit(x, 2, 64)
    assert [b.shape for b in code.codebooks] == [(64, 2)] * 3 and code.indices.shape == (3000, 3)
    for s, book in enumerate(code.codebooks):
        d = ((x[:, 2 * s : 2 * s + 2, None] - book.T[None]) ** 2).sum(axis=1)
        best = d.min(axis=1)
        chosen = d[np.arange(len(x)), code.indices[:, s]]
        assert np.allclose(chosen, best, atol=1e-5)  # nearest entry (ties aside)
    errors = [np.abs(svq.fit(x, 2, k).values() - x).mean() for k in (16, 64, 256)]
    assert errors[0] > errors[1] > errors[2]


def test_svq_is_exact_when_entries_cover_the_rows_and_cuts_odd_widths():
    rng = np.random.default_rng(1)
    x = rng.normal(size=(40, 5)).astype(np.float32)
    code = svq.fit(x, 2, 64)  # 40 rows, at most 40 entries per codebook
    assert svq.sub_widths(5, 2) == [2, 2, 1] and [b.shape for b in code.codebooks] == [(40, 2), (40, 2), (40, 1)]
    assert np.allclose(code.values(), x, atol=1e-6)
    scalar = svq.fit(x[:, :3], 1, 64)
    assert np.allclose(scalar.values(), x[:, :3], atol=1e-6)
    assert np.array_equal(svq.reassign(code, x).indices, code.indices)


def test_svq_lookup_is_differentiable_in_the_codebooks():
    books = [torch.randn(8, 2, requires_grad=True), torch.randn(4, 1, requires_grad=True)]
    idx = torch.tensor([[0, 1], [0, 3], [7, 3]])
    out = svq.lookup(books, idx)
    assert out.shape == (3, 3) and torch.equal(out[1, 2:], books[1][3])
    out.sum().backward()
    assert books[0].grad[0].tolist() == [2.0, 2.0] and books[1].grad[3].item() == 2.0


def test_compact_scene_bakes_the_fields_and_maps_to_the_data_frame():
    net = AttributeFields(FieldConfig(frequencies=4, hidden=16, sh_rest=3))
    torch.nn.init.normal_(net.view[-1].weight, std=0.1)
    positions, features = _inputs(200)
    config, weights = net.to_arrays()
    codes = {"log_scales": svq.fit(np.full((200, 3), -3.0), 1, 64), "quats": np.tile([1.0, 0, 0, 0], (200, 1))}
    scene = CompactScene(
        positions=positions.numpy(), attributes={**codes, "features": features.numpy()}, sh_degree=1,
        fields=weights, field_config=config, translation=np.array([1.0, 2.0, 3.0]), scale=2.0,
    )  # fmt: skip
    own = scene.to_splats(data_frame=False)
    assert own.is_numpy  # decoding needs no torch
    with torch.no_grad():
        dc, opacity, rest = net(positions, features)
    assert np.allclose(own.sh0[:, 0], dc, atol=2e-5) and np.allclose(own.opacity_logits, opacity, atol=2e-5)
    assert np.allclose(own.shN, rest[:, :3], atol=2e-5) and np.array_equal(own.log_scales, np.full((200, 3), -3.0))
    data = scene.to_splats()
    assert np.allclose(data.means, 2.0 * positions.numpy() + [1.0, 2.0, 3.0], atol=1e-5)
    assert np.allclose(data.log_scales, own.log_scales + np.log(2.0), atol=1e-6)
    with pytest.raises(SplatpackError, match="layout"):
        CompactScene(positions=positions.numpy(), attributes=codes, sh_degree=1, fields=weights, field_config=config)
