"""Exact sums of float64 arrays, vectorised, that add up across partitions.

A float sum depends on the order of its terms; a comparison settled partition by
partition must give the same öre as one settled in one piece, so the region's
totals are exact: every float64 is an integer mantissa times a power of two, the
mantissas are summed per exponent in int64-exact float bins, and the per-exponent
sums become one Python integer (the sum scaled by 2**1074). Adding two such sums
is exact, and ``float()`` rounds once, correctly (docs/ARCHITECTURE.md).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

_SHIFT = 1074 + 52  # the smallest subnormal is 2**-1074; mantissas are taken as 53-bit integers
_SCALE = 1 << _SHIFT
_CHUNK = 1 << 24  # terms per pass: 2**24 × 2**27 stays below 2**53, so bin sums of the mantissa halves are exact


@dataclass(frozen=True)
class ExactSum:
    """A sum of floats held exactly (``scaled`` / 2**SHIFT), non-finite terms (NaN, ±inf) aside in ``special``."""

    scaled: int = 0
    special: float = 0.0

    def __add__(self, other: ExactSum) -> ExactSum:
        return ExactSum(self.scaled + other.scaled, self.special + other.special)

    def __float__(self) -> float:
        if self.special != 0.0 or np.isnan(self.special):
            return float(self.special)
        return self.scaled / _SCALE


def _parts(values: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """The finite terms as (exponent index ≥ 0, signed high and low mantissa halves); the mask of finite terms."""
    finite = np.isfinite(values)
    v = values[finite] if not finite.all() else values
    mant, exp = np.frexp(v)  # v = mant × 2**exp, 0.5 ≤ |mant| < 1
    m = np.ldexp(mant, 53).astype(np.int64)  # exact: a 53-bit integer
    e = exp.astype(np.int64) - 53 + _SHIFT  # v = m × 2**(e - SHIFT), e ≥ 0
    hi = (m >> 26).astype(np.float64)  # arithmetic shift keeps the sign: m = hi × 2**26 + lo, 0 ≤ lo < 2**26
    lo = (m & ((1 << 26) - 1)).astype(np.float64)
    return e, hi, lo, finite


def exact_sum(values: np.ndarray) -> ExactSum:
    """The exact sum of ``values`` (any float array)."""
    values = np.asarray(values, dtype=np.float64).ravel()
    out = ExactSum()
    for start in range(0, max(len(values), 1), _CHUNK):
        chunk = values[start : start + _CHUNK]
        if not len(chunk):
            break
        e, hi, lo, finite = _parts(chunk)
        special = float(chunk[~finite].sum()) if not finite.all() else 0.0
        scaled = 0
        if len(e):
            n = int(e.max()) + 1
            hs = np.bincount(e, weights=hi, minlength=n)
            ls = np.bincount(e, weights=lo, minlength=n)
            for k in np.flatnonzero((hs != 0) | (ls != 0)):
                scaled += ((int(hs[k]) << 26) + int(ls[k])) << int(k)
        out = out + ExactSum(scaled, special)
    return out


def exact_total(values: np.ndarray) -> float:
    """``values.sum()`` rounded once, whatever the order of the terms."""
    return float(exact_sum(values))


@dataclass(frozen=True)
class GroupedSum:
    """Exact sums per bin (``exact_bincount``): Python integers per bin and the non-finite terms aside."""

    scaled: list[int]
    special: np.ndarray

    def __add__(self, other: GroupedSum) -> GroupedSum:
        return GroupedSum([a + b for a, b in zip(self.scaled, other.scaled, strict=True)], self.special + other.special)

    def to_floats(self) -> np.ndarray:
        out = np.array([s / _SCALE for s in self.scaled], dtype=np.float64)
        bad = (self.special != 0.0) | np.isnan(self.special)
        out[bad] = self.special[bad]
        return out


def exact_bincount(keys: np.ndarray, weights: np.ndarray, minlength: int) -> GroupedSum:
    """``np.bincount(keys, weights, minlength)`` held exactly per bin (bins are few: providers × months, team-months)."""
    keys = np.asarray(keys, dtype=np.int64)
    weights = np.asarray(weights, dtype=np.float64)
    n = max(minlength, int(keys.max()) + 1 if len(keys) else 0)
    scaled = [0] * n
    special = np.zeros(n)
    for start in range(0, len(keys), _CHUNK):
        k = keys[start : start + _CHUNK]
        e, hi, lo, finite = _parts(weights[start : start + _CHUNK])
        if not finite.all():
            special += np.bincount(k[~finite], weights=weights[start : start + _CHUNK][~finite], minlength=n)
            k = k[finite]
        if not len(k):
            continue
        n_e = int(e.max()) + 1
        pair, inverse = np.unique(k * n_e + e, return_inverse=True)
        hs = np.bincount(inverse, weights=hi)
        ls = np.bincount(inverse, weights=lo)
        for p, h, lw in zip(pair.tolist(), hs.tolist(), ls.tolist(), strict=True):
            scaled[p // n_e] += ((int(h) << 26) + int(lw)) << (p % n_e)
    return GroupedSum(scaled, special)
