"""A small API for notebooks: scenario, store, comparison — all as DataFrames.

    from ersattning.api import load_scenario, open_store, compare
    c = compare("default", "sqlite:///ersattning.db")
    c.models, c.providers, c.monthly, c.components, c.admin
    write_report(c, html="rapport.html", xlsx="rapport.xlsx")
"""

from __future__ import annotations

from datetime import datetime
from pathlib import Path

from ersattning.compare import Comparison
from ersattning.compare import compare as _compare
from ersattning.partitioned.runner import compare_auto
from ersattning.report import write_report
from ersattning.scenario import Period, Scenario, load_scenario
from ersattning.store import Store, open_store
from ersattning.synth import RegionSpec, synthesize


def compare(
    scenario: Scenario | str | Path | None = None,
    store: Store | str | None = None,
    *,
    as_of: datetime | str | None = None,
    period: str | None = None,
    partitions: int | None = None,
    scheduler: str | None = None,
    workers: int | None = None,
) -> Comparison:
    """Compare a scenario (object, file, bundled name; default ``default``) on a store (object or URL).

    In one process (the comparison keeps its settlement context for reports and analyses) unless
    ``partitions``, ``scheduler`` or ``workers`` ask for recipient partitions (README, "Large regions").
    ``period``: other months than the scenario's, ``"2024-09..2024-10"`` as ``--period`` takes them.
    """
    sc = scenario if isinstance(scenario, Scenario) else load_scenario(scenario)
    sc = sc.with_period(Period.parse(period) if period else None)
    st = store if isinstance(store, Store) else open_store(store or sc.spec.store, create=False)
    if partitions or scheduler or workers:
        return compare_auto(sc, st, as_of=as_of, partitions=partitions, scheduler=scheduler, workers=workers)
    return _compare(sc, st, as_of=as_of)


def demo_store(url: str = "memory://", recipients: int = 200, months: int = 12, seed: int = 1) -> Store:
    """A store holding a small synthetic region, for trying things out."""
    store = open_store(url)
    synthesize(store, RegionSpec(recipients=recipients, months=months, seed=seed))
    return store


__all__ = ["Comparison", "Scenario", "Store", "compare", "demo_store", "load_scenario", "open_store", "write_report"]
