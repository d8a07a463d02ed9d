"""Keyed ids of one import: visit ids from source keys, recipient ids from pseudonyms.

A visit's aggregate id is a keyed hash of its source key, so a row imported twice
maps to the same aggregate (imports are idempotent) and nobody without the key can
recompute an id from a source value.
"""


from __future__ import annotations

import hashlib

import numpy as np
import pandas as pd

from ersattning.domain import ID_NAMESPACE
from ersattning.ingest.cells import Coded
from ersattning.privacy import Pseudonymiser

_NAMESPACE = ID_NAMESPACE.bytes


def _uuid5_hex(name: str) -> str:
    """``uuid5(ID_NAMESPACE, name).hex`` without building UUID objects (the same bits: SHA-1, version 5, RFC 4122 variant)."""
    raw = bytearray(hashlib.sha1(_NAMESPACE + name.encode("utf-8")).digest()[:16])
    raw[6] = (raw[6] & 0x0F) | 0x50
    raw[8] = (raw[8] & 0x3F) | 0x80
    return raw.hex()


class ImportIds:
    """Pseudonyms and recipient ids of one import, each distinct source value hashed once for all chunks
    (the caches hold one entry per person, not per row)."""

    def __init__(self, pseudonymiser: Pseudonymiser) -> None:
        self.p = pseudonymiser
        self._pseudonyms: dict[str, str] = {}
        self._recipient_ids: dict[str, str] = {}

    def _coded(self, values: pd.Series) -> tuple[np.ndarray, list[str]]:
        """Codes into the distinct values (-1 for missing) and the pseudonym of each distinct value."""
        codes, uniques = pd.factorize(values.to_numpy(dtype=object), use_na_sentinel=True)
        return codes, self._of(uniques.tolist())

    def _of(self, uniques: list[str]) -> list[str]:
        """The pseudonym of each distinct value (None for a blank one), each hashed once per import."""
        cache = self._pseudonyms
        missing = [u for u in uniques if u not in cache]
        if missing:
            cache.update(zip(missing, self.p.many(np.array(missing, dtype=object)).tolist(), strict=True))
        return [cache[u] for u in uniques]

    def pseudonyms(self, values: pd.Series) -> np.ndarray:
        codes, pseudonyms = self._coded(values)
        return np.array(pseudonyms + [None], dtype=object)[codes]

    def pseudonyms_coded(self, cells: Coded) -> Coded:
        """The pseudonyms of coded cells, coded (empty for a missing or blank value)."""
        return cells.remapped(np.array(self._of(cells.uniques.tolist()), dtype=object))

    def recipient_ids_coded(self, cells: Coded) -> pd.Categorical:
        """:meth:`recipient_ids` of coded cells."""
        return self._recipient_ids_of(cells.codes, self._of(cells.uniques.tolist()))

    def recipient_ids(self, cells: pd.Series) -> pd.Categorical:
        """The recipient aggregate's id (hex) of each cell's pseudonym, as codes into the distinct ids
        (NaN for a missing recipient): one hash per distinct recipient, not per row."""
        return self._recipient_ids_of(*self._coded(cells))

    def _recipient_ids_of(self, codes: np.ndarray, pseudonyms: list[str]) -> pd.Categorical:
        out = []
        for pseudonym in pseudonyms:
            got = self._recipient_ids.get(pseudonym)
            if got is None:
                got = self._recipient_ids[pseudonym] = _uuid5_hex("recipient:" + pseudonym)
            out.append(got)
        if len(set(out)) < len(out):  # two spellings of one person: the same pseudonym
            return pd.Categorical(np.array(out + [None], dtype=object)[codes])
        return pd.Categorical.from_codes(codes, pd.Index(out, dtype=object))
