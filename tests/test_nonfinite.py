"""The non-finite rule (splatpack.edit.nonfinite): one policy for every reader, Splats.from_numpy and the CLI."""

from __future__ import annotations

import numpy as np
import plyfile
import pytest
import torch

import splatpack.io as sio
from splatpack.cli import main
from splatpack.edit.nonfinite import LOG_SCALE_MAX, LOGIT_MAX, resolve
from splatpack.errors import SplatpackError
from splatpack.scene import Splats


def write_ply_columns(path, splats: Splats, edit) -> None:
    """Write ``splats`` as a PLY whose columns ``edit`` may set to NaN/Inf (our writer refuses such values)."""
    s = splats
    cols = {"x": s.means[:, 0], "y": s.means[:, 1], "z": s.means[:, 2]}
    cols.update({f"f_dc_{i}": s.sh0[:, 0, i] for i in range(3)})
    cols["opacity"] = s.opacity_logits
    cols.update({f"scale_{i}": s.log_scales[:, i] for i in range(3)})
    cols.update({f"rot_{i}": s.quats[:, i] for i in range(4)})
    rec = np.empty(len(s), dtype=[(k, "<f4") for k in cols])
    for k, v in cols.items():
        rec[k] = v.numpy()
    edit(rec)
    plyfile.PlyData([plyfile.PlyElement.describe(rec, "vertex")]).write(str(path))


@pytest.fixture
def scene():
    return Splats.random(40, seed=5)


def infinite(rec):
    rec["opacity"][[1, 2, 3]] = np.inf  # what splat-transform writes for opacity byte 255
    rec["opacity"][4] = -np.inf
    rec["scale_1"][5] = np.inf
    rec["scale_2"][6] = -np.inf


def test_infinite_opacities_and_scales_clamp_by_default(tmp_path, scene):
    path = tmp_path / "inf.ply"
    write_ply_columns(path, scene, infinite)
    s = sio.read(path)
    assert len(s) == 40 and bool(torch.isfinite(s.opacity_logits).all() and torch.isfinite(s.log_scales).all())
    assert s.opacity_logits[[1, 2, 3]].tolist() == [np.float32(LOGIT_MAX)] * 3
    assert float(s.opacity_logits[4]) == -np.float32(LOGIT_MAX) and float(s.opacities[1]) == 1.0
    assert float(s.log_scales[5, 1]) == pytest.approx(LOG_SCALE_MAX) and float(s.log_scales[6, 2]) < -88
    assert torch.isfinite(s.scales).all()  # the largest finite linear scale: every writer can store it
    untouched = [i for i in range(40) if i not in (1, 2, 3, 4, 5, 6)]
    assert torch.equal(s.means, scene.means) and torch.equal(
        s.opacity_logits[untouched], scene.opacity_logits[untouched]
    )
    for ext in ("spz", "sog", "splat", "ply"):
        out = tmp_path / f"out.{ext}"
        sio.write(s, out, **({"sort": "none"} if ext == "sog" else {}))
        assert len(sio.read(out)) == 40
    with pytest.raises(SplatpackError, match=r"inf\.ply: NaN/Inf values in 6 entries: opacity \(4\), scale_1 \(1\)"):
        sio.read(path, nonfinite="error")
    dropped = sio.read(path, nonfinite="drop")
    assert len(dropped) == 34 and torch.equal(dropped.means, scene.means[untouched])


def test_nan_and_infinite_positions_are_refused_unless_dropped(tmp_path, scene):
    path = tmp_path / "nan.ply"

    def nan(rec):
        rec["opacity"][[0, 9]] = np.nan
        rec["x"][3] = np.inf
        rec["opacity"][12] = np.inf  # clampable: not counted among the refused values

    write_ply_columns(path, scene, nan)
    with pytest.raises(SplatpackError, match=r"NaN/Inf values in 3 entries: x \(1\), opacity \(2\); --nonfinite drop"):
        sio.read(path)
    assert len(sio.read(path, nonfinite="drop")) == 36
    with pytest.raises(SplatpackError, match="unknown non-finite policy 'zap'"):
        sio.read(path, nonfinite="zap")


def test_from_numpy_and_validate_follow_the_same_rule(scene):
    arrays = {f: getattr(scene, f).numpy().copy() for f in Splats.FIELDS}
    arrays["opacity_logits"][2] = np.inf
    s = Splats.from_numpy(**arrays)  # readers built on from_numpy (SPZ, SOG, .splat, compressed PLY) agree
    assert float(s.opacity_logits[2]) == np.float32(LOGIT_MAX)
    arrays["sh0"][7, 0, 1] = np.nan
    with pytest.raises(SplatpackError, match=r"x\.spz: NaN/Inf values in 1 entries: sh0 \(1\)"):
        Splats.from_numpy(**arrays, source="x.spz")
    bad = scene.clone()
    bad.opacity_logits[3] = float("inf")
    with pytest.raises(
        SplatpackError, match=r"opacity_logits has 1 Gaussian\(s\) with NaN/Inf values \(first at index 3\)"
    ):
        bad.validate()
    fixed = resolve({"opacity_logits": bad.opacity_logits.numpy()}, policy="clamp")
    assert np.isfinite(fixed["opacity_logits"]).all()


def test_every_reading_command_takes_the_policy(tmp_path, scene, capsys):
    path = tmp_path / "inf.ply"
    write_ply_columns(path, scene, infinite)
    assert main(["info", str(path), "--json"]) == 0
    assert '"gaussians": 40' in capsys.readouterr().out
    assert main(["info", str(path), "--nonfinite", "error"]) == 2
    assert "inf.ply: NaN/Inf values in 6 entries" in capsys.readouterr().err
    assert main(["compress", str(path), str(tmp_path / "o.spz"), "--nonfinite", "drop"]) == 0
    assert "34 Gaussians" in capsys.readouterr().out
    assert main(["decompress", str(tmp_path / "o.spz"), str(tmp_path / "back.ply"), "--nonfinite", "error"]) == 0
    assert len(sio.read(tmp_path / "back.ply")) == 34
    from viewer.loading import load_scene

    assert load_scene(path, nonfinite="drop").total == 34
    with pytest.raises(SplatpackError, match="NaN/Inf"):
        load_scene(path, nonfinite="error")
