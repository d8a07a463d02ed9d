"""Invariants of every model on random synthetic histories."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from ersattning import projection
from ersattning.context import build_context
from ersattning.models import GrantedTime, PerformedTime, TimeBudget, TrustBased
from ersattning.store import open_store
from ersattning.synth import RegionSpec, synthesize
from tests import reference

_REGIONS: dict[int, object] = {}


def region(seed: int):
    """A small random region (cached per seed): 12 recipients over three months."""
    if seed not in _REGIONS:
        store = open_store("memory://")
        synthesize(store, RegionSpec(recipients=12, months=3, start="2024-03", seed=seed, stay_rate_per_year=3.0, share_cancelled_by_recipient=0.1))
        _REGIONS[seed] = projection.load(store)
    return _REGIONS[seed]


seeds = st.integers(0, 5)


def performed_params(unit, mode, minimum, cap, double, night, rural):
    params = {
        "rates": {"personal_care": 464, "service": 382, "private_personal_care": 516},
        "rounding_minutes": unit,
        "rounding": mode,
        "minimum_minutes": minimum,
        "cap_at_granted": cap,
        "pay_double_staffing": double,
        "uplifts": {"evening": {"start": "19:00", "end": "22:00", "share": 0.064}, "night": {"start": "22:00", "end": "07:00", "share": 0.15}, "weekend": 0.15, "holiday": 0.2, "major_holiday": 0.31},
        "cancellations": {"notice_limit_hours": 24, "shares": {"personal_care": 0.5, "cleaning": 0.75, "shopping": 0.55, "laundry": 0.55}},
        "stays": {"day_shares": [0.75, 0.25, 0.25, 0.25, 0.25]},
        "rural_uplift": rural,
        "new_client_hours": 4,
    }
    if night:
        params["night_fee"] = {"fee": 245, "private_fee": 260}
    return params


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    seed=seeds,
    unit=st.sampled_from([1, 5, 15]),
    mode=st.sampled_from(["nearest", "up", "down"]),
    minimum=st.sampled_from([0, 15]),
    cap=st.booleans(),
    double=st.booleans(),
    night=st.booleans(),
    rural=st.sampled_from([0.0, 0.071]),
)
def test_vectorized_per_minute_settlement_equals_the_per_visit_reference(seed, unit, mode, minimum, cap, double, night, rural):
    proj = region(seed)
    model = PerformedTime.model_validate(performed_params(unit, mode, minimum, cap, double, night, rural))
    s = model.settle(build_context(proj, "2024-03", "2024-05"))
    expected = reference.settle_performed_time(model, proj, "2024-03", "2024-05")
    assert len(expected) == s.ctx.n_visits > 100
    for component in ("base", "double_staffing", "time_uplift", "night_fee", "cancellation", "stay", "rural"):
        np.testing.assert_allclose(s.visit[component], [e[component] for e in expected], rtol=1e-9, atol=1e-6, err_msg=component)


def _models(k: float = 1.0) -> list:
    rates = {"personal_care": 464 * k, "service": 382 * k, "private_personal_care": 516 * k, "private_service": 400 * k}
    p = performed_params(5, "nearest", 15, True, True, True, 0.071)
    p["rates"] = rates
    p["night_fee"] = {"fee": 245 * k, "private_fee": 260 * k}
    tiers = [{"up_to_hours": 9, "amount": 2000 * k}, {"up_to_hours": 40, "amount": 9000 * k}, {"up_to_hours": None, "amount": 30000 * k}]
    return [
        PerformedTime.model_validate(p),
        GrantedTime.model_validate({"rates": rates, "price_factor": 0.825, "rural_uplift": 0.071}),
        TimeBudget.model_validate({"variant": "performed_up_to_budget", "rates": rates}),
        TimeBudget.model_validate({"variant": "budget_with_floor", "floor_share": 0.8, "rates": rates}),
        TimeBudget.model_validate({"variant": "full_budget", "budget_factor": 0.9, "rates": rates}),
        TrustBased.model_validate({"tiers": tiers, "quality": {"continuity_at_most": 15, "bonus_share": 0.05}, "rural_uplift": 0.071}),
        TrustBased.model_validate({"basis": "team", "team_amount": 50000 * k}),
    ]


@settings(max_examples=6, deadline=None)
@given(seed=seeds)
def test_totals_equal_the_sum_of_provider_months_and_of_lines(seed):
    ctx = build_context(region(seed), "2024-03", "2024-05")
    for model in _models():
        s = model.settle(ctx)
        total = s.total()
        assert total > 0
        assert np.isclose(s.provider_months()["total"].sum(), total, rtol=1e-12)
        assert np.isclose(s.recipient_months()["total"].sum(), total, rtol=1e-12)
        lines = sum(float(a.sum()) for a in s.visit.values()) + sum(float(a.sum()) for a in s.month.values())
        assert np.isclose(lines, total, rtol=1e-12)
        pm = s.provider_months()
        assert np.allclose(pm[s.components].sum(axis=1), pm["total"])


@settings(max_examples=6, deadline=None)
@given(seed=seeds, k=st.floats(0.1, 10))
def test_scaling_every_rate_scales_cost(seed, k):
    ctx = build_context(region(seed), "2024-03", "2024-05")
    for base, scaled in zip(_models(1.0), _models(k), strict=True):
        assert np.isclose(scaled.settle(ctx).total(), k * base.settle(ctx).total(), rtol=1e-9), type(base).__name__


def test_settlement_is_deterministic():
    ctx = build_context(region(1), "2024-03", "2024-05")
    for model in _models():
        a, b = model.settle(ctx), model.settle(build_context(region(1), "2024-03", "2024-05"))
        for c in a.components:
            assert np.array_equal(a.visit.get(c, a.month.get(c)), b.visit.get(c, b.month.get(c)))


@pytest.mark.parametrize("variant", ["performed_up_to_budget", "budget_with_floor"])
def test_a_time_budget_never_pays_more_than_the_budget(variant):
    ctx = build_context(region(2), "2024-03", "2024-05")
    rates = {"personal_care": 60, "service": 60}  # 1 SEK per minute
    s = TimeBudget.model_validate({"variant": variant, "floor_share": 0.8, "rates": rates}).settle(ctx)
    budget = ctx.rm["granted_pc"].to_numpy() + ctx.rm["granted_service"].to_numpy()
    assert np.all(s.recipient_months()["total"].to_numpy() <= budget + 1e-6)
