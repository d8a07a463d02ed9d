"""Keyed visit ids: a visit's aggregate id from its source key, hashed with the pseudonym key.

Used by the import (so a row imported twice is one aggregate) and by ``explain`` (so a user can name a
visit by the source's own id); neither the key nor the id itself is ever stored.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import pyarrow as pa

from ersattning.privacy.pseudonymiser import Pseudonymiser
from ersattning.uuids import uuid_hex


def visit_ids(pseudonymiser: Pseudonymiser, source_keys: np.ndarray | pd.Series | pa.Array) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Deterministic, keyed visit ids from source keys: (hex S32, hi, lo), version-4-style UUIDs, vectorized.

    The source key may hold a recipient's id (recipient + planned start +
    category when the file has no visit id), so it is hashed with the
    pseudonym key (a key derived for visit ids), never plainly.
    """
    hi, lo = pseudonymiser.keyed_ids(source_keys, "visit")
    hi = (hi & ~np.uint64(0xF000)) | np.uint64(0x4000)  # byte 6: version 4
    lo = (lo & ~np.uint64(0xC0 << 56)) | np.uint64(0x80 << 56)  # byte 8: RFC 4122 variant
    raw = np.empty((len(hi), 2), dtype=">u8")
    raw[:, 0], raw[:, 1] = hi, lo
    return uuid_hex(raw.view(np.uint8).reshape(-1, 16)), hi, lo
