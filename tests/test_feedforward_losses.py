"""GlobalSplat's training terms (``splatpack.feedforward.losses``) and how ``train_step`` / ``train`` use them:
each term is zero where it should be and the expected amount otherwise, gradients reach the model, weights 0
give the plain rendering loss bit for bit, and runs with every term on stay finite and resume exactly."""

from __future__ import annotations

import copy
import dataclasses
import math

import pytest
import torch
from test_feedforward import SIDE, TINY, one_thread  # noqa: F401 - the tiny model, its views, one thread

from splatpack.errors import SplatpackError
from splatpack.feedforward import losses
from splatpack.feedforward.checkpoint import load_checkpoint, save_checkpoint
from splatpack.feedforward.losses import LossWeights
from splatpack.feedforward.model import FeedForwardModel
from splatpack.feedforward.scenes import MultiViewScene, procedural_scene
from splatpack.feedforward.settings import LOSS_WEIGHTS, TrainSettings
from splatpack.feedforward.train import photometric_loss, render_targets, train_step
from splatpack.feedforward.trainer import CHECKPOINT, train


@pytest.fixture(scope="module")
def scene():
    return procedural_scene(3, views=5, width=SIDE, height=SIDE)


def camera(centre=(0.0, 0.0, 0.0)) -> tuple[torch.Tensor, torch.Tensor]:
    """An identity-rotation OpenCV camera (looking along +z) at ``centre`` and its 16x16 intrinsics."""
    c2w = torch.eye(4, dtype=torch.float64)
    c2w[:3, 3] = torch.tensor(centre, dtype=torch.float64)
    K = torch.tensor([[20.0, 0, 8], [0, 20.0, 8], [0, 0, 1]], dtype=torch.float64)
    return c2w, K


def test_frustum_loss_is_zero_inside_some_frustum_and_the_plane_distances_outside():
    c2w, K = camera()
    inside = torch.tensor([[0.0, 0.0, 1.0], [0.3, -0.3, 2.0]], dtype=torch.float64)
    assert float(losses.frustum_loss(inside, c2w[None], K[None], SIDE, SIDE)) == 0.0
    # 2 behind the camera: outside all four side planes (distance 2 cx / |(f, cx)| each) and the near plane.
    behind = torch.tensor([[0.0, 0.0, -2.0]], dtype=torch.float64)
    side = 2 * 8 / math.hypot(20, 8)
    expected = 4 * side + 2 + losses.NEAR_PLANE
    torch.testing.assert_close(float(losses.frustum_loss(behind, c2w[None], K[None], SIDE, SIDE)), expected)
    # Just right of the right plane (x = z * (W - cx) / f): the distance to that plane only.
    off = torch.tensor([[0.4 + 0.1, 0.0, 1.0]], dtype=torch.float64)
    torch.testing.assert_close(
        float(losses.frustum_loss(off, c2w[None], K[None], SIDE, SIDE)), 0.1 * 20 / math.hypot(20, 8)
    )
    # The nearest frustum counts: a second camera that sees the point makes it free.
    other, _ = camera((0.0, 0.0, -3.0))
    both = torch.stack([c2w, other])
    assert float(losses.frustum_loss(behind, both, K.expand(2, 3, 3), SIDE, SIDE)) == 0.0


def test_decoder_regularizers_are_zero_in_bounds_and_the_excess_beyond():
    iso = torch.full((4, 3), -3.0)
    assert float(losses.scale_regularizer(iso)) == 0.0
    needle = torch.log(torch.tensor([[0.01, 0.01, 0.2]]))  # ratio 20 against a free ratio of 10
    torch.testing.assert_close(float(losses.scale_regularizer(needle, 10.0)), math.log(2.0))
    unit = torch.nn.functional.normalize(torch.randn(5, 4, generator=torch.Generator().manual_seed(0)), dim=-1)
    assert float(losses.rotation_regularizer(unit)) < 1e-12
    torch.testing.assert_close(float(losses.rotation_regularizer(2 * unit)), 1.0)
    sh = torch.tensor([[4.9, -5.0, 0.0, 6.0]])  # only 6 is over the cap of 5, by 1
    torch.testing.assert_close(float(losses.sh_regularizer(sh, 5.0)), 1.0 / 4)
    torch.testing.assert_close(float(losses.opacity_regularizer(torch.zeros(3))), 0.5)


def test_subset_split_interleaves_and_shares_the_extreme_views():
    a, b = losses.subset_split([5, 0, 3, 1, 4, 2])
    assert (a, b) == ([0, 1, 3, 5], [0, 2, 4, 5])
    assert losses.subset_split([7, 2, 9]) == ([2, 7, 9], [2, 9])
    with pytest.raises(ValueError, match=">= 3"):
        losses.subset_split([1, 1, 4])


def test_symmetric_consistency_is_zero_for_equal_renders_and_moves_each_side_half_way():
    a = torch.tensor([0.2, 0.9, 0.5], requires_grad=True)
    b = torch.tensor([0.4, 0.6, 0.5], requires_grad=True)
    assert float(losses.symmetric_consistency(a, a.detach().clone().requires_grad_()).detach()) == 0.0
    loss = losses.symmetric_consistency(a, b)
    torch.testing.assert_close(float(loss.detach()), float((a - b).abs().mean().detach()))
    loss.backward()
    sign = torch.sign(a.detach() - b.detach())
    torch.testing.assert_close(a.grad, 0.5 * sign / 3)
    torch.testing.assert_close(b.grad, -0.5 * sign / 3)
    # A weight of 0 switches a pixel off (depth where a render is empty).
    torch.testing.assert_close(float(losses.symmetric_consistency(a, b, torch.tensor([0.0, 1.0, 1.0])).detach()), 0.1)


def test_every_term_reaches_the_model_parameters(scene):
    """Each term alone (set to bite: no free anisotropy, an SH cap of 0) sends gradient to the scene-token bank
    and the decoder head it reads."""
    torch.manual_seed(0)
    model = FeedForwardModel(dataclasses.replace(TINY, position_range=4.0))
    images, c2w, Ks = scene.views([0, 1, 2])
    cams = None
    heads = {"geometry": "decoder.geometry.1.weight", "appearance": "decoder.appearance.1.weight"}
    terms = {
        "frustum": (lambda p: losses.frustum_loss(p.gaussians.means[0], cams, Ks[0], SIDE, SIDE), "geometry"),
        "scale": (lambda p: losses.scale_regularizer(p.gaussians.log_scales[0], 1.0), "geometry"),
        "rotation": (lambda p: losses.rotation_regularizer(p.gaussians.quats[0]), "geometry"),
        "sh": (lambda p: losses.sh_regularizer(p.gaussians.sh[0], 0.0), "appearance"),
        "opacity": (lambda p: losses.opacity_regularizer(p.gaussians.opacity_logits[0]), "geometry"),
    }
    for name, (term, head) in terms.items():
        model.zero_grad(set_to_none=True)
        pred = model(images, c2w, Ks, stage=1)
        cams = pred.frame.cameras_to_canonical(c2w)[0]
        value = term(pred)
        assert float(value.detach()) > 0, name
        value.backward()
        params = dict(model.named_parameters())
        for key in ("encoder.bank", heads[head]):
            assert params[key].grad is not None and float(params[key].grad.abs().sum()) > 0, (name, key)


def test_consistency_terms_are_positive_for_different_subsets_zero_for_the_same_and_reach_the_model(scene):
    """train_step with only a consistency term: its value is the loss difference it makes, and it alone sends
    gradient to the token bank."""
    torch.manual_seed(0)
    cfg = dataclasses.replace(TINY, scale_range=(1e-2, 0.25), position_range=0.6, opacity_offset=0.0)
    base = FeedForwardModel(cfg)
    context, targets = [0, 1, 2, 3], [4]

    def loss_with(views, **kw) -> tuple[float, FeedForwardModel]:
        model = copy.deepcopy(base)
        opt = torch.optim.SGD(model.parameters(), lr=0.0)  # the step leaves the weights: only the loss matters
        value = train_step(model, opt, views, context, targets, stage=1, weights=LossWeights(**kw))
        return value, model

    eps = 1e-6  # on, but weightless: the two-subset loss without the term
    without, _ = loss_with(scene, consistency_opacity=eps)
    for name in ("consistency_opacity", "consistency_depth"):
        value, model = loss_with(scene, **{name: 1.0})
        assert value - without > 1e-5, name
        bank = dict(model.named_parameters())["encoder.bank"]
        assert bank.grad is not None and float(bank.grad.abs().sum()) > 0
    # Four copies of one view as context: both subsets ([0, 1, 3], [0, 2, 3]) are that view three times, the two
    # predictions are the same and the terms add exactly nothing.
    same = [0, 0, 0, 0, 4]
    copies = MultiViewScene(scene.images[same], scene.c2w[same], scene.Ks[same], seed=scene.seed)
    without, _ = loss_with(copies, consistency_opacity=eps)
    assert loss_with(copies, consistency_opacity=1.0, consistency_depth=1.0)[0] == without


def old_train_step(model, optimizer, scene, context, targets, *, stage, blend, clip=1.0) -> float:
    """train_step as it was before the loss terms: one pass over the whole context, MSE + D-SSIM."""
    model.train()
    optimizer.zero_grad(set_to_none=True)
    images, c2w, Ks = scene.views(context)
    pred = model(images, c2w, Ks, stage=stage, blend=blend)
    background = images.reshape(-1, 3).mean(dim=0)
    out = render_targets(pred, scene.c2w[targets], scene.Ks[targets], SIDE, SIDE, background)
    loss = photometric_loss(out.rgb, scene.images[targets])
    loss.backward()
    torch.nn.utils.clip_grad_norm_(model.parameters(), clip)
    optimizer.step()
    return float(loss.detach())


def test_weights_zero_leave_the_plain_loss_and_the_step_bit_for_bit(scene):
    zero = TrainSettings(**{name: 0.0 for name in LOSS_WEIGHTS}).loss_weights()
    assert zero == LossWeights() and not zero.consistency
    torch.manual_seed(0)
    ref = FeedForwardModel(TINY)
    models = [copy.deepcopy(ref) for _ in range(3)]
    opts = [torch.optim.AdamW(m.parameters(), lr=1e-3) for m in models]
    for step in range(2):
        kw = dict(stage=1, blend=0.5 * step)
        values = [
            old_train_step(models[0], opts[0], scene, [0, 1, 2], [3, 4], **kw),
            train_step(models[1], opts[1], scene, [0, 1, 2], [3, 4], **kw),
            train_step(models[2], opts[2], scene, [0, 1, 2], [3, 4], weights=zero, **kw),
        ]
        assert values[0] == values[1] == values[2]
    states = [m.state_dict() for m in models]
    assert all(torch.equal(states[0][k], s[k]) for s in states[1:] for k in states[0])


def test_a_short_run_with_every_term_on_is_finite_and_resumes_bit_for_bit(tmp_path):
    cfg = TINY
    settings = TrainSettings(
        steps=4, resolution=SIDE, views=4, context=3, train_scenes=3, heldout_scenes=1, stage_starts=(1, 2),
        fade=1, checkpoint_every=2, **{name: 0.5 for name in LOSS_WEIGHTS},
    )  # fmt: skip
    quiet = lambda line: None  # noqa: E731
    result = train(tmp_path / "full", cfg, settings, device="cpu", report=quiet)
    assert math.isfinite(result.heldout_psnr)
    full = load_checkpoint(tmp_path / "full" / CHECKPOINT)[0].state_dict()
    assert all(torch.isfinite(v).all() for v in full.values())

    def interrupt(line: str) -> None:
        if line.startswith("step 2:"):
            raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        train(tmp_path / "cut", cfg, settings, device="cpu", report=interrupt)
    train(tmp_path / "cut", cfg, settings, resume=True, device="cpu", report=quiet)
    resumed = load_checkpoint(tmp_path / "cut" / CHECKPOINT)[0].state_dict()
    assert all(torch.equal(full[k], resumed[k]) for k in full)
    # Other weights than the checkpoint's are refused on resume.
    other = dataclasses.replace(settings, steps=6, sh_reg=0.25)
    with pytest.raises(SplatpackError, match="sh_reg"):
        train(tmp_path / "cut", cfg, other, resume=True, device="cpu", report=quiet)


def test_a_checkpoint_from_before_the_terms_resumes_with_them_off(tmp_path):
    """Checkpoints that record no loss weights trained without the terms: they resume with all weights 0 and
    refuse the (paper's) defaults."""
    off = TrainSettings(steps=2, resolution=SIDE, views=3, context=2, train_scenes=2, heldout_scenes=0,
                        checkpoint_every=1, **{name: 0.0 for name in LOSS_WEIGHTS})  # fmt: skip
    train(tmp_path / "run", TINY, off, device="cpu", report=lambda line: None)
    path = tmp_path / "run" / CHECKPOINT
    model, extra = load_checkpoint(path)
    for name in (*LOSS_WEIGHTS, "sh_cap", "max_anisotropy"):
        del extra["settings"][name]
    save_checkpoint(path, model, half=False, extra=extra)
    with pytest.raises(SplatpackError, match="frustum_weight"):
        train(tmp_path / "run", TINY, dataclasses.replace(off, steps=3, **{n: 1e-2 for n in LOSS_WEIGHTS}),
              resume=True, device="cpu", report=lambda line: None)  # fmt: skip
    assert train(tmp_path / "run", TINY, dataclasses.replace(off, steps=3), resume=True, device="cpu",
                 report=lambda line: None).step == 3  # fmt: skip


def test_negative_or_non_finite_weights_are_refused():
    with pytest.raises(SplatpackError, match="loss weights"):
        TrainSettings(sh_reg=-1.0)
    with pytest.raises(SplatpackError, match="loss weights"):
        TrainSettings(frustum_weight=math.inf)
    with pytest.raises(SplatpackError, match="sh_cap"):
        TrainSettings(sh_cap=0.0)
