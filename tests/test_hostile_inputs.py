"""Every reader on every crafted hostile file: exit 2, one line, no traceback, nothing written, input unchanged,
peak memory under the ceiling README promises (``PEAK_CEILING``).

The crafted files are generated here and small (0 bytes to 2 MB); each declares far more than it holds
(gigabytes of Gaussians, an inflating zip member, a 13000x13000 texture) or is not a regular file at all. Every
run happens in a child process of a fork server (one fresh interpreter that imported splatpack once) under an
address-space limit (``RLIMIT_AS``: its own size + 1 GiB), so a regression fails the test rather than the
machine; the child's peak RSS comes from ``wait4``.
"""

from __future__ import annotations

import gzip
import hashlib
import io
import json
import os
import struct
import subprocess
import sys
import zipfile
import zlib
from pathlib import Path

import numpy as np
import pytest
import zstandard
from PIL import Image

ROOT = Path(__file__).resolve().parents[1]
# What README promises for a hostile file: the whole process (interpreter + torch ~240 MB) stays below this.
PEAK_CEILING = 500 << 20
AS_HEADROOM = 1 << 30
JOB_SECONDS = 120

# The fork server: reads one JSON job per line, runs it in a forked child under RLIMIT_AS, answers one JSON line.
DRIVER = r"""
import json, os, resource, signal, sys, traceback
import splatpack.cli, splatpack.io, splatpack.io.ply, splatpack.io.spz, splatpack.io.sog, splatpack.io.splat
import splatpack.io.compressed_ply, splatpack.io.spk, viewer.loading
from splatpack.errors import SplatpackError

def vm_size():
    for line in open("/proc/self/status"):
        if line.startswith("VmSize:"):
            return int(line.split()[1]) * 1024

def job(spec):
    if "argv" in spec:
        return splatpack.cli.main(spec["argv"])
    try:
        if "read" in spec:
            splatpack.io.format_module(spec["read"]).read(spec["path"])
        else:
            viewer.loading.load_upload(spec["upload"], open(spec["path"], "rb").read(), max_bytes=spec["max_bytes"])
    except SplatpackError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    except MemoryError:
        print("error: out of memory", file=sys.stderr)
        return 3
    print("read it", file=sys.stderr)
    return 0

for line in sys.stdin:
    spec = json.loads(line)
    out = spec["log"]
    pid = os.fork()
    if pid == 0:
        rc = 99
        try:
            fd = os.open(out, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
            os.dup2(fd, 1)
            os.dup2(fd, 2)
            sys.stdout = sys.stderr = open(fd, "w", buffering=1)
            limit = vm_size() + spec["headroom"]
            resource.setrlimit(resource.RLIMIT_AS, (limit, limit))
            signal.alarm(spec["seconds"])  # a regression that hangs (a FIFO read) ends as SIGALRM, not a stuck suite
            if "fsize" in spec:  # Python ignores SIGXFSZ: writes past the limit fail with EFBIG
                resource.setrlimit(resource.RLIMIT_FSIZE, (spec["fsize"], spec["fsize"]))
            rc = job(spec)
        except BaseException:
            traceback.print_exc()
        finally:
            sys.stderr.flush()
            os._exit(rc if isinstance(rc, int) else 98)
    _, status, usage = os.wait4(pid, 0)
    print(json.dumps({"rc": os.waitstatus_to_exitcode(status), "peak": usage.ru_maxrss * 1024}), flush=True)
"""


class ForkServer:
    def __init__(self, folder: Path, root: Path = ROOT):
        """``root``: the checkout whose splatpack runs the jobs (bench/reliability.py compares an older one)."""
        self.folder = folder
        self.proc = subprocess.Popen(
            [sys.executable, "-c", DRIVER],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            text=True,
            cwd=root,
            env={**os.environ, "PYTHONPATH": str(root)},
        )
        self.runs = 0

    def run(self, **spec) -> tuple[int, str, int]:
        """(exit status, output, peak RSS bytes) of one job."""
        self.runs += 1
        log = self.folder / f"run{self.runs}.log"
        job = {"seconds": JOB_SECONDS, **spec, "log": str(log), "headroom": AS_HEADROOM}
        self.proc.stdin.write(json.dumps(job) + "\n")
        self.proc.stdin.flush()
        answer = json.loads(self.proc.stdout.readline())
        text = log.read_text(errors="replace")
        log.unlink()
        return answer["rc"], text, answer["peak"]

    def close(self) -> None:
        self.proc.stdin.close()
        self.proc.wait(timeout=60)


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    s = ForkServer(tmp_path_factory.mktemp("logs"))
    yield s
    s.close()


# ---------------------------------------------------------------------------------------------- crafted files


def _zstd_zeros(n: int) -> bytes:
    """A zstd frame of ``n`` zero bytes (written in pieces: never ``n`` bytes in memory)."""
    c = zstandard.ZstdCompressor(level=3).compressobj(size=n)
    piece, out, left = bytes(1 << 20), [], n
    while left:
        out.append(c.compress(piece[: min(left, len(piece))]))
        left -= min(left, len(piece))
    out.append(c.flush())
    return b"".join(out)


def _spz_v4(count: int, streams: list[bytes] | None) -> bytes:
    """SPZ v4, SH degree 0: five streams of the sizes ``count`` needs; ``streams`` None means empty frames."""
    per = (9, 1, 3, 3, 4)
    blobs = streams if streams is not None else [b""] * 5
    header = struct.pack("<4sIIBBBBI12x", b"NGSP", 4, count, 0, 12, 0, 5, 32)
    toc = b"".join(struct.pack("<QQ", len(b), count * p) for b, p in zip(blobs, per))
    return header + toc + b"".join(blobs)


def spz_v4_huge_count(d: Path) -> Path:
    p = d / "huge.spz"
    p.write_bytes(_spz_v4(2**31, None))  # 128 bytes claiming 2^31 Gaussians
    return p


def spz_v4_zero_streams(d: Path) -> Path:
    n = 5_000_000
    p = d / "zeros.spz"
    p.write_bytes(_spz_v4(n, [_zstd_zeros(n * k) for k in (9, 1, 3, 3, 4)]))  # ~5 KB of valid zstd
    return p


def spz_gzip_huge_count(d: Path) -> Path:
    p = d / "legacy-huge.spz"
    p.write_bytes(gzip.compress(struct.pack("<4sIIBBBB", b"NGSP", 3, 0xFFFFFFFF, 0, 12, 0, 0)))
    return p


def spz_gzip_zero_stream(d: Path) -> Path:
    n = 2_000_000
    c = zlib.compressobj(9, zlib.DEFLATED, 16 + zlib.MAX_WBITS)
    out = [c.compress(struct.pack("<4sIIBBBB", b"NGSP", 3, n, 0, 12, 0, 0))]
    piece = bytes(1 << 20)
    for _ in range(n * 20 // len(piece) + 1):
        out.append(c.compress(piece))
    p = d / "legacy-zeros.spz"
    p.write_bytes(b"".join(out) + c.flush())  # ~40 KB inflating to 40 MB
    return p


def _webp(rgba: np.ndarray) -> bytes:
    buf = io.BytesIO()
    Image.fromarray(rgba, "RGBA").save(buf, "WEBP", lossless=True, exact=True, method=0)
    return buf.getvalue()


def _meta(count: int) -> dict:
    return {
        "version": 2,
        "count": count,
        "means": {"mins": [0, 0, 0], "maxs": [1, 1, 1], "files": ["means_l.webp", "means_u.webp"]},
        "scales": {"codebook": [0.0] * 256, "files": ["scales.webp"]},
        "quats": {"files": ["quats.webp"]},
        "sh0": {"codebook": [0.0] * 256, "files": ["sh0.webp"]},
    }


TEXTURES = ("means_l.webp", "means_u.webp", "quats.webp", "scales.webp", "sh0.webp")


def _sog_zip(path: Path, members: dict[str, bytes], compress=zipfile.ZIP_STORED) -> Path:
    with zipfile.ZipFile(path, "w", compression=compress) as z:
        for name, data in members.items():
            z.writestr(name, data)
    return path


def sog_count_bomb(d: Path) -> Path:
    """~2 KB of constant 2048x2048 textures claiming 4.2M Gaussians (5 GB decoded before the fix)."""
    tex = _webp(np.zeros((2048, 2048, 4), np.uint8))
    members = {name: tex for name in TEXTURES}
    return _sog_zip(d / "count-bomb.sog", {**members, "meta.json": json.dumps(_meta(2048 * 2048)).encode()})


def sog_huge_texture(d: Path) -> Path:
    """A 13000x13000 lossless WebP header (and no pixels) in a folder SOG for 100 Gaussians."""
    folder = d / "huge-texture.sog.d"
    folder.mkdir()
    small = _webp(np.zeros((12, 12, 4), np.uint8))
    bits = (13000 - 1) | ((13000 - 1) << 14) | (1 << 28)
    vp8l = b"\x2f" + bits.to_bytes(4, "little") + bytes(64)
    huge = b"RIFF" + struct.pack("<I", 4 + 8 + len(vp8l)) + b"WEBPVP8L" + struct.pack("<I", len(vp8l)) + vp8l
    for name in TEXTURES:
        (folder / name).write_bytes(huge if name == "means_l.webp" else small)
    (folder / "meta.json").write_text(json.dumps(_meta(100)))
    return folder


def sog_zip_member_bomb(d: Path) -> Path:
    """meta.json deflated from 64 MiB of JSON whitespace: ~64 KB on disk."""
    padded = b"{" + b" " * (64 << 20) + b'"count": 1}'
    return _sog_zip(d / "member-bomb.sog", {"meta.json": padded}, compress=zipfile.ZIP_DEFLATED)


def sog_zip_lying_size(d: Path) -> Path:
    """A member whose zip directory claims 100 bytes while its deflate stream inflates to 64 MiB."""
    path = sog_zip_member_bomb(d)
    data = bytearray(path.read_bytes())
    real = (64 << 20) + 12
    for at in range(len(data) - 4):
        if data[at : at + 4] == b"PK\x01\x02":  # central directory: uncompressed size at +24
            assert struct.unpack_from("<I", data, at + 24)[0] == real
            struct.pack_into("<I", data, at + 24, 100)
        elif data[at : at + 4] == b"PK\x03\x04" and struct.unpack_from("<I", data, at + 22)[0] == real:
            struct.pack_into("<I", data, at + 22, 100)
    lying = d / "lying.sog"
    lying.write_bytes(bytes(data))
    path.unlink()
    return lying


def sog_big_meta(d: Path) -> Path:
    folder = d / "big-meta.sog.d"
    folder.mkdir()
    meta = _meta(10)
    meta["asset"] = {"padding": "x" * (2 << 20)}
    (folder / "meta.json").write_text(json.dumps(meta))
    return folder


def sog_fifo_texture(d: Path) -> Path:
    folder = d / "fifo.sog.d"
    folder.mkdir()
    for name in TEXTURES:
        if name == "quats.webp":
            os.mkfifo(folder / name)
        else:
            (folder / name).write_bytes(_webp(np.zeros((4, 4, 4), np.uint8)))
    (folder / "meta.json").write_text(json.dumps(_meta(10)))
    return folder


def dev_zero_link(d: Path) -> Path:
    p = d / "zero.spz"
    p.symlink_to("/dev/zero")
    return p


def fifo_input(d: Path) -> Path:
    p = d / "pipe.ply"
    os.mkfifo(p)
    return p


def _cply(d: Path, name: str, rotation_type: str, newline: bytes = b"\n", comments: int = 0) -> Path:
    n = 256
    header = [b"ply", b"format binary_little_endian 1.0"] + [b"comment " + b"x" * 70] * comments
    header += [b"element chunk 1"] + [
        b"property float " + p.encode()
        for p in (
            "min_x min_y min_z max_x max_y max_z " + " ".join(f"{m}_scale_{a}" for m in ("min", "max") for a in "xyz")
        ).split()
    ]
    header += [
        f"element vertex {n}".encode(),
        b"property uint packed_position",
        f"property {rotation_type} packed_rotation".encode(),
        b"property uint packed_scale",
        b"property uint packed_color",
        b"end_header",
    ]
    rot = {"int": "<i4", "double": "<f8", "uint": "<u4"}[rotation_type]
    vertex = np.zeros(n, [("p", "<u4"), ("r", rot), ("s", "<u4"), ("c", "<u4")])
    vertex["r"] = 0 if rotation_type == "uint" else -1
    body = np.arange(12, dtype="<f4").tobytes() + vertex.tobytes()
    p = d / f"{name}.compressed.ply"
    p.write_bytes(newline.join(header) + newline + body)
    return p


def cply_signed_rotation(d: Path) -> Path:
    return _cply(d, "signed", "int")


def cply_double_rotation(d: Path) -> Path:
    return _cply(d, "double", "double")


def cply_crlf(d: Path) -> Path:
    return _cply(d, "crlf", "uint", newline=b"\r\n")


def cply_long_header(d: Path) -> Path:
    return _cply(d, "long-header", "uint", comments=1000)


def ply_huge_count(d: Path) -> Path:
    props = b"".join(b"property float %s\n" % n.encode() for n in "x y z f_dc_0 f_dc_1 f_dc_2 opacity".split())
    props += b"".join(
        b"property float %s\n" % n.encode() for n in "scale_0 scale_1 scale_2 rot_0 rot_1 rot_2 rot_3".split()
    )
    p = d / "huge.ply"
    p.write_bytes(b"ply\nformat binary_little_endian 1.0\nelement vertex 1000000000000\n" + props + b"end_header\n")
    return p


SPK_RAW = {"log_scales": 3, "quats": 4, "sh0": 3, "opacity_logits": 1, "shN": 0}  # SH 0, raw layout


def _spk(count: int, sections: dict[str, bytes]) -> bytes:
    """A .spk file (SH 0, raw layout, fp16 positions) of ``count`` Gaussians around ``sections``."""
    meta = {"attributes": {k: {"raw": w} for k, w in SPK_RAW.items()},
            "positions": {"mode": "fp16"}, "order": "morton", "fields": None,
            "frame": {"rotation": [1, 0, 0, 0, 1, 0, 0, 0, 1], "translation": [0, 0, 0], "scale": 1}}  # fmt: skip
    sections = {"meta": zstandard.ZstdCompressor().compress(json.dumps(meta).encode()), **sections}
    table = b"".join(bytes([len(n)]) + n.encode() + struct.pack("<Q", len(d)) for n, d in sections.items())
    return struct.pack("<4sHBBQH", b"SPK\0", 1, 0, 0, count, len(sections)) + table + b"".join(sections.values())


def spk_huge_count(d: Path) -> Path:
    p = d / "huge.spk"
    p.write_bytes(_spk(2**40, {}))  # ~300 bytes claiming 2^40 Gaussians (and none of their sections)
    return p


def spk_zero_sections(d: Path) -> Path:
    """Raw sections that are zstd frames of the sizes 2M Gaussians need (a few KB inflating to 44 MB)."""
    n = 2_000_000
    raw = {f"{k}.raw": _zstd_zeros(2 * n * w) for k, w in SPK_RAW.items()}
    p = d / "zeros.spk"
    p.write_bytes(_spk(n, {"positions": b"\0" * 16, **raw}))
    return p


CASES = {
    f.__name__: f
    for f in (
        spz_v4_huge_count,
        spz_v4_zero_streams,
        spz_gzip_huge_count,
        spz_gzip_zero_stream,
        sog_count_bomb,
        sog_huge_texture,
        sog_zip_member_bomb,
        sog_zip_lying_size,
        sog_big_meta,
        sog_fifo_texture,
        dev_zero_link,
        fifo_input,
        cply_signed_rotation,
        cply_double_rotation,
        cply_crlf,
        cply_long_header,
        ply_huge_count,
        spk_huge_count,
        spk_zero_sections,
    )
}
READERS = ("ply", "compressed-ply", "spz", "splat", "sog", "spk")


def snapshot(folder: Path) -> dict[str, str]:
    """Every entry under ``folder`` (links and FIFOs as such) with a digest of each regular file."""
    out = {}
    for p in sorted(folder.rglob("*")):
        rel = str(p.relative_to(folder))
        if p.is_symlink():
            out[rel] = "link:" + os.readlink(p)
        elif p.is_fifo():
            out[rel] = "fifo"
        elif p.is_dir():
            out[rel] = "dir"
        else:
            out[rel] = hashlib.sha256(p.read_bytes()).hexdigest()
    return out


def assert_refused(rc: int, text: str, peak: int, name: str, what: str) -> None:
    lines = text.strip().splitlines()
    assert rc == 2, f"{what}: exit {rc}\n{text[-2000:]}"
    assert len(lines) == 1, f"{what}: {len(lines)} lines\n{text[-2000:]}"
    assert "Traceback" not in text and "out of memory" not in text, f"{what}: {text}"
    assert name in lines[0], f"{what}: the line does not name {name}: {lines[0]}"
    assert peak < PEAK_CEILING, f"{what}: peak RSS {peak / 2**20:.0f} MB"


@pytest.fixture(scope="module")
def crafted(tmp_path_factory) -> dict[str, Path]:
    return {name: make(tmp_path_factory.mktemp(name)) for name, make in CASES.items()}


@pytest.mark.parametrize("case", sorted(CASES))
def test_every_command_refuses_cleanly(server, crafted, case, tmp_path):
    path = crafted[case]
    before = snapshot(path.parent)
    out = tmp_path / "out"
    runs = {
        "info": ["info", path],
        "decompress": ["decompress", path, out.with_suffix(".ply")],
        "compress": ["compress", path, out.with_suffix(".spz")],
    }
    for what, argv in runs.items():
        rc, text, peak = server.run(argv=[str(a) for a in argv])
        assert text.startswith("splatpack: error: "), f"{case} {what}: {text}"
        assert_refused(rc, text, peak, path.name, f"{case} {what}")
        assert list(tmp_path.iterdir()) == [], f"{case} {what} wrote {list(tmp_path.iterdir())}"
    assert snapshot(path.parent) == before


@pytest.mark.parametrize("case", sorted(CASES))
def test_every_reader_and_the_viewer_upload_refuse_cleanly(server, crafted, case):
    path = crafted[case]
    before = snapshot(path.parent)
    for fmt in READERS:
        rc, text, peak = server.run(read=fmt, path=str(path))
        assert_refused(rc, text, peak, path.name, f"{case} read as {fmt}")
    if path.is_file() and not path.is_symlink():  # what a browser can upload: the bytes of one file
        rc, text, peak = server.run(upload=path.name, path=str(path), max_bytes=256 << 20)
        assert_refused(rc, text, peak, path.name, f"{case} uploaded")
    assert snapshot(path.parent) == before


def test_peak_memory_of_a_valid_read_is_measured_the_same_way(server, tmp_path):
    """The ceiling is meaningful: the same harness sees a real decode's memory (1M Gaussians of SH 0 ~ 56 MB)."""
    import splatpack.io as sio
    from splatpack.scene import Splats

    small, big = tmp_path / "small.spz", tmp_path / "big.spz"
    sio.write(Splats.random(100, 0), small)
    sio.write(Splats.random(1_000_000, 0), big)
    base = server.run(read="spz", path=str(small))
    full = server.run(read="spz", path=str(big))
    assert base[0] == 0 and full[0] == 0
    assert full[2] - base[2] > 56e6


# ---------------------------------------------------------------------------------------------- outputs


@pytest.fixture(scope="module")
def sog_input(tmp_path_factory) -> Path:
    import splatpack.io as sio
    from splatpack.scene import Splats

    folder = tmp_path_factory.mktemp("sog") / "x.sog.d"
    sio.write(Splats.random(300, 1, seed=3), folder, sort="none")
    sio.write(Splats.random(300, 1, seed=3), folder.parent / "in.ply")
    return folder


def _refused(server, argv, folder: Path, message: str) -> None:
    before = snapshot(folder)
    rc, text, peak = server.run(argv=[str(a) for a in argv])
    assert rc == 2 and len(text.strip().splitlines()) == 1 and "Traceback" not in text, (argv, text)
    assert message in text, (argv, text)
    assert snapshot(folder) == before, argv


def test_outputs_that_overlap_an_input_are_refused(server, sog_input):
    x, d = sog_input, sog_input.parent
    for argv in (
        ["decompress", x, x / "meta.json"],  # into the input folder, over its meta.json
        ["compress", x / "meta.json", x],  # the folder a meta.json input stands for
        ["compress", x, x / "inner.spz"],  # inside the input folder
        ["compress", d / "in.ply", d, "--format", "sog"],  # a folder containing the input
        ["compress", x / "meta.json", x / "meta.json"],
    ):
        _refused(server, argv, d, "refusing")


def test_outputs_that_are_not_regular_files_are_never_replaced(server, sog_input, tmp_path):
    os.mkfifo(tmp_path / "fifo.ply")
    (tmp_path / "null.ply").symlink_to("/dev/null")
    os.mkfifo(tmp_path / "fifo.sog.d")
    for argv in (
        ["decompress", sog_input, tmp_path / "fifo.ply"],
        ["decompress", sog_input, tmp_path / "null.ply"],
        ["compress", sog_input, tmp_path / "fifo.sog.d"],
    ):
        _refused(server, argv, tmp_path, "not a regular file")
    assert (tmp_path / "fifo.ply").is_fifo() and os.readlink(tmp_path / "null.ply") == "/dev/null"


@pytest.mark.parametrize("out", ["o.spz", "o.splat", "o.sog", "o.sog.d", "o.ply", "old.sog.d"])
def test_write_errors_are_one_line_and_leave_nothing(server, sog_input, tmp_path, out):
    """Disk full / file-size limit midway (RLIMIT_FSIZE): one line, exit 2, no temporary left, old output intact."""
    import splatpack.io as sio
    from splatpack.scene import Splats

    if out == "old.sog.d":
        sio.write(Splats.random(100, 0, seed=9), tmp_path / out, sort="none")
    before = snapshot(tmp_path)
    command = "decompress" if out.endswith(".ply") else "compress"
    rc, text, _ = server.run(argv=[command, str(sog_input), str(tmp_path / out)], fsize=4096)
    assert rc == 2 and len(text.strip().splitlines()) == 1 and "Traceback" not in text, text
    assert "cannot write" in text and out in text, text
    assert snapshot(tmp_path) == before  # the old SOG folder keeps all its files, nothing hidden is left


def test_sigterm_removes_the_temporary_file(tmp_path):
    """`kill`, `timeout` and `docker stop` send SIGTERM: the half-written output must not stay behind."""
    import signal
    import time

    import splatpack.io as sio
    from splatpack.scene import Splats

    src = tmp_path / "big.spz"
    sio.write(Splats.random(1_000_000, 0, seed=1), src)
    out = tmp_path / "out.ply"
    proc = subprocess.Popen(
        [sys.executable, "-m", "splatpack.cli", "decompress", str(src), str(out)],
        cwd=ROOT,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    deadline = time.monotonic() + 240
    while not any(p.name.startswith(".out.ply.") for p in tmp_path.iterdir()):
        assert proc.poll() is None, "finished before its temporary file was seen"
        assert time.monotonic() < deadline
        time.sleep(0.002)
    proc.send_signal(signal.SIGTERM)
    _, stderr = proc.communicate(timeout=120)
    assert proc.returncode == 128 + signal.SIGTERM, stderr
    assert stderr.strip() == "splatpack: terminated"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["big.spz"]
