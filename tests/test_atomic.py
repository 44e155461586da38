import errno
import os

import pytest

from splatpack.errors import SplatpackError
from splatpack.io import atomic
from splatpack.io.atomic import atomic_folder, atomic_output, refuse_overwriting_inputs


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


def test_output_overlapping_an_input_is_refused(tmp_path):
    folder = tmp_path / "x.sog.d"
    folder.mkdir()
    (folder / "meta.json").write_text("{}")
    for out, src in (
        (folder / "meta.json", folder),  # inside an input folder
        (folder, folder / "meta.json"),  # a meta.json input stands for its folder
        (tmp_path, folder),  # contains the input
        (folder / "sub" / ".." / "meta.json", folder / "meta.json"),  # same file, another spelling
    ):
        with pytest.raises(SplatpackError, match="refusing to overwrite it"):
            refuse_overwriting_inputs(out, (src,))
    refuse_overwriting_inputs(tmp_path / "y.sog.d", (folder,))  # a sibling is fine


def test_non_regular_outputs_are_never_replaced(tmp_path):
    os.mkfifo(tmp_path / "fifo")
    (tmp_path / "null").symlink_to("/dev/null")
    for name in ("fifo", "null"):
        with pytest.raises(SplatpackError, match="not a regular file"):
            with atomic_output(tmp_path / name) as tmp:
                tmp.write_bytes(b"x")
    assert (tmp_path / "fifo").is_fifo() and os.readlink(tmp_path / "null") == "/dev/null"
    assert sorted(os.listdir(tmp_path)) == ["fifo", "null"]


def test_write_errors_in_the_block_become_one_line(tmp_path):
    with pytest.raises(SplatpackError, match="cannot write: No space left on device") as err:
        with atomic_output(tmp_path / "a.bin"):
            raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))
    assert str(tmp_path / "a.bin") in str(err.value) and os.listdir(tmp_path) == []


@pytest.mark.parametrize("exchange", [True, False])
def test_atomic_folder_swaps_whole_folders(tmp_path, monkeypatch, exchange):
    if not exchange:  # the two-rename fallback for systems without renameat2(RENAME_EXCHANGE)
        monkeypatch.setattr(atomic, "_exchange", lambda a, b: False)
    out = tmp_path / "o.sog.d"
    with atomic_folder(out) as tmp:
        (tmp / "a.webp").write_bytes(b"old")
        assert not out.exists()
    assert os.listdir(out) == ["a.webp"]
    with pytest.raises(RuntimeError):
        with atomic_folder(out) as tmp:
            (tmp / "b.webp").write_bytes(b"half")
            raise RuntimeError("killed midway")
    assert os.listdir(out) == ["a.webp"] and (out / "a.webp").read_bytes() == b"old"
    with atomic_folder(out) as tmp:
        (tmp / "b.webp").write_bytes(b"new")
    assert os.listdir(out) == ["b.webp"]
    assert os.listdir(tmp_path) == ["o.sog.d"]  # no temporary or old folder left
    (out / "notes.txt").write_text("mine")
    with pytest.raises(SplatpackError, match="holds other files"):
        with atomic_folder(out, replaceable=lambda f: all(p.suffix == ".webp" for p in f.iterdir())):
            pass
    assert sorted(os.listdir(out)) == ["b.webp", "notes.txt"]
