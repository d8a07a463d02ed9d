"""UUIDs as numpy arrays: the lower-case hex form the event store keys aggregates by, for many at once."""

from __future__ import annotations

import numpy as np

_HEX = np.frombuffer(b"0123456789abcdef", dtype=np.uint8)


def uuid_hex(raw: np.ndarray) -> np.ndarray:
    """Lower-case hex (``S32``) of UUIDs given as an (n, 16) uint8 array."""
    raw = np.asarray(raw, dtype=np.uint8).reshape(-1, 16)
    out = np.empty((len(raw), 32), dtype=np.uint8)
    out[:, 0::2] = _HEX[raw >> 4]
    out[:, 1::2] = _HEX[raw & 15]
    return out.view("S32").ravel()
