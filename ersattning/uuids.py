"""UUIDs as numpy arrays: the lower-case hex form the event store keys aggregates by, for many at once."""

from __future__ import annotations

import numpy as np

_HEX = np.frombuffer(b"0123456789abcdef", dtype=np.uint8)
_PAIRS = np.stack([_HEX[np.arange(256) >> 4], _HEX[np.arange(256) & 15]], axis=1).copy().view("<u2").ravel()  # byte → its two hex digits


def uuid_hex(raw: np.ndarray) -> np.ndarray:
    """Lower-case hex (``S32``) of UUIDs given as an (n, 16) uint8 array (one table look-up a byte)."""
    raw = np.asarray(raw, dtype=np.uint8).reshape(-1, 16)
    return _PAIRS[raw].view("S32").ravel()
