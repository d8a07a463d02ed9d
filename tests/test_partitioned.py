"""A region settled in recipient partitions gives the same comparison as one process, to the öre and in every indicator."""

from __future__ import annotations

import json
import math
import tempfile
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from ersattning import projection
from ersattning.analysis.breakeven import break_even_summary
from ersattning.compare import Comparison, PartitionedComparisonError, compare
from ersattning.exact import ExactSum, exact_bincount, exact_sum, exact_total
from ersattning.partitioned.dataset import DatasetError, bucket_of, ensure_dataset, read_partition
from ersattning.partitioned.runner import InlinePool, compare_auto, compare_partitioned, not_partitionable
from ersattning.scenario import Period, Scenario, load_scenario
from ersattning.store import Store, open_store
from ersattning.synth import RegionSpec, synthesize
from tests.builders import History


def document(c: Comparison) -> str:
    """The JSON ``compare --format json`` prints, without its creation time."""
    doc: dict[str, Any] = {**c.to_json(), "break_even": break_even_summary(c)}
    doc["manifest"].pop("created_at")
    return json.dumps(doc, sort_keys=True, allow_nan=True)


def documents(c: Comparison) -> tuple[str, str]:
    """The JSON with every figure shown, and with small cells hidden (as printed by default)."""
    shown = document(c)
    c.suppress = True
    c.__dict__.pop("_break_even", None)
    return shown, document(c)


def region(directory: str, recipients: int, months: int, seed: int, providers: int = 4) -> Store:
    store = open_store(f"sqlite:///{Path(directory) / 'region.db'}")
    synthesize(store, RegionSpec(recipients=recipients, months=months, start="2024-01", seed=seed, providers=providers))
    return store


def settled(name: str, months: int) -> Scenario:
    """The bundled scenario ``name`` settled over the ``months`` a ``region`` holds (2024-01 on), as the coverage check asks."""
    return load_scenario(name).with_period(Period(start="2024-01", end=f"2024-{months:02d}"))


# -- exact sums ------------------------------------------------------------------------


@given(st.lists(st.floats(allow_nan=False, allow_infinity=False, min_value=-1e12, max_value=1e12), max_size=60), st.integers(1, 5))
def test_exact_sums_are_fsum_however_split(values: list[float], pieces: int) -> None:
    a = np.array(values, dtype=np.float64)
    whole = exact_total(a)
    assert whole == math.fsum(values)
    parts = sum((exact_sum(p) for p in np.array_split(a, pieces)), ExactSum())
    assert float(parts) == whole


def test_exact_bincount_by_hand() -> None:
    # 1e16 + 1 rounds back to 1e16 (floats there are 2 apart), twice; exactly, 1e16 + 1 + 1 is 1e16 + 2
    got = exact_bincount(np.array([2, 0, 2, 2]), np.array([1e16, 0.25, 1.0, 1.0]), 3).to_floats()
    assert got.tolist() == [0.25, 0.0, 10_000_000_000_000_002.0]
    assert (1e16 + 1.0) + 1.0 == 1e16
    assert exact_total(np.array([1e16, 1.0, -1e16])) == 1.0  # np.sum gives 0.0
    assert math.isnan(exact_total(np.array([np.nan, 1.0])))


# -- the partitioned projection -----------------------------------------------------------


def test_dataset_splits_every_table_by_recipient_and_is_reused(tmp_path: Path) -> None:
    store = region(str(tmp_path), 40, 2, 3)
    proj = projection.load(store)
    ds = ensure_dataset(store, 3)
    assert ds.partitions == 3 and sum(ds.visits) == len(proj.visits)
    assert ds.path.parent == Path(store.projection_dir()) / "partitions"  # type: ignore[arg-type]
    assert [p.name for p in ds.path.parent.iterdir()] == [ds.path.name]  # no temporary directory left behind
    bucket = bucket_of(proj.visits["recipient"].astype(str), 3)
    seen = 0
    for i in range(3):
        part = read_partition(ds.path, i)
        expected = proj.visits[bucket == i].reset_index(drop=True)
        assert part.visits["recipient"].astype(str).tolist() == expected["recipient"].astype(str).tolist()  # the projection's order
        for column in ("planned_start", "actual_minutes", "staff1", "status", "team"):
            pd.testing.assert_series_equal(part.visits[column].astype(object), expected[column].astype(object), check_names=False)
        assert part.visits["planned_start"].dtype == proj.visits["planned_start"].dtype
        mine = set(part.recipients["recipient"].astype(str))
        assert set(part.decisions["recipient"].astype(str)) <= mine and set(part.stays["recipient"].astype(str)) <= mine
        assert len(part.providers) == len(proj.providers)  # every partition gets all the providers
        seen += len(part.recipients)
    assert seen == len(proj.recipients)
    stamp = (ds.path / "meta.json").stat().st_mtime_ns
    assert ensure_dataset(store, 3).path == ds.path and (ds.path / "meta.json").stat().st_mtime_ns == stamp  # reused, not rewritten
    assert ensure_dataset(store).partitions == 3  # the one written at this position serves when P is not asked


def test_an_unreadable_partition_is_one_clear_error(tmp_path: Path) -> None:
    with pytest.raises(DatasetError, match="is not a readable partitioned projection"):
        read_partition(tmp_path / "nowhere", 0)


# -- the same comparison -----------------------------------------------------------------


@settings(max_examples=15, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    recipients=st.integers(3, 30),
    months=st.integers(1, 2),
    seed=st.integers(0, 10_000),
    providers=st.integers(1, 5),
    partitions=st.integers(1, 5),
    scenario=st.sampled_from(["default", "karlskrona", "solna"]),
)
def test_partitioned_json_equals_single_process(recipients: int, months: int, seed: int, providers: int, partitions: int, scenario: str) -> None:
    with tempfile.TemporaryDirectory() as d:
        store = region(d, recipients, months, seed, providers)
        sc = settled(scenario, months)  # the period from the generated spec
        single = compare(sc, store, suppress=False)
        parted, stats = compare_partitioned(sc, store, partitions=partitions, suppress=False, pool=InlinePool())
        assert stats.partitions == partitions
        assert documents(parted) == documents(single)


def test_hand_made_history_two_partitions_to_the_ore(tmp_path: Path) -> None:
    """Two recipients of one provider, one team: each partition gets one of them; the team amount and the
    continuity median need both, and the sums must be those of one process."""
    h = History(open_store(f"sqlite:///{tmp_path / 'h.db'}"))
    h.provider("P1", "private")
    a, b = h.recipient("a"), h.recipient("b")
    for r in (a, b):
        h.grant(r, "personal_care", 600)
    for day in range(1, 20):
        h.performed(a, f"a{day}", "personal_care", f"2024-03-{day:02d} 08:00", 30.1, staff=("s1",))
        h.performed(a, f"a{day}e", "personal_care", f"2024-03-{day:02d} 18:00", 20.2, staff=("s2",))
        h.performed(b, f"b{day}", "cleaning", f"2024-03-{day:02d} 09:00", 45.3, staff=("s3",))
    h.context("2024-03", "2024-03")  # saves the history
    ids = pd.Index([str(a.id), str(b.id)])
    partitions = next(p for p in range(2, 50) if len(set(bucket_of(ids, p))) == 2)
    for name in ("default", "karlskrona"):
        sc = load_scenario(name).with_period(Period(start="2024-03", end="2024-03"))  # the month the history holds
        single = compare(sc, h.store, suppress=False)
        parted, _ = compare_partitioned(sc, h.store, partitions=partitions, suppress=False, pool=InlinePool())
        assert document(parted) == document(single)
    # by hand: per-minute pays performed minutes; a's 19 × (30.1 + 20.2) and b's 19 × 45.3 minutes performed
    assert parted.indicators["minut"]["performed_hours"] == pytest.approx(19 * (30.1 + 20.2 + 45.3) / 60, abs=1e-4)
    assert parted.indicators["minut"]["continuity_person_windows"] == single.indicators["minut"]["continuity_person_windows"]


def test_a_partitioned_comparison_holds_no_context(tmp_path: Path) -> None:
    store = region(str(tmp_path), 12, 1, 2)
    sc = settled("default", 1)
    c, _ = compare_partitioned(sc, store, partitions=2, pool=InlinePool())
    with pytest.raises(PartitionedComparisonError, match="partitions 0"):
        _ = c.ctx


def test_behaviour_that_changes_visits_runs_in_one_process(tmp_path: Path) -> None:
    """Seeded behaviour choices are keyed by a visit's row in the whole region's context, which a partition
    does not know: such a scenario is settled in one process, and says so."""
    store = region(str(tmp_path), 15, 2, 4)
    sc = settled("behaviour", 2)
    reason = not_partitionable(sc, None)
    assert reason is not None and "seeded choices" in reason
    notes: list[str] = []
    c = compare_auto(sc, store, partitions=3, note=notes.append)
    assert c.context is not None and notes == [f"settling in one process: {reason}"]
    assert not_partitionable(load_scenario("default"), "2024-06-30") is not None  # --as-of too


def test_region_wide_inputs_are_kept_beside_the_dataset(tmp_path: Path) -> None:
    store = region(str(tmp_path), 20, 2, 9)
    sc = settled("karlskrona", 2)  # the team amount and the quality bonus need the first pass
    first, stats1 = compare_partitioned(sc, store, partitions=3, suppress=False, pool=InlinePool(), break_even=False)
    again, stats2 = compare_partitioned(sc, store, partitions=3, suppress=False, pool=InlinePool(), break_even=False)
    assert len(stats1.tasks) == 6 and len(stats2.tasks) == 3  # the second run skips the first pass
    docs = [c.to_json() for c in (first, again)]
    for d in docs:
        d["manifest"].pop("created_at")
    assert json.dumps(docs[0], sort_keys=True) == json.dumps(docs[1], sort_keys=True)
