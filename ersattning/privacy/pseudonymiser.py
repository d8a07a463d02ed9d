"""Keyed pseudonyms for people.

The store holds pseudonyms only. Recipient and staff identities are replaced at
import by a keyed hash (HMAC-SHA256, truncated), so the same person always gets the
same pseudonym and joins still work, yet nobody holding the store alone can
recompute or reverse one.
"""

from __future__ import annotations

import hashlib
import hmac
from collections.abc import Sequence
from typing import Any

import numpy as np
import pandas as pd
import pyarrow as pa

from ersattning.privacy.keyed_hash import hash_arrow_strings_under_keys
from ersattning.privacy.keys import MIN_KEY_BYTES

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

    __slots__ = ("_key", "_mac", "_sip", "length")

    def __init__(self, key: bytes, length: int = 16) -> None:
        if not isinstance(key, (bytes, bytearray)):
            raise TypeError(f"key must be bytes, not {type(key).__name__}")
        if len(key) < MIN_KEY_BYTES:
            raise ValueError(f"key must be at least {MIN_KEY_BYTES} bytes, got {len(key)}")
        if not 1 <= length <= hashlib.sha256().digest_size:
            raise ValueError(f"length must be between 1 and 32 bytes, got {length}")
        self.length = length
        self._key = bytes(key)
        self._mac = hmac.new(self._key, digestmod=hashlib.sha256)  # keyed template, for derived keys
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
        return hmac.digest(self._key, text.strip().encode("utf-8"), "sha256")[: self.length].hex()  # OpenSSL's one-shot HMAC

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
        key, length, digest = self._key, self.length, hmac.digest
        hashed[:-1] = [
            None if _is_missing(u) else digest(key, (u if isinstance(u, str) else str(u)).strip().encode("utf-8"), "sha256")[:length].hex()
            for u in uniques
        ]  # as one() does, without a call per value
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
            hi, lo = hash_arrow_strings_under_keys(values, keys)
            return hi, lo
        data = np.asarray(values.array if isinstance(values, pd.Series) else values, dtype=object)
        if len(data) and pd.isna(data).any():
            raise ValueError("cannot make an id of a missing value")
        hi = pd.util.hash_array(data, encoding="utf8", hash_key=keys[0], categorize=False)
        lo = pd.util.hash_array(data, encoding="utf8", hash_key=keys[1], categorize=False)
        return hi, lo
