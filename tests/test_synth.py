"""Synthetic regions: calibration (docs/calibration.md), determinism, resumable batches."""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd
import pytest
from pydantic import ValidationError

from ersattning import projection
from ersattning.store import Store, StoreError, open_store
from ersattning.synth import RegionSpec, synthesize

YEAR = RegionSpec(recipients=300, months=12, seed=11)


@pytest.fixture(scope="module")
def year(tmp_path_factory: pytest.TempPathFactory) -> projection.Projection:
    path = tmp_path_factory.mktemp("year") / "year.db"
    store = open_store(f"sqlite:///{path}")
    synthesize(store, YEAR)
    return projection.load(store)


def _granted_minutes_in_period(proj: projection.Projection, start: str, end: str) -> float:
    d = proj.decisions
    lo, hi = pd.Timestamp(start), pd.Timestamp(end)
    days = (d["valid_to"].fillna(hi).clip(upper=hi) - d["valid_from"].clip(lower=lo)).dt.days.clip(lower=0)
    return float((d["granted_minutes"] * days / 30.44).sum())


def test_calibration_follows_the_documented_figures(year: projection.Projection) -> None:
    v = year.visits
    assert year.bytes_per_visit <= 64
    assert len(year.recipients) == 300 and len(year.providers) == 3
    assert set(year.providers["ownership"]) == {"municipal", "private"}
    hours = year.decisions.drop_duplicates(["recipient", "decision_id"]).groupby("recipient")["granted_minutes"].sum() / 60
    assert 0.28 <= (hours < 9).mean() <= 0.42  # 35 % have 1–9 h
    assert 0.07 <= (hours > 80).mean() <= 0.17  # 12 % have more than 80 h
    assert 18 <= hours.mean() <= 32  # ~24–25 h nationally
    performed = v[v["status"] == "performed"]
    ratio = performed["actual_minutes"].sum() / _granted_minutes_in_period(year, "2024-01-01", "2025-01-01")
    assert 0.76 <= ratio <= 0.88  # 0.79 municipal, 0.86 private
    assert 0.025 <= (v["staff_planned"] == 2).mean() <= 0.06  # 4 % double staffed
    at_home_days = 300 * 366 * 0.9
    assert 1.2 <= len(v) / at_home_days <= 2.0  # ~1.6 visits a day
    assert 0.03 <= (v["cancelled_by"] == "recipient").mean() <= 0.09
    assert (v["cancel_reason"] == "stay").sum() > 0 and len(year.stays) > 0
    assert (v["corrections"] > 0).sum() > 0 and (v["registration_delay_minutes"] > 24 * 60).sum() > 0
    hour = v["planned_start"].dt.hour
    assert ((hour >= 22) | (hour < 7)).sum() > 0  # night visits
    assert v["planned_start"].min() >= pd.Timestamp("2024-01-01") and v["planned_start"].max() < pd.Timestamp("2025-01-01")


def test_continuity_is_in_the_documented_range(year: projection.Projection) -> None:
    """Distinct staff met in 14 days by persons with two or more visits a day: ~10–20."""
    v = year.visits
    window = v[(v["status"] == "performed") & (v["actual_start"] >= "2024-03-04") & (v["actual_start"] < "2024-03-18")]
    heavy = window.groupby("recipient", observed=True).size()
    heavy = heavy[heavy >= 28].index
    staff = pd.concat([window[["recipient", "staff1"]].set_axis(["r", "s"], axis=1), window[["recipient", "staff2"]].set_axis(["r", "s"], axis=1)]).dropna()
    distinct = staff[staff["r"].isin(heavy)].groupby("r", observed=True)["s"].nunique()
    assert len(distinct) > 20
    assert 8 <= distinct.median() <= 20


def _log(store: Store) -> list[tuple]:
    return [row for page in store.read_pages(0) for row in zip(page.originator_id.tolist(), page.originator_version.tolist(), page.topic.tolist(), page.state, strict=True)]


def test_same_spec_same_store() -> None:
    spec = RegionSpec(recipients=20, months=2, chunk_recipients=7, seed=3)
    a, b = open_store("memory://"), open_store("memory://")
    synthesize(a, spec)
    synthesize(b, spec)
    assert _log(a) == _log(b)
    c = open_store("memory://")
    synthesize(c, spec.model_copy(update={"seed": 4}))
    assert _log(c) != _log(a)


def test_an_interrupted_region_is_completed_without_duplicates(monkeypatch: pytest.MonkeyPatch) -> None:
    spec = RegionSpec(recipients=20, months=2, chunk_recipients=5, seed=3)
    whole = open_store("memory://")
    synthesize(whole, spec)

    store = open_store("memory://")
    calls = {"n": 0}
    original = store.append

    def dies_on_third(*args: Any) -> None:
        calls["n"] += 1
        if calls["n"] == 3:
            raise KeyboardInterrupt  # the process is stopped between two batches
        return original(*args)

    monkeypatch.setattr(store, "append", dies_on_third)
    with pytest.raises(KeyboardInterrupt):
        synthesize(store, spec)
    monkeypatch.setattr(store, "append", original)
    report = synthesize(store, spec)
    assert (report.chunks_skipped, report.chunks_written) == (1, 3)
    assert sorted(_log(store)) == sorted(_log(whole))
    assert synthesize(store, spec).chunks_written == 0  # a third run adds nothing


def test_regions_do_not_mix() -> None:
    store = open_store("memory://")
    synthesize(store, RegionSpec(recipients=5, months=1))
    with pytest.raises(StoreError, match="other parameters"):
        synthesize(store, RegionSpec(recipients=6, months=1))
    other = open_store("memory://")
    other.append(["0" * 32], [1], ["x:Y"], [b"{}"])
    with pytest.raises(StoreError, match="already holds events"):
        synthesize(other, RegionSpec(recipients=5, months=1))


@pytest.mark.parametrize("bad", [{"start": "2024-13"}, {"start": "2024-1"}, {"recipients": 0}, {"share_low_hours": 1.5}, {"bogus": 1}])
def test_spec_validation(bad: dict[str, Any]) -> None:
    with pytest.raises(ValidationError):
        RegionSpec(**bad)


def test_every_figure_is_documented() -> None:
    for name, field in RegionSpec.model_fields.items():
        assert field.description, name
    assert np.isclose(RegionSpec().share_double_staffed, 0.04)


def test_the_share_of_double_staffed_visits_follows_its_figure() -> None:
    """share_double_staffed scales the chance of two staff (14 % of the >80 h daytime personal care at 0.04)."""
    from ersattning import projection
    from ersattning.store import open_store
    from ersattning.synth import RegionSpec, synthesize

    shares = {}
    for share in (0.0, 0.04, 0.08):
        store = open_store("memory://")
        synthesize(store, RegionSpec(recipients=300, months=2, seed=3, share_double_staffed=share))
        shares[share] = float((projection.load(store).visits["staff_planned"] == 2).mean())
    assert shares[0.0] == 0.0
    assert 0.025 <= shares[0.04] <= 0.06
    assert 1.5 <= shares[0.08] / shares[0.04] <= 2.5  # twice the figure, about twice the share (300 recipients: noisy)
