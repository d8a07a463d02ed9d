"""Keyed pseudonyms for people, and a guard against personal identity numbers.

Personal data rules: the store holds pseudonyms only. Recipient and staff
identities are replaced at import by a keyed hash (HMAC-SHA256, truncated), so
the same person always gets the same pseudonym and joins still work, yet
nobody holding the store alone can recompute or reverse one. The key lives
outside the store (an environment variable or a private key file), so a copy
of the store is not a copy of the key.

Swedish personal identity numbers (personnummer, samordningsnummer) must never
reach the store in clear; :func:`find_personnummer` and
:func:`personnummer_columns` find them, even hidden in free text.
"""

from __future__ import annotations

import calendar
import hashlib
import hmac
import os
import re
import secrets
import stat
import time
from collections.abc import Sequence
from typing import Any

import numpy as np
import pandas as pd
import pyarrow as pa

__all__ = [
    "DEFAULT_KEY_FILE",
    "ENV_KEY",
    "ENV_KEY_FILE",
    "PNR_PATTERN",
    "PseudonymKeyError",
    "Pseudonymiser",
    "find_personnummer",
    "hash_arrow_strings",
    "is_personnummer",
    "load_key",
    "personnummer_columns",
]

ENV_KEY = "ERSATTNING_PSEUDONYM_KEY"
ENV_KEY_FILE = "ERSATTNING_PSEUDONYM_KEY_FILE"
DEFAULT_KEY_FILE = "~/.config/ersattning/pseudonym.key"

MIN_KEY_BYTES = 16
_HEX_KEY = re.compile(r"[0-9a-fA-F]{64}")
# How long to wait for a key file another process has just created but not yet written.
_RACE_WAIT_SECONDS = 2.0


class PseudonymKeyError(Exception):
    """A problem with the pseudonym key that the user can fix; the message names the file or variable."""


# --------------------------------------------------------------------------- key


def load_key(key_file: str | os.PathLike[str] | None = None, *, create: bool = True) -> bytes:
    """The secret key for pseudonyms, kept outside the store.

    Order: the environment variable ``ERSATTNING_PSEUDONYM_KEY`` (its UTF-8
    bytes, at least 16); else the key file (``key_file``, else
    ``ERSATTNING_PSEUDONYM_KEY_FILE``, else ``~/.config/ersattning/pseudonym.key``),
    which must be private (no group/other permissions) and hold 64 hex
    characters. A missing file is created with a fresh random key when
    ``create`` is true: losing or changing the key changes every pseudonym.
    """
    env_key = os.environ.get(ENV_KEY)
    if env_key:
        key = env_key.encode("utf-8")
        if len(key) < MIN_KEY_BYTES:
            raise PseudonymKeyError(
                f"environment variable {ENV_KEY} is too short: {len(key)} bytes, need at least {MIN_KEY_BYTES}"
            )
        return key

    if key_file is None:
        key_file = os.environ.get(ENV_KEY_FILE) or DEFAULT_KEY_FILE
    path = os.path.expanduser(os.fspath(key_file))

    if os.path.exists(path):
        return _read_key_file(path)
    if not create:
        raise PseudonymKeyError(
            f"pseudonym key file {path} does not exist; create it, set {ENV_KEY_FILE} to another file, or set {ENV_KEY}"
        )
    return _create_key_file(path)


def _create_key_file(path: str) -> bytes:
    """Create the key file atomically (O_EXCL, mode 0600); if another process won the race, read its key."""
    parent = os.path.dirname(path)
    try:
        if parent:
            os.makedirs(parent, mode=0o700, exist_ok=True)
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError:
        return _read_key_file(path, wait_for_content=True)
    except OSError as exc:
        raise PseudonymKeyError(f"cannot create pseudonym key file {path}: {exc.strerror or exc}") from exc

    key_hex = secrets.token_hex(32)
    try:
        data = (key_hex + "\n").encode("ascii")
        while data:
            data = data[os.write(fd, data) :]
        os.fsync(fd)  # a key lost in a crash would silently change every pseudonym
    except OSError as exc:
        os.close(fd)
        _unlink_quietly(path)  # never leave an empty or partial key behind
        raise PseudonymKeyError(f"cannot write pseudonym key file {path}: {exc.strerror or exc}") from exc
    os.close(fd)
    return bytes.fromhex(key_hex)


def _unlink_quietly(path: str) -> None:
    try:
        os.unlink(path)
    except OSError:
        pass


def _read_key_file(path: str, *, wait_for_content: bool = False) -> bytes:
    """Read and check a key file; permissions are checked on the open descriptor, not the name."""
    deadline = time.monotonic() + (_RACE_WAIT_SECONDS if wait_for_content else 0.0)
    while True:
        try:
            fd = os.open(path, os.O_RDONLY)
        except OSError as exc:
            raise PseudonymKeyError(f"cannot open pseudonym key file {path}: {exc.strerror or exc}") from exc
        try:
            st = os.fstat(fd)
            if not stat.S_ISREG(st.st_mode):
                raise PseudonymKeyError(f"pseudonym key file {path} is not a regular file")
            mode = stat.S_IMODE(st.st_mode)
            if os.name == "posix" and mode & 0o077:
                raise PseudonymKeyError(
                    f"pseudonym key file {path} is readable by others (mode {mode:04o}); make it private with: chmod 600 {path}"
                )
            raw = b""
            while chunk := os.read(fd, 4096):
                raw += chunk
                if len(raw) > 4096:  # a key file is 65 bytes; do not slurp a wrong, huge file
                    break
        except OSError as exc:
            raise PseudonymKeyError(f"cannot read pseudonym key file {path}: {exc.strerror or exc}") from exc
        finally:
            os.close(fd)
        if raw or time.monotonic() >= deadline:
            break
        time.sleep(0.02)  # created by a concurrent process that has not written it yet

    text = raw.decode("ascii", errors="replace").strip()
    if not _HEX_KEY.fullmatch(text):
        # Never echo the content: it may be a real secret in the wrong format.
        raise PseudonymKeyError(
            f"pseudonym key file {path} is malformed: expected 64 hexadecimal characters "
            f"(e.g. from `python -c 'import secrets; print(secrets.token_hex(32))'`)"
        )
    return bytes.fromhex(text)


# --------------------------------------------------------------------------- pseudonyms


def _is_missing(value: Any) -> bool:
    if value is None:
        return True
    if isinstance(value, str):
        return not value.strip()
    try:
        return bool(pd.isna(value))
    except (TypeError, ValueError):  # array-like values are not "missing"
        return False


class Pseudonymiser:
    """Turns identities into stable keyed pseudonyms: truncated HMAC-SHA256, hex.

    Keyed, not a plain hash, because identity numbers are few enough to hash
    them all and look the result up; without the key that is impossible.
    Values are stripped first so ``" R-1 "`` and ``"R-1"`` are one person;
    non-strings are hashed as ``str(value)``.
    """

    __slots__ = ("_mac", "_sip", "length")

    def __init__(self, key: bytes, length: int = 16) -> None:
        if not isinstance(key, (bytes, bytearray)):
            raise TypeError(f"key must be bytes, not {type(key).__name__}")
        if len(key) < MIN_KEY_BYTES:
            raise ValueError(f"key must be at least {MIN_KEY_BYTES} bytes, got {len(key)}")
        if not 1 <= length <= hashlib.sha256().digest_size:
            raise ValueError(f"length must be between 1 and 32 bytes, got {length}")
        self.length = length
        self._mac = hmac.new(bytes(key), digestmod=hashlib.sha256)  # keyed template, copied per value
        self._sip: dict[str, tuple[str, str]] = {}

    def __repr__(self) -> str:  # never show the key
        return f"Pseudonymiser(length={self.length})"

    def one(self, value: str) -> str:
        """The pseudonym of one identity: 2*length hex characters, the same for the same input.

        A blank value is refused: giving it a pseudonym would merge every
        unknown person into one.
        """
        if _is_missing(value):
            raise ValueError("cannot pseudonymise a missing or blank value")
        text = value if isinstance(value, str) else str(value)
        mac = self._mac.copy()
        mac.update(text.strip().encode("utf-8"))
        return mac.digest()[: self.length].hex()

    def many(self, values: pd.Series | np.ndarray | Sequence[Any]) -> np.ndarray:
        """Pseudonyms for a column, hashing each distinct value once; missing (None/NaN/blank) stays None."""
        if isinstance(values, pd.Series):
            data: Any = values.array
        elif isinstance(values, np.ndarray):
            if values.ndim != 1:
                raise ValueError(f"expected a 1-dimensional array, got {values.ndim} dimensions")
            data = values
        else:
            data = np.empty(len(values), dtype=object)
            data[:] = list(values)
        codes, uniques = pd.factorize(data, use_na_sentinel=True)
        # One slot per distinct value plus a trailing None, which code -1 (missing) picks.
        hashed = np.empty(len(uniques) + 1, dtype=object)
        hashed[:-1] = [None if _is_missing(u) else self.one(u) for u in uniques]
        hashed[-1] = None
        return hashed[codes]


    def keyed_ids(
        self, values: np.ndarray | pd.Series | pa.Array | pa.ChunkedArray, purpose: str
    ) -> tuple[np.ndarray, np.ndarray]:
        """Keyed 128-bit ids of many strings at once, as (hi, lo) ``uint64`` halves.

        For ids that are unique per row (a visit's source key), where a
        per-value HMAC costs ~6 µs each: SipHash-2-4 — a keyed pseudo-random
        function made for short inputs — under two 112-bit keys derived from
        the pseudonym key for ``purpose``, run by pandas' C code over the whole
        column (``pandas.util.hash_array``, followed by its fixed bijective
        64-bit mix). An Arrow ``string``/``large_string`` array (or chunked
        array) is hashed in place by :func:`hash_arrow_strings`, with the same
        ids and no Python string per row. Without the key an id cannot be
        recomputed from a guessed source key. The same strings give the same
        ids in every run; a test pins the output against a pure-Python SipHash
        so a library change cannot silently change stored ids.
        """
        keys = self._sip.get(purpose)
        if keys is None:
            derived = []
            for half in ("hi", "lo"):
                mac = self._mac.copy()
                mac.update(f"siphash-key:{purpose}:{half}".encode())
                # hash_array takes the key as 16 characters encoded in UTF-8: 7 bits of each byte, ASCII
                derived.append("".join(chr(b & 0x7F) for b in mac.digest()[:16]))
            keys = self._sip[purpose] = (derived[0], derived[1])
        if isinstance(values, (pa.Array, pa.ChunkedArray)):
            if values.null_count:
                raise ValueError("cannot make an id of a missing value")
            hi, lo = _hash_arrow_strings(values, keys)
            return hi, lo
        data = np.asarray(values.array if isinstance(values, pd.Series) else values, dtype=object)
        if len(data) and pd.isna(data).any():
            raise ValueError("cannot make an id of a missing value")
        hi = pd.util.hash_array(data, encoding="utf8", hash_key=keys[0], categorize=False)
        lo = pd.util.hash_array(data, encoding="utf8", hash_key=keys[1], categorize=False)
        return hi, lo


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
    return _hash_arrow_strings(values, (hash_key,), few_long_rows)[0]


def _hash_arrow_strings(
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


# --------------------------------------------------------------------------- personnummer

PNR_PATTERN: re.Pattern[str] = re.compile(r"(?<!\d)(?P<pnr>(?:\d{2})?\d{6}[-+]?\d{4})(?!\d)")
"""A candidate personnummer/samordningsnummer: YYMMDDNNNC or YYYYMMDDNNNC, optional '-'/'+' before the last four digits."""

_CENTURIES = (18, 19, 20)


def _luhn_ok(ten: str) -> bool:
    total = 0
    for i, ch in enumerate(ten):
        product = int(ch) * (2 if i % 2 == 0 else 1)
        total += product // 10 + product % 10
    return total % 10 == 0


def _date_ok(digits: str) -> bool:
    """Month 01-12 and a day that exists, where day+60 marks a samordningsnummer."""
    if len(digits) == 12:
        if int(digits[:2]) not in _CENTURIES:
            return False
        years = [int(digits[:4])]
        rest = digits[4:]
    else:
        yy = int(digits[:2])
        years = [c * 100 + yy for c in _CENTURIES]
        rest = digits
    month, day = int(rest[2:4]), int(rest[4:6])
    if day > 60:
        day -= 60
    if not 1 <= month <= 12 or day < 1:
        return False
    return any(day <= calendar.monthrange(year, month)[1] for year in years)


def is_personnummer(text: str) -> bool:
    """Whether ``text`` as a whole is a valid personnummer or samordningsnummer (date and Luhn check digit)."""
    if not isinstance(text, str):
        return False
    text = text.strip()
    if not PNR_PATTERN.fullmatch(text):
        return False
    digits = text.replace("-", "").replace("+", "")
    return _date_ok(digits) and _luhn_ok(digits[-10:])


def find_personnummer(values: pd.Series) -> np.ndarray:
    """True where the value (as a string) contains a valid personnummer anywhere, e.g. in a free-text note.

    The regular expression runs once per distinct value and the date/Luhn
    check once per distinct candidate, so long repetitive columns stay cheap.
    """
    series = values if isinstance(values, pd.Series) else pd.Series(values, dtype=object)
    result = np.zeros(len(series), dtype=bool)
    codes, uniques = pd.factorize(series.array, use_na_sentinel=True)
    if len(uniques) == 0:
        return result
    texts = pd.Series(np.asarray(uniques, dtype=object)).astype("string")
    # a cheap vectorized screen first: only values with ten digits in a row (allowing one separator) can hold one
    maybe = texts.str.contains(r"\d{6}[-+]?\d{4}", regex=True).fillna(False).to_numpy(dtype=bool)
    if not maybe.any():
        return result
    found = texts[maybe].str.extractall(PNR_PATTERN)["pnr"]
    if found.empty:
        return result
    cand_codes, candidates = pd.factorize(found.array)
    valid = np.fromiter((is_personnummer(c) for c in candidates), dtype=bool, count=len(candidates))
    rows = np.asarray(found.index.get_level_values(0))[valid[cand_codes]]
    unique_hit = np.zeros(len(uniques), dtype=bool)
    unique_hit[rows] = True
    present = codes >= 0
    result[present] = unique_hit[codes[present]]
    return result


def _may_hold_text(dtype: Any) -> bool:
    # Integers too: a spreadsheet turns 191212121212 into a number, and it is still a personnummer.
    return (
        pd.api.types.is_object_dtype(dtype)
        or pd.api.types.is_string_dtype(dtype)
        or isinstance(dtype, pd.CategoricalDtype)
        or (pd.api.types.is_integer_dtype(dtype) and not pd.api.types.is_bool_dtype(dtype))
    )


def personnummer_columns(frame: pd.DataFrame) -> list[str]:
    """Names of text-like (and integer) columns holding a valid personnummer somewhere: these must not be stored."""
    names: list[str] = []
    for i, name in enumerate(frame.columns):
        column = frame.iloc[:, i]
        if _may_hold_text(column.dtype) and find_personnummer(column).any() and name not in names:
            names.append(name)
    return names
