"""The entropy coding of ``.spk`` sections (``splatpack.io.spk``): SVQ indices and Morton-coded positions.

Both use ``constriction``'s ANS coder with static categorical models whose counts travel with the data, so each
section decodes on its own and exactly. Models are cheap to describe, which matters for scenes of 5k-50k
Gaussians where a 1024-entry table per sub-vector would otherwise cost a few % of the indices:

- SVQ indices: the writer sorts every codebook by descending use (a permutation of the codebook is free), so
  each column's counts form a non-increasing sequence; stored as varints of its differences from the rarest
  entry up (mostly 0 and 1) and zstd-compressed, a 1024-entry table takes ~100-300 bytes.
- Positions: integer coordinates (``bits`` per axis) interleaved into 3-D Morton codes, sorted; the gaps
  between consecutive codes are coded as an entropy-coded symbol (bit length of the gap and its ``TOP_BITS``
  next bits) followed by the remaining low bits raw, grouped by their length so both directions are numpy
  operations over whole arrays.

Every decoder here takes counts it was told (by the container's validated header) and never allocates more than
those counts and its input's length allow; malformed bytes become ``ValueError`` for the container to name.
"""

from __future__ import annotations

import constriction
import numpy as np
import zstandard

ZSTD_LEVEL = 19  # tables are tiny: the slowest level costs nothing
BULK_LEVEL = 9  # raw fp16 attributes: ~100 MB at 1M Gaussians of SH 3, where level 19 would take a minute
TOP_BITS = 2  # bits below a gap's leading one that are entropy-coded with its length
MAX_AXIS_BITS = 21  # 63-bit Morton codes
_U64 = np.uint64


# ---------------------------------------------------------------------------------------------- byte helpers


def varints(values: np.ndarray) -> bytes:
    """LEB128 bytes of non-negative integers (< 2^63), vectorised."""
    v = np.asarray(values, dtype=np.uint64).ravel()
    if not len(v):
        return b""
    lengths = np.ones(len(v), np.int64)
    for k in range(1, 10):
        lengths += v >= (_U64(1) << _U64(7 * k))
    ends = np.cumsum(lengths)
    out = np.empty(int(ends[-1]), np.uint8)
    owner = np.repeat(np.arange(len(v)), lengths)
    byte_no = np.arange(len(out)) - np.repeat(ends - lengths, lengths)
    out[:] = (v[owner] >> (_U64(7) * byte_no.astype(np.uint64))) & _U64(0x7F)
    out[byte_no < lengths[owner] - 1] |= 0x80
    return out.tobytes()


def read_varints(data: bytes, count: int) -> np.ndarray:
    """``count`` LEB128 integers that make up all of ``data`` (uint64)."""
    b = np.frombuffer(data, np.uint8)
    last = np.flatnonzero(b < 0x80)
    if len(last) != count or (count and last[-1] != len(b) - 1) or (not count and len(b)):
        raise ValueError(f"expected {count} varints in {len(b)} bytes")
    starts = np.concatenate([[0], last[:-1] + 1]) if count else last
    lengths = last - starts + 1
    if count and lengths.max() > 9:
        raise ValueError("a varint is longer than 63 bits")
    shift = (np.arange(len(b)) - np.repeat(starts, lengths)).astype(np.uint64) * _U64(7)
    parts = (b.astype(np.uint64) & _U64(0x7F)) << shift
    return np.bitwise_or.reduceat(parts, starts) if count else np.zeros(0, np.uint64)


def zstd(data: bytes, level: int = ZSTD_LEVEL) -> bytes:
    return zstandard.ZstdCompressor(level=level).compress(data)


def unzstd(blob: bytes, limit: int) -> bytes:
    """Decompress one zstd frame of at most ``limit`` bytes (a frame declaring or inflating to more is refused)."""
    try:
        declared = zstandard.frame_content_size(blob)
        if declared > limit:
            raise ValueError(f"zstd frame declares {declared} bytes, more than the {limit} expected")
        return zstandard.ZstdDecompressor().decompress(blob, max_output_size=limit)
    except zstandard.ZstdError as exc:
        raise ValueError(f"corrupt zstd data ({exc})") from None


def take(data: memoryview, at: int, n: int) -> tuple[memoryview, int]:
    """``n`` bytes of ``data`` from ``at`` and the offset after them; ValueError when they are not all there."""
    if n < 0 or at + n > len(data):
        raise ValueError(f"truncated: needs {n} bytes at offset {at}, has {len(data) - at}")
    return data[at : at + n], at + n


def _u32(data: memoryview, at: int) -> tuple[int, int]:
    raw, at = take(data, at, 4)
    return int.from_bytes(raw, "little"), at


# ---------------------------------------------------------------------------------------------- ANS


def _model(counts: np.ndarray):
    return constriction.stream.model.Categorical(counts.astype(np.float64) / counts.sum(), perfect=False)


def _coded(counts: np.ndarray) -> bool:
    """Whether a column with these counts takes any bits (one symbol used, or none: its counts say it all)."""
    return np.count_nonzero(counts) > 1


def ans_encode(columns: list[np.ndarray], counts: list[np.ndarray]) -> bytes:
    """One ANS stream of the symbol columns (column c coded with the model of ``counts[c]``)."""
    coder = constriction.stream.stack.AnsCoder()
    for col, cnt in reversed(list(zip(columns, counts))):  # a stack: encode last what is decoded first
        if _coded(cnt):
            coder.encode_reverse(np.ascontiguousarray(col, dtype=np.int32), _model(cnt))
    return coder.get_compressed().astype("<u4").tobytes()


def ans_decode(words: bytes, counts: list[np.ndarray], n: int) -> list[np.ndarray]:
    """The ``n``-long columns ``ans_encode`` wrote; ValueError when the stream does not end exactly."""
    if len(words) % 4:
        raise ValueError("ANS stream is not a whole number of 32-bit words")
    coder = constriction.stream.stack.AnsCoder(np.frombuffer(words, "<u4").astype(np.uint32))
    out = []
    for cnt in counts:
        if _coded(cnt):
            out.append(coder.decode(_model(cnt), n).astype(np.int64))
        else:
            out.append(np.full(n, int(np.argmax(cnt)) if len(cnt) else 0, np.int64))
    if not coder.is_empty():
        raise ValueError("entropy-coded data does not end where its symbols do (corrupt)")
    return out


# ---------------------------------------------------------------------------------------------- count tables


def encode_sorted_counts(counts: list[np.ndarray]) -> bytes:
    """zstd of the varint differences of each non-increasing, positive count sequence, rarest entry first."""
    parts = [np.diff(np.asarray(c, np.int64)[::-1], prepend=0) for c in counts]
    if any(len(p) and p.min() < 0 for p in parts):
        raise ValueError("counts must be non-increasing")
    return zstd(varints(np.concatenate(parts) if parts else np.zeros(0, np.int64)))


def decode_sorted_counts(blob: bytes, sizes: list[int], total: int) -> list[np.ndarray]:
    """The count sequences of ``encode_sorted_counts`` for alphabets of ``sizes``, each summing to ``total``."""
    n = sum(sizes)
    flat = read_varints(unzstd(blob, 10 * n), n).astype(np.int64)  # a varint is at most 10 bytes
    out, at = [], 0
    for k in sizes:
        part = flat[at : at + k]
        at += k
        if (part > total).any():  # also keeps the sums below from overflowing
            raise ValueError(f"a count table entry exceeds the {total} symbols")
        counts = np.cumsum(part)[::-1] if k else part
        if k and (part[0] < 1 or counts.sum() != total):
            raise ValueError(f"a count table does not add up to {total} symbols of a {k}-entry codebook")
        out.append(counts)
    return out


# ---------------------------------------------------------------------------------------------- SVQ indices


def encode_indices(indices: np.ndarray, sizes: list[int]) -> bytes:
    """Section bytes for (N, S) indices into codebooks of ``sizes`` entries, each sorted by descending use with
    every entry used (``splatpack.io.spk`` prepares them so): count table, then one ANS stream of all columns."""
    counts = [np.bincount(indices[:, s], minlength=k) for s, k in enumerate(sizes)]
    table = encode_sorted_counts(counts)
    return len(table).to_bytes(4, "little") + table + ans_encode(list(indices.T), counts)


def decode_indices(data: bytes, sizes: list[int], n: int) -> np.ndarray:
    view = memoryview(data)
    length, at = _u32(view, 0)
    table, at = take(view, at, length)
    counts = decode_sorted_counts(bytes(table), sizes, n)
    columns = ans_decode(bytes(view[at:]), counts, n)
    return np.stack(columns, axis=1) if columns else np.zeros((n, 0), np.int64)


# ---------------------------------------------------------------------------------------------- Morton codes

# Shift/mask pairs that spread the low 21 bits of an integer to every third bit (bit i goes to bit 3i).
_SPREAD = (
    (32, 0x1F00000000FFFF),
    (16, 0x1F0000FF0000FF),
    (8, 0x100F00F00F00F00F),
    (4, 0x10C30C30C30C30C3),
    (2, 0x1249249249249249),
)


def _spread(v: np.ndarray) -> np.ndarray:
    v = v.astype(np.uint64)
    for shift, mask in _SPREAD:
        v = (v | (v << _U64(shift))) & _U64(mask)
    return v


def _compact(v: np.ndarray) -> np.ndarray:
    """The inverse of ``_spread``: every third bit gathered back into the low 21 bits."""
    masks = [mask for _, mask in reversed(_SPREAD[:-1])] + [0x1FFFFF]
    v = v & _U64(_SPREAD[-1][1])
    for shift, mask in zip((2, 4, 8, 16, 32), masks):
        v = (v | (v >> _U64(shift))) & _U64(mask)
    return v


def morton(cells: np.ndarray) -> np.ndarray:
    """(N,) uint64 Morton codes of (N, 3) integer cells below 2^21: x in bit 3i, y in 3i+1, z in 3i+2."""
    return _spread(cells[:, 0]) | (_spread(cells[:, 1]) << _U64(1)) | (_spread(cells[:, 2]) << _U64(2))


def unmorton(codes: np.ndarray) -> np.ndarray:
    return np.stack([_compact(codes >> _U64(a)) for a in range(3)], axis=1)


# ---------------------------------------------------------------------------------------------- positions


def _bit_length(v: np.ndarray) -> np.ndarray:
    """Bit length of each uint64 (0 for 0), exact (floating-point logarithms round near powers of two)."""
    n = np.zeros(len(v), np.int64)
    for s in (32, 16, 8, 4, 2, 1):
        hit = (v >> (n.astype(np.uint64) + _U64(s))) > 0
        n += hit * s
    return n + (v > 0)


def _symbol_tables(max_length: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """For gap bit lengths 0..max_length: first symbol, entropy-coded bits below the leading one; and per
    symbol its length (the inverse map)."""
    top = np.clip(np.arange(max_length + 1) - 1, 0, TOP_BITS)
    first = np.concatenate([[0], np.cumsum(1 << top)[:-1]])
    length_of = np.repeat(np.arange(max_length + 1), 1 << top)
    return first, top, length_of


def encode_positions(cells: np.ndarray, bits: int) -> bytes:
    """Section bytes for (N, 3) integer cells (``bits`` per axis) already in Morton order (non-decreasing codes):
    count table of the gap symbols, their ANS stream, then the raw low bits grouped by length."""
    codes = morton(cells)
    gaps = np.diff(codes, prepend=_U64(0))
    first, top, _ = _symbol_tables(3 * bits)
    length = _bit_length(gaps)
    t = top[length]
    raw_len = np.maximum(length - 1 - t, 0)
    head = (gaps >> raw_len.astype(np.uint64)) & ((_U64(1) << t.astype(np.uint64)) - _U64(1))
    symbols = first[length] + head.astype(np.int64)
    alphabet = int(first[-1] + (1 << top[-1]))
    counts = np.bincount(symbols, minlength=alphabet)
    table = zstd(varints(counts))
    ans = ans_encode([symbols], [counts])
    raw = _pack_groups(gaps & ((_U64(1) << raw_len.astype(np.uint64)) - _U64(1)), raw_len)
    return b"".join([len(table).to_bytes(4, "little"), table, len(ans).to_bytes(4, "little"), ans, raw])


def decode_positions(data: bytes, n: int, bits: int) -> np.ndarray:
    """The (N, 3) int64 cells ``encode_positions`` wrote; ValueError for anything that does not decode to
    exactly ``n`` non-decreasing codes of ``3 * bits`` bits."""
    view = memoryview(data)
    first, top, length_of = _symbol_tables(3 * bits)
    alphabet = len(length_of)
    size, at = _u32(view, 0)
    table, at = take(view, at, size)
    counts = read_varints(unzstd(bytes(table), 10 * alphabet), alphabet).astype(np.int64)
    if counts.sum() != n or (counts > n).any():
        raise ValueError(f"position symbol counts add up to {counts.sum()}, not {n}")
    size, at = _u32(view, at)
    ans, at = take(view, at, size)
    symbols = ans_decode(bytes(ans), [counts], n)[0]
    length = length_of[symbols]
    t = top[length]
    raw_len = np.maximum(length - 1 - t, 0)
    raw = _unpack_groups(bytes(view[at:]), raw_len)
    head = (symbols - first[length]).astype(np.uint64)
    lead = np.where(length > 0, _U64(1) << np.maximum(length - 1, 0).astype(np.uint64), _U64(0))
    gaps = lead | (head << raw_len.astype(np.uint64)) | raw
    codes = np.cumsum(gaps, dtype=np.uint64)
    if n and (np.any(codes[1:] < codes[:-1]) or int(codes[-1]) >> (3 * bits)):
        raise ValueError(f"position codes overflow {3 * bits} bits")
    return unmorton(codes).astype(np.int64)


_CHUNK = 1 << 18  # rows per step of the bit (un)packing: bounds its temporary arrays to ~16 MB


def _pack_groups(values: np.ndarray, lengths: np.ndarray) -> bytes:
    """The low ``lengths[i]`` bits of each value, MSB first: all values of length 1 (in order), then length 2,
    ...; each group padded to a whole byte."""
    out = []
    for width in range(1, int(lengths.max(initial=0)) + 1):
        group = values[lengths == width]
        if not len(group):
            continue
        parts = []
        for s in range(0, len(group), _CHUNK):
            rows = np.unpackbits(group[s : s + _CHUNK].astype(">u8").view(np.uint8).reshape(-1, 8), axis=1)
            parts.append(rows[:, 64 - width :].ravel())
        out.append(np.packbits(np.concatenate(parts)).tobytes())
    return b"".join(out)


def _unpack_groups(data: bytes, lengths: np.ndarray) -> np.ndarray:
    values = np.zeros(len(lengths), np.uint64)
    buf, at = np.frombuffer(data, np.uint8), 0
    for width in range(1, int(lengths.max(initial=0)) + 1):
        where = np.flatnonzero(lengths == width)
        if not len(where):
            continue
        size = (len(where) * width + 7) // 8
        if at + size > len(buf):
            raise ValueError(f"truncated: raw position bits need {size} bytes at offset {at}, have {len(buf) - at}")
        bitstream = np.unpackbits(buf[at : at + size])
        at += size
        for s in range(0, len(where), _CHUNK):
            rows = bitstream[s * width : (s + min(_CHUNK, len(where) - s)) * width].reshape(-1, width)
            padded = np.zeros((len(rows), 64), np.uint8)
            padded[:, 64 - width :] = rows
            values[where[s : s + len(rows)]] = np.packbits(padded, axis=1).view(">u8").ravel()
    if at != len(buf):
        raise ValueError(f"{len(buf) - at} bytes after the raw position bits")
    return values
