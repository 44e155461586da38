import pytest
import torch

from splatpack.errors import SplatpackError
from splatpack.scene import SH_C0, Splats, rgb_to_sh0


def test_shapes_and_activations():
    s = Splats.random(50, sh_degree=2, seed=1)
    assert len(s) == 50 and s.sh_degree == 2
    assert s.sh.shape == (50, 9, 3)
    torch.testing.assert_close(s.scales, s.log_scales.exp())
    torch.testing.assert_close(s.opacities, torch.sigmoid(s.opacity_logits))
    torch.testing.assert_close(s.unit_quats.norm(dim=-1), torch.ones(50))
    torch.testing.assert_close(s.base_rgb, s.sh0[:, 0] * SH_C0 + 0.5)
    torch.testing.assert_close(rgb_to_sh0(s.base_rgb), s.sh0[:, 0])


def test_index_mask_cat_and_degree_padding():
    a = Splats.random(10, sh_degree=1, seed=2)
    b = Splats.random(5, sh_degree=3, seed=3)
    mask = a.opacity_logits > a.opacity_logits.median()
    assert len(a[mask]) == int(mask.sum())
    assert len(a[torch.tensor([0, 2, 4])]) == 3
    assert len(a[3]) == 1 and torch.equal(a[3].means[0], a.means[3])
    c = Splats.cat([a, b])
    assert len(c) == 15 and c.sh_degree == 3
    assert torch.equal(c.shN[:10, :3], a.shN) and torch.count_nonzero(c.shN[:10, 3:]) == 0
    assert torch.equal(c.means[10:], b.means)
    d = c.to(torch.float64)
    assert d.dtype == torch.float64 and d.with_sh_degree(0).shN.shape == (15, 0, 3)


def test_validation_errors_are_clear():
    s = Splats.random(4, seed=4)
    with pytest.raises(SplatpackError, match=r"quats has shape \(4, 3\)"):
        Splats(s.means, s.quats[:, :3], s.log_scales, s.opacity_logits, s.sh0, s.shN)
    with pytest.raises(SplatpackError, match="not a valid SH degree"):
        Splats(s.means, s.quats, s.log_scales, s.opacity_logits, s.sh0, torch.zeros(4, 5, 3))
    bad = s.clone()
    bad.log_scales[2, 1] = float("nan")
    with pytest.raises(
        SplatpackError, match=r"scene.ply: log_scales has 1 Gaussian\(s\) with NaN/Inf values \(first at index 2\)"
    ):
        bad.validate(source="scene.ply")
    with pytest.raises(SplatpackError, match="out of range"):
        Splats.create(3, sh_degree=4)
    with pytest.raises(SplatpackError, match="empty"):
        Splats.empty().bounds()


def test_numpy_backed_scene_matches_the_torch_one():
    """The same scene held as numpy arrays: activations, selection, cat, padding and bounds agree with torch's."""
    import numpy as np

    t = Splats.random(200, sh_degree=2, seed=4)
    t.quats[3] = 0  # a zero quaternion normalises to zero in both kinds
    n = t.numpy()
    assert n.is_numpy and not t.is_numpy and n.device == "cpu" and n.dtype == np.float32
    for name in ("scales", "opacities", "unit_quats", "sh", "base_rgb"):
        np.testing.assert_allclose(getattr(n, name), getattr(t, name).numpy(), rtol=1e-6, atol=1e-7, err_msg=name)
    assert np.all(n.unit_quats[3] == 0)
    mask = t.opacity_logits > 0
    # A torch mask or index selects from a numpy scene too.
    for index in (mask, mask.numpy(), torch.tensor([5, 1, 7]), np.array([5, 1, 7]), slice(10, 20), 4):
        picked = n[index]
        assert picked.is_numpy and np.array_equal(picked.means, t[index].means.numpy())
    lo, hi = n.bounds()
    assert np.array_equal(lo, t.bounds()[0].numpy()) and np.array_equal(hi, t.bounds()[1].numpy())
    c = Splats.cat([n, Splats.random(5, sh_degree=3, seed=5).numpy()])
    assert c.is_numpy and c.sh_degree == 3 and len(c) == 205 and not c.shN[:200, 8:].any()
    mixed = Splats.cat([n, t])  # any torch part: the result is torch
    assert not mixed.is_numpy and torch.equal(mixed.means[:200], t.means)
    back = n.torch()
    assert all(torch.equal(getattr(back, f), getattr(t, f)) for f in t.FIELDS)
    assert n.numpy(np.float64).dtype == np.float64 and n.to(torch.float64).dtype == torch.float64
    assert n.with_sh_degree(0).shN.shape == (200, 0, 3) and n.clone().means is not n.means


def test_numpy_scene_validation():
    import numpy as np

    n = Splats.random(4, seed=1).numpy()
    with pytest.raises(SplatpackError, match="numpy array like means"):
        Splats(**{**{f: getattr(n, f) for f in n.FIELDS}, "quats": torch.zeros(4, 4)})
    with pytest.raises(SplatpackError, match="floating dtype"):
        Splats(**{**{f: getattr(n, f) for f in n.FIELDS}, "quats": np.zeros((4, 4), np.int32)})
    n.log_scales[2, 1] = np.inf
    with pytest.raises(
        SplatpackError, match=r"log_scales has 1 Gaussian\(s\) with NaN/Inf values \(first at index 2\)"
    ):
        n.validate()
