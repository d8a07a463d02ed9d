"""Deterministic pseudo-random numbers from keys and a seed (splitmix64), vectorised.

A choice made for a visit (is it merged, which team member takes it) depends
only on the visit's key, the seed and what is chosen, so the same seed gives
the same counterfactual history on any machine, and changing one parameter
does not reshuffle the choices of another.
"""

from __future__ import annotations

import numpy as np

_GOLDEN = np.uint64(0x9E3779B97F4A7C15)
_M1 = np.uint64(0xBF58476D1CE4E5B9)
_M2 = np.uint64(0x94D049BB133111EB)
SALTS = {"cancel": 1, "perform": 2, "consolidate": 3, "team_rank": 4, "team_pick": 5, "team_second": 6, "registration": 7}


def mix(keys: np.ndarray, seed: int, salt: str) -> np.ndarray:
    """A uint64 hash of each key (splitmix64 of key, seed and salt)."""
    with np.errstate(over="ignore"):
        z = np.asarray(keys).astype(np.uint64) + np.uint64((seed * 1_000_003 + SALTS[salt]) & 0xFFFFFFFFFFFFFFFF) * _GOLDEN
        z = (z ^ (z >> np.uint64(30))) * _M1
        z = (z ^ (z >> np.uint64(27))) * _M2
        return z ^ (z >> np.uint64(31))


def uniform(keys: np.ndarray, seed: int, salt: str) -> np.ndarray:
    """A number in [0, 1) for each key."""
    return (mix(keys, seed, salt) >> np.uint64(11)).astype(np.float64) / float(1 << 53)
