"""Small-cell suppression: nothing about fewer than five persons leaves the program.

Official Swedish statistics suppress cells that describe fewer than a handful of
people, since such a cell can identify them (docs/personal-data.md). One rule, used by
every output (table, CSV, JSON, HTML, XLSX):

- a provider serving 1–4 recipients: its recipient count and every amount
  derived from it are suppressed;
- a region (the whole comparison) of 1–4 recipients: its person counts and
  person-level indicators are suppressed;
- a histogram bin of payments per recipient-month whose recipient-months
  belong to 1–4 distinct recipients: its count is suppressed.

Zero is not a small cell: it describes nobody. A suppressed value is written
as ``None`` (JSON ``null``) and marked; renderers show ``SUPPRESSED_MARK``.
"""

from __future__ import annotations

import numpy as np

MIN_PERSONS = 5
SUPPRESSED_MARK = ".."  # the symbol SCB uses for figures that are not shown

# Counts and figures that describe persons (suppressed in regions of 1–4 recipients), wherever
# they appear: among the indicators, in the manifest, in the model table.
PERSON_LEVEL = (
    "recipients",
    "recipient_months",
    "continuity_median",
    "continuity_share_above_20",
    "continuity_person_windows",
    "cost_per_recipient_month_sek",
)

WARNING = (
    "small-cell suppression is OFF: this output may show figures about fewer than "
    f"{MIN_PERSONS} persons. Do not publish it or hand it on."
)


def is_small(count: object) -> np.ndarray:
    """True where a person count is a small cell (1–4)."""
    c = np.asarray(count, dtype=np.float64)
    return (c > 0) & (c < MIN_PERSONS)

