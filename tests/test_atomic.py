import os

import pytest

from splatpack.errors import SplatpackError
from splatpack.io.atomic import atomic_output


def test_success_renames_into_place(tmp_path):
    out = tmp_path / "a.bin"
    with atomic_output(out) as tmp:
        tmp.write_bytes(b"xyz")
        assert not out.exists()
    assert out.read_bytes() == b"xyz"
    assert os.listdir(tmp_path) == ["a.bin"]


def test_failure_leaves_nothing_and_keeps_old_file(tmp_path):
    out = tmp_path / "a.bin"
    out.write_bytes(b"old")
    with pytest.raises(RuntimeError):
        with atomic_output(out) as tmp:
            tmp.write_bytes(b"partial")
            raise RuntimeError("writer failed")
    assert out.read_bytes() == b"old"
    assert os.listdir(tmp_path) == ["a.bin"]


def test_refuses_input_as_output_and_missing_folder(tmp_path):
    src = tmp_path / "in.ply"
    src.write_bytes(b"data")
    with pytest.raises(SplatpackError, match="same file as the input"):
        with atomic_output(src, inputs=(src,)):
            pass
    assert src.read_bytes() == b"data"
    with pytest.raises(SplatpackError, match="does not exist"):
        with atomic_output(tmp_path / "nope" / "x.ply"):
            pass


def test_output_gets_umask_permissions_not_0600(tmp_path):
    old = os.umask(0o022)
    try:
        with atomic_output(tmp_path / "p.bin") as tmp:
            tmp.write_bytes(b"x")
    finally:
        os.umask(old)
    assert (tmp_path / "p.bin").stat().st_mode & 0o777 == 0o644
