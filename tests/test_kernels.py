"""splatpack's own kernels (cuda/): every .cu compiles with nvcc, the CPU twins agree with the torch references
(PLAS bit for bit, importance counts exactly and weights to float rounding), the setting and the fallback work,
and where CUDA runs, the CUDA kernels agree with the references too.

Tolerances: importance weights are float32 sums of alpha * T whose exponent the reference evaluates as one BLAS
matrix product and the kernel term by term, so they agree to float32 rounding of the sums (rtol 1e-5); the CUDA
kernel also adds pixels in warp order with atomics (rtol 1e-4). Counts change only where an alpha or a
transmittance grazes a cut-off, or two weights of a pixel tie, within float rounding: on these scenes they
must be equal (bench/kernels.py counts the rare differences on the 42 demo views).
"""

from __future__ import annotations

import logging
import shutil
import subprocess
from pathlib import Path

import pytest
import torch
from test_render import cameras, make_scene

from splatpack import kernels
from splatpack.errors import SplatpackError
from splatpack.render import importance, importance_kernel, registry
from splatpack.sort import FAST_PLAS
from splatpack.sort.plas import _Sorter, plas_sort

CUDA_SOURCES = sorted((kernels.SOURCE_DIR / "kernels").glob("*.cu"))


@pytest.mark.parametrize("source", CUDA_SOURCES, ids=lambda p: p.name)
def test_every_cuda_kernel_compiles_with_nvcc(source: Path, tmp_path):
    """A syntax or type error in a kernel fails here, on machines without a GPU (nvcc needs none)."""
    if shutil.which("nvcc") is None:
        pytest.skip("nvcc is not on the PATH")
    cmd = ["nvcc", "-c", "-O3", "--Werror", "all-warnings", "-I", str(kernels.SOURCE_DIR / "include")]
    result = subprocess.run([*cmd, str(source), "-o", str(tmp_path / "k.o")], capture_output=True, text=True)
    assert result.returncode == 0, result.stderr
    assert (tmp_path / "k.o").stat().st_size > 0


def test_cuda_sources_are_all_found():
    assert {p.name for p in CUDA_SOURCES} == {"importance.cu", "plas.cu"}


@pytest.fixture(scope="module")
def native():
    """The CPU extension (built on first use, then cached); skips only where no C++ compiler exists."""
    if shutil.which("c++") is None:
        pytest.skip("no C++ compiler: the torch references run instead of the kernels")
    return kernels.build(cuda=kernels.cuda_buildable())


@pytest.fixture
def kernel_setting(monkeypatch):
    def use(value: str) -> None:
        monkeypatch.setenv(kernels.ENV, value)

    return use


# ------------------------------------------------------------------------------------------------------------ PLAS


def _assignment_inputs(tiles: int, cells: int, channels: int, seed: int, device="cpu"):
    g = torch.Generator().manual_seed(seed)
    x = torch.randn(tiles, cells, channels, generator=g)
    y = 0.5 * x + torch.randn(tiles, cells, channels, generator=g)  # targets loosely like the values
    x[:, :4] = x[:, 4:8]  # some exact ties: the first maximum must win in both
    idx = torch.randperm(tiles * cells, generator=g).reshape(tiles, cells)
    perm = torch.randperm(cells, generator=g)
    return [t.to(device) for t in (x, y, idx, perm)]


@pytest.mark.parametrize("tiles,cells,channels", [(1, 4096, 9), (64, 64, 3), (7, 256, 16), (3, 8, 1)])
def test_plas_assignment_step_is_the_torch_step_bit_for_bit(native, tiles, cells, channels):
    x, y, idx, perm = _assignment_inputs(tiles, cells, channels, seed=cells + channels)
    sorter = _Sorter(torch.zeros(2, 2, channels), 0, False)
    ref_x, ref_idx = x.clone(), idx.clone()
    ref_gains = sorter._assign(ref_x, y, ref_idx, perm, torch.empty_like(x), torch.empty_like(y))
    gains = native.plas_assign(x, y, idx, perm)
    assert torch.equal(gains, ref_gains)
    assert torch.equal(x, ref_x) and torch.equal(idx, ref_idx)
    assert int((gains > 0).sum()) > tiles * cells // 40  # groups did move


def test_plas_assignment_checks_its_tensors(native):
    x, y, idx, perm = _assignment_inputs(2, 16, 3, seed=0)
    with pytest.raises(RuntimeError, match="cells % 4"):
        native.plas_assign(x[:, :6].contiguous(), y[:, :6].contiguous(), idx[:, :6].contiguous(), perm[:6])
    with pytest.raises(RuntimeError, match="contiguous Float"):
        native.plas_assign(x.double(), y.double(), idx, perm)


def _demo_key(demo_scene: Path, side: int) -> torch.Tensor:
    """A (side, side, 6) sort key of the demo's seed points: standardised position and colour."""
    from splatpack.datasets import load_seed_points

    points, colours = load_seed_points(demo_scene / "sparse_pc.ply")
    key = torch.cat([points, colours], dim=1)[: side * side].to(torch.float32)
    return ((key - key.mean(0)) / key.std(0)).reshape(side, side, -1)


@pytest.mark.parametrize("grid", ["random", "demo"])
def test_plas_sort_is_identical_with_the_kernel(native, kernel_setting, grid, request):
    g = torch.Generator().manual_seed(2)
    key = (
        torch.randn(40, 56, 3, generator=g)
        if grid == "random"
        else _demo_key(request.getfixturevalue("demo_scene"), 48)
    )
    kernel_setting("torch")
    ref = plas_sort(key, seed=7, **FAST_PLAS)
    kernel_setting("native")
    assert torch.equal(plas_sort(key, seed=7, **FAST_PLAS), ref)


# ------------------------------------------------------------------------------------------------------ importance

WIDTH, HEIGHT = 37, 29  # not multiples of the tile size: overhanging pixels must not count


def _random_scene(n: int, seed: int, device="cpu"):
    means, quats, scales, opacities, _ = make_scene(n=n, sh_degree=0, seed=seed, dtype=torch.float32)
    viewmats, Ks = cameras(WIDTH, HEIGHT, dtype=torch.float32)
    return [t.to(device) for t in (means, quats, scales, opacities, viewmats, Ks)], WIDTH, HEIGHT


def _demo_like_scene(demo_scene: Path, n: int, views: int, device="cpu"):
    """Gaussians scattered around the demo's seed points, seen by a few of its training cameras."""
    from splatpack.datasets import load_seed_points, load_transforms

    cams = load_transforms(demo_scene, split="train")
    seeds = load_seed_points(demo_scene / "sparse_pc.ply")[0].to(torch.float32)
    g = torch.Generator().manual_seed(0)
    means = seeds[torch.randint(len(seeds), (n,), generator=g)] + 0.03 * torch.randn(n, 3, generator=g)
    quats = torch.randn(n, 4, generator=g)
    scales = torch.exp(torch.randn(n, 3, generator=g) * 0.4 - 3.5)
    opacities = torch.sigmoid(torch.randn(n, generator=g) * 2)
    pick = torch.linspace(0, len(cams.viewmats) - 1, views).long()
    tensors = [means, quats, scales, opacities, cams.viewmats[pick], cams.Ks[pick]]
    return [t.to(device) for t in tensors], cams.width, cams.height


def _assert_same_contributions(ours, ref, rtol):
    assert torch.equal(ours.covered, ref.covered)
    assert torch.equal(ours.dominant, ref.dominant)
    torch.testing.assert_close(ours.weight, ref.weight, rtol=rtol, atol=1e-5)
    assert int(ref.dominant.sum()) > 0


@pytest.mark.parametrize("mode", ["classic", "antialiased"])
@pytest.mark.parametrize("n,seed,tile_size", [(200, 4, 8), (3000, 1, 8), (1500, 2, 16)])
def test_importance_cpu_twin_matches_the_reference(native, kernel_setting, mode, n, seed, tile_size):
    kernel_setting("native")
    args, width, height = _random_scene(n, seed)
    kw = {"rasterize_mode": mode, "tile_size": tile_size}
    ref = importance.view_contributions(*args, width, height, **kw)
    _assert_same_contributions(importance_kernel.view_contributions(*args, width, height, **kw), ref, rtol=1e-5)


def test_importance_cpu_twin_matches_the_reference_on_a_demo_like_scene(native, kernel_setting, demo_scene):
    kernel_setting("native")
    args, width, height = _demo_like_scene(demo_scene, n=8000, views=2)
    ref = importance.view_contributions(*args, width, height)
    _assert_same_contributions(importance_kernel.view_contributions(*args, width, height), ref, rtol=1e-5)


def test_importance_op_is_registered_and_accumulates_like_the_reference(native, kernel_setting):
    kernel_setting("native")
    _, op = registry.resolve(registry.AUTO, torch.device("cpu"), op="view_contributions")
    assert op is importance_kernel.view_contributions
    args, width, height = _random_scene(600, 3)
    ref = importance.accumulate_importance(
        *args, width, height, cameras_per_chunk=1, contributions=importance.view_contributions
    )
    ours = importance.accumulate_importance(*args, width, height, cameras_per_chunk=1)  # the registered op
    assert torch.equal(ours.dominant, ref.dominant) and torch.equal(ours.dominant_max, ref.dominant_max)
    torch.testing.assert_close(ours.weight, ref.weight, rtol=1e-5, atol=1e-5)
    torch.testing.assert_close(ours.weight_per_pixel, ref.weight_per_pixel, rtol=1e-5, atol=1e-6)


def test_importance_float64_runs_the_reference(native, kernel_setting):
    kernel_setting("native")
    args, width, height = _random_scene(100, 5)
    args = [t.double() for t in args]
    ref = importance.view_contributions(*args, width, height)
    ours = importance_kernel.view_contributions(*args, width, height)
    assert ours.weight.dtype == torch.float64 and torch.equal(ours.weight, ref.weight)


# -------------------------------------------------------------------------------------------- setting and fallback


def test_setting_picks_the_path(native, kernel_setting):
    kernel_setting("torch")
    assert kernels.ops("cpu") is None
    kernel_setting("auto")
    assert kernels.ops("cpu") is not None
    assert kernels.ops("meta") is None
    kernel_setting("fastest")
    with pytest.raises(SplatpackError, match="SPLATPACK_KERNELS"):
        kernels.ops("cpu")


@pytest.fixture
def failing_build(monkeypatch):
    def fail(**_):
        raise RuntimeError("Error building extension 'splatpack_kernels'\n[1/3] c++ ... error: oops")

    monkeypatch.setattr(kernels, "build", fail)
    kernels._library.cache_clear()
    yield
    kernels._library.cache_clear()


def test_a_failed_build_logs_one_line_and_the_reference_runs(failing_build, kernel_setting, caplog):
    kernel_setting("auto")
    with caplog.at_level(logging.WARNING, logger="splatpack.kernels"):
        assert kernels.ops("cpu") is None
        assert kernels.ops("cpu") is None  # once per process
    assert len(caplog.records) == 1
    assert "Error building extension" in caplog.records[0].getMessage()
    assert "\n" not in caplog.records[0].getMessage()
    grid = torch.randn(8, 8, 3, generator=torch.Generator().manual_seed(0))
    assert sorted(plas_sort(grid, seed=1).reshape(-1).tolist()) == list(range(64))


def test_native_setting_refuses_a_failed_build(failing_build, kernel_setting):
    kernel_setting("native")
    with pytest.raises(SplatpackError, match="did not build"):
        kernels.ops("cpu")


# ------------------------------------------------------------------------------------------------------------ CUDA

needs_cuda = pytest.mark.skipif(
    not torch.cuda.is_available() or not kernels.cuda_buildable(),
    reason="needs a CUDA GPU, a CUDA build of torch and the CUDA toolkit (scripts/gpu_check.sh)",
)


@needs_cuda
@pytest.mark.parametrize("tiles,cells,channels", [(1, 65536, 9), (256, 64, 3)])
def test_cuda_plas_assignment_is_the_cpu_step_bit_for_bit(native, tiles, cells, channels):
    x, y, idx, perm = _assignment_inputs(tiles, cells, channels, seed=5)
    xc, yc, idc, pc = (t.cuda() for t in (x, y, idx, perm))
    ref_gains = native.plas_assign(x, y, idx, perm)
    gains = native.plas_assign(xc, yc, idc, pc)
    assert torch.equal(gains.cpu(), ref_gains)
    assert torch.equal(xc.cpu(), x) and torch.equal(idc.cpu(), idx)


@needs_cuda
def test_cuda_plas_sort_is_the_cpu_reference(native, kernel_setting, demo_scene):
    key = _demo_key(demo_scene, 60)
    kernel_setting("torch")
    ref = plas_sort(key, seed=3, **FAST_PLAS)
    kernel_setting("native")
    # Only the float64 stopping sums are reduced in another order on the GPU; decisions are bit for bit.
    assert torch.equal(plas_sort(key.cuda(), seed=3, **FAST_PLAS).cpu(), ref)


@needs_cuda
@pytest.mark.parametrize("mode", ["classic", "antialiased"])
def test_cuda_importance_matches_the_reference(native, kernel_setting, mode):
    kernel_setting("native")
    args, width, height = _random_scene(3000, 1, device="cuda")
    ref = importance.view_contributions(*args, width, height, rasterize_mode=mode)
    ours = importance_kernel.view_contributions(*args, width, height, rasterize_mode=mode)
    _assert_same_contributions(ours, ref, rtol=1e-4)


@needs_cuda
def test_cuda_importance_matches_the_reference_on_a_demo_like_scene(native, kernel_setting, demo_scene):
    kernel_setting("native")
    args, width, height = _demo_like_scene(demo_scene, n=20000, views=6, device="cuda")
    ref = importance.view_contributions(*args, width, height)
    _assert_same_contributions(importance_kernel.view_contributions(*args, width, height), ref, rtol=1e-4)
