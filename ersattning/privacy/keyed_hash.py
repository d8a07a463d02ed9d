"""SipHash over Arrow strings, vectorised with numpy.

Bit-identical to ``pandas.util.hash_array`` with a hash key, but without a Python
string per value: the keyed ids of millions of source keys are computed on the
Arrow buffers directly.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import pandas as pd
import pyarrow as pa

# --------------------------------------------------------------------------- SipHash over Arrow strings

_SIP_IV = tuple(np.uint64(c) for c in (0x736F6D6570736575, 0x646F72616E646F6D, 0x6C7967656E657261, 0x7465646279746573))
_PANDAS_MIX = ((30, np.uint64(0xBF58476D1CE4E5B9)), (27, np.uint64(0x94D049BB133111EB)))
# Rows per block: a block's temporaries stay small (no fresh pages per array) and its SipHash state stays in cache.
_BLOCK_ROWS = 16384
# Words 1-8 (rows up to 64 bytes) are always hashed vectorized; a further word only if _FEW_LONG_ROWS rows of a block reach it.
_ALWAYS_VECTOR_WORDS = 8
_FEW_LONG_ROWS = 64


def _rotl(x: np.ndarray, bits: int, tmp: np.ndarray) -> None:
    """Rotate ``x`` left by ``bits`` in place (``tmp``: scratch of the same shape, so nothing is allocated)."""
    np.left_shift(x, bits, out=tmp)
    x >>= 64 - bits
    x |= tmp


def _sip_rounds(v0: np.ndarray, v1: np.ndarray, v2: np.ndarray, v3: np.ndarray, tmp: np.ndarray, rounds: int) -> None:
    """SipRound on every row at once, in place; uint64 addition wraps around as SipHash wants."""
    for _ in range(rounds):
        v0 += v1
        _rotl(v1, 13, tmp)
        v1 ^= v0
        _rotl(v0, 32, tmp)
        v2 += v3
        _rotl(v3, 16, tmp)
        v3 ^= v2
        v0 += v3
        _rotl(v3, 21, tmp)
        v3 ^= v0
        v2 += v1
        _rotl(v1, 17, tmp)
        v1 ^= v2
        _rotl(v2, 32, tmp)


def _vector_words(full: np.ndarray, few_long_rows: int) -> int:
    """How many whole words to hash vectorized: the first 8, and each further one that ``few_long_rows`` rows reach."""
    most = int(full.max())
    if few_long_rows <= 0 or most <= _ALWAYS_VECTOR_WORDS:
        return most
    longer = full[full > _ALWAYS_VECTOR_WORDS]
    if len(longer) < few_long_rows:
        return _ALWAYS_VECTOR_WORDS
    return int(np.sort(longer)[len(longer) - few_long_rows])  # the few_long_rows-th longest


def _tail_blocks(words: np.ndarray, starts: np.ndarray, lens: np.ndarray) -> np.ndarray:
    """Each row's last SipHash block: the 0..7 bytes after its whole words, and the length's low byte on top."""
    pos = starts + (lens & ~7)
    last = len(words) - 1
    if pos.max() <= last:
        tail = words[pos]
    else:  # the 8 bytes from pos run past the end of the buffer: read the buffer's last 8 instead and shift
        read = np.minimum(pos, last)
        tail = words[read]
        tail >>= ((pos - read) << 3).astype(np.uint64)
    lens = lens.astype(np.int64)
    tail &= ((1 << ((lens & 7) << 3)) - 1).view(np.uint64)
    tail |= (lens << 56).view(np.uint64)
    return tail


def _even_blocks(words: np.ndarray, start: int, length: int, rows: int) -> tuple[list[np.ndarray], np.ndarray] | None:
    """Messages and tail blocks of ``rows`` rows of ``length`` > 0 bytes each from byte ``start``: evenly spaced
    words, read by strided copies, several times cheaper than gathers. None if a read would pass the buffer's end."""
    messages = [words[start + 8 * w :: length][:rows].copy() for w in range(length >> 3)]
    rest = length & 7
    top = np.uint64((length & 0xFF) << 56)
    if not rest:
        return messages, np.full(rows, top)
    tail = words[start + length - rest :: length][:rows].copy()
    if len(tail) < rows:
        return None
    tail &= np.uint64((1 << (rest << 3)) - 1)
    tail |= top
    return messages, tail


def _siphash_block(messages: list[np.ndarray], tail: np.ndarray, keys: np.ndarray, state: np.ndarray) -> np.ndarray:
    """SipHash-2-4 and pandas' mix of one block of rows, longest first (``messages[w]``: word w of the rows that
    have it, a prefix), under each key (``keys``: k0, k1 per key) at once, one row of the (keys, rows) result per key;
    the result is a view into ``state``, the (5, keys, rows) scratch."""
    v0, v1, v2, v3, tmp = state[:, :, : len(tail)]
    for v, k, iv in zip((v0, v1, v2, v3), (0, 1, 0, 1), _SIP_IV, strict=True):
        v[:] = (keys[:, k] ^ iv)[:, None]
    for message in messages:
        k = len(message)
        a0, a1, a2, a3, t = v0[:, :k], v1[:, :k], v2[:, :k], v3[:, :k], tmp[:, :k]
        a3 ^= message
        _sip_rounds(a0, a1, a2, a3, t, 2)
        a0 ^= message
    v3 ^= tail
    _sip_rounds(v0, v1, v2, v3, tmp, 2)
    v0 ^= tail
    v2 ^= np.uint64(0xFF)
    _sip_rounds(v0, v1, v2, v3, tmp, 4)
    v0 ^= v1
    v0 ^= v2
    v0 ^= v3
    for shift, factor in _PANDAS_MIX:  # pandas' fixed bijective mix after the hash
        np.right_shift(v0, shift, out=tmp)
        v0 ^= tmp
        v0 *= factor
    np.right_shift(v0, 31, out=tmp)
    v0 ^= tmp
    return v0


def hash_arrow_strings(values: pa.Array | pa.ChunkedArray, hash_key: str, *, few_long_rows: int = _FEW_LONG_ROWS) -> np.ndarray:
    """``pd.util.hash_array(values.to_numpy(zero_copy_only=False), encoding="utf8", hash_key=hash_key,
    categorize=False)``, bit for bit (``uint64``), without making a Python string per row.

    Reads the Arrow offsets and bytes in place: SipHash-2-4 of each row's
    UTF-8 bytes runs on all rows at once, one 8-byte little-endian word index
    at a time (rows ordered longest first, so the rows still going are a
    prefix), then pandas' fixed 64-bit mix. ``values``: a ``string`` or
    ``large_string`` array, sliced or chunked, without nulls. A word past the
    8th that fewer than ``few_long_rows`` rows of a block reach is not looped
    over: those few long rows are hashed by pandas from their bytes, cheaper
    than a Python-level step per word.
    """
    return hash_arrow_strings_under_keys(values, (hash_key,), few_long_rows)[0]


def hash_arrow_strings_under_keys(
    values: pa.Array | pa.ChunkedArray, hash_keys: Sequence[str], few_long_rows: int = _FEW_LONG_ROWS
) -> list[np.ndarray]:
    """:func:`hash_arrow_strings` under several keys, reading and ordering the words only once."""
    if isinstance(values, pa.ChunkedArray):
        values = values.combine_chunks()
    if not (pa.types.is_string(values.type) or pa.types.is_large_string(values.type)):
        raise TypeError(f"expected an Arrow string or large_string array, got {values.type}")
    if values.null_count:
        raise ValueError("cannot hash a null string")
    raw_keys = [hash_key.encode("utf8") for hash_key in hash_keys]
    for raw in raw_keys:
        if len(raw) != 16:  # as pandas
            raise ValueError(f"key should be a 16-byte string encoded, got {len(raw)} bytes")
    keys = np.frombuffer(b"".join(raw_keys), "<u8").reshape(-1, 2)  # k0, k1 of each key
    n = len(values)
    outs = [np.empty(n, np.uint64) for _ in hash_keys]
    if n == 0:
        return outs

    _, offsets_buf, data_buf = values.buffers()
    offset_type = np.dtype(np.int32 if pa.types.is_string(values.type) else np.int64)
    offsets = np.frombuffer(offsets_buf, offset_type, count=n + 1, offset=values.offset * offset_type.itemsize)
    data = np.frombuffer(data_buf, np.uint8) if data_buf is not None else np.empty(0, np.uint8)
    if len(data) < 8:
        data = np.concatenate([data, np.zeros(8 - len(data), np.uint8)])
    words = np.ndarray((len(data) - 7,), dtype="<u8", buffer=data, strides=(1,))  # the 8 bytes from each position

    # Block by block, so that temporaries stay small and the state stays in cache.
    state = np.empty((5, len(keys), min(n, _BLOCK_ROWS)), np.uint64)
    long_rows = []
    with np.errstate(over="ignore"):
        for i in range(0, n, _BLOCK_ROWS):
            block = offsets[i : i + _BLOCK_ROWS + 1]
            starts = block[:-1].astype(np.int64)
            lens = np.diff(block)
            full = lens >> 3  # whole 8-byte words per row
            vector_words = _vector_words(full, few_long_rows)
            if vector_words < full.max():
                long_rows.append(np.flatnonzero(full > vector_words) + i)
            rows: slice | np.ndarray = slice(i, i + len(lens))
            even = None
            length = int(lens[0])
            if 0 < length < 8 * (vector_words + 1) and lens.min() == lens.max():
                even = _even_blocks(words, int(starts[0]), length, len(lens))
            if even is not None:
                messages, tail = even
            else:
                capped = np.minimum(full, vector_words).astype(np.min_scalar_type(vector_words))
                active = len(lens) - np.cumsum(np.bincount(capped))  # active[w]: rows with more than w whole words
                if capped.min() != capped.max():
                    # Longest rows first, so the rows still going at word w are a prefix.
                    order = np.argsort(capped, kind="stable")[::-1]
                    starts, lens, rows = starts[order], lens[order], order + i
                messages = [words[starts[:k] + 8 * w] for w, k in enumerate(active[:vector_words].tolist())]
                tail = _tail_blocks(words, starts, lens)
            for out, hashed in zip(outs, _siphash_block(messages, tail, keys, state), strict=True):
                out[rows] = hashed

    if long_rows:  # redone by pandas from their bytes
        at = np.concatenate(long_rows)
        blobs = np.empty(len(at), dtype=object)
        blobs[:] = [data[s:e].tobytes() for s, e in zip(offsets[at].tolist(), offsets[at + 1].tolist(), strict=True)]
        for hash_key, out in zip(hash_keys, outs, strict=True):
            out[at] = pd.util.hash_array(blobs, encoding="utf8", hash_key=hash_key, categorize=False)
    return outs
