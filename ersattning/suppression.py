"""Small-cell suppression: nothing about fewer than five persons leaves the program, not even by subtraction.

Official Swedish statistics hide cells that describe fewer than a handful of
people, since such a cell can identify them, and hide enough other cells that
the hidden ones cannot be worked out from the totals (primary and secondary
suppression, as SCB, sdcTable and τ-ARGUS do; docs/personal-data.md). One rule,
used by every output (table, CSV, JSON, HTML, XLSX), which all draw from the
comparison's JSON:

Primary cells
- a provider serving 1–4 recipients (or paid for nobody): its recipient count
  and every amount of it;
- a payment-distribution bin whose recipient-months belong to 1–4 distinct
  recipients: its count;
- a region (the whole comparison) of 1–4 recipients: it is itself a small
  cell, so every figure about it is hidden — person counts, visits, amounts,
  hours, indicators, the monthly and component breakdowns and the admin counts
  (its totals are its providers' totals, and counts come back from ratios).

Complementary cells (``complementary``). The hidden cells of a table add up to
its total minus the cells shown, so one hidden provider (or bin) comes straight
back. The hidden group must therefore:
1. hold at least two cells (one sum cannot isolate any of them);
2. serve at least five distinct persons together (the sum a reader can derive
   describes the whole group, which must not itself be a small cell);
3. not be pinned by its bounds: the hidden counts (each at least 1) add up to
   more than one each, and in every amount column that is not zero everywhere
   (amounts are at least 0), the hidden cells add up to more than zero.
While the group fails, the smallest cell shown (fewest persons, then first in
the table's order) is hidden too; afterwards every complementary cell that is
not needed is shown again, largest first. The rule is deterministic. When even
hiding every cell cannot protect the group, nothing more is hidden and the
caller hides the totals instead (a provider table: the region's figures).

Why a rule of our own rather than τ-ARGUS (``pytauargus``): the tables are one
dimension (providers, or bins, against one total) with at most a few hundred
cells, where the smallest-cell rule is what the solvers find too; it runs in
microseconds with no external program, and the disclosure audit in the tests
(tests/test_disclosure.py) tries every subtraction and bound on every output.

Zero is not a small cell: it describes nobody. A hidden value is written as
``None`` (JSON ``null``); renderers show ``SUPPRESSED_MARK``.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np

MIN_PERSONS = 5
SUPPRESSED_MARK = ".."  # the symbol SCB uses for figures that are not shown

WARNING = (
    "small-cell suppression is OFF: this output may show figures about fewer than "
    f"{MIN_PERSONS} persons. Do not publish it or hand it on."
)

GroupSize = Callable[[np.ndarray], int]


def is_small(count: object) -> np.ndarray:
    """True where a person count is a small cell (1–4)."""
    c = np.asarray(count, dtype=np.float64)
    return (c > 0) & (c < MIN_PERSONS)


def protects(hidden: np.ndarray, persons: np.ndarray, *, counts: np.ndarray | None = None, amounts: np.ndarray | None = None, group_size: GroupSize | None = None) -> bool:
    """Whether no cell of the hidden group can be worked out from the totals and the cells shown (conditions 1–3)."""
    k = int(hidden.sum())
    if k == 0:
        return True
    if k < 2:
        return False
    size = group_size(hidden) if group_size is not None else int(persons[hidden].sum())
    if size < MIN_PERSONS:
        return False
    if counts is not None and (counts[hidden].sum(axis=0) <= k).any():
        return False
    if amounts is not None:
        live = np.abs(amounts).sum(axis=0) > 0
        if (live & (np.abs(amounts[hidden]).sum(axis=0) == 0)).any():
            return False
    return True


def complementary(
    persons: np.ndarray,
    primary: np.ndarray,
    *,
    counts: np.ndarray | None = None,
    amounts: np.ndarray | None = None,
    group_size: GroupSize | None = None,
) -> tuple[np.ndarray, bool]:
    """The cells to hide (primary and complementary) and whether they are protected.

    ``persons``: persons each cell describes; ``primary``: the small cells;
    ``counts``/``amounts``: the table's count columns (a cell's count is at
    least 1) and amount columns (at least 0), one row per cell; ``group_size``:
    distinct persons of a group of cells (default: the sum of ``persons``).
    """
    persons = np.asarray(persons)
    primary = np.asarray(primary, dtype=bool)
    check = lambda mask: protects(mask, persons, counts=counts, amounts=amounts, group_size=group_size)  # noqa: E731
    hidden = primary.copy()
    if check(hidden):
        return hidden, True
    something = persons > 0
    if amounts is not None:
        something |= np.abs(amounts).sum(axis=1) > 0
    candidates = np.flatnonzero(~primary & something)
    order = candidates[np.argsort(persons[candidates], kind="stable")]
    added: list[int] = []
    for i in order:
        hidden[i] = True
        added.append(int(i))
        if check(hidden):
            break
    else:
        return primary.copy(), False
    for i in reversed(added):  # show again what is not needed, largest first
        hidden[i] = False
        if not check(hidden):
            hidden[i] = True
    return hidden, True
