"""Golden settlement tests: every rule, with the arithmetic written out."""

from __future__ import annotations

from datetime import date
from typing import ClassVar
from uuid import UUID

import numpy as np
import pytest

from ersattning.compare import compare
from ersattning.context import SettlementContext
from ersattning.explain import explain_recipient_month, explain_visit
from ersattning.models import GrantedTime, PerformedTime, ReimbursementModel, Settlement, TimeBudget, TrustBased
from ersattning.parameters import Param, param
from ersattning.scenario import Period, load_scenario
from tests.builders import History

SOLNA = {"personal_care": 464, "service": 382}


def performed_time(**params) -> PerformedTime:
    return PerformedTime.model_validate({"rates": SOLNA, **params})


def total(settlement) -> float:
    return round(settlement.total(), 2)


def visit_amounts(settlement, component: str) -> list[float]:
    return [round(x, 2) for x in settlement.visit[component]]


# -- cancellations -------------------------------------------------------------------

CANCEL = {"notice_limit_hours": 24, "shares": {"personal_care": 0.5, "cleaning": 0.75, "shopping": 0.55}}


def test_declined_cleaning_visit_paid_at_75_percent():
    h = History()
    h.provider()
    r = h.recipient("a")
    h.cancelled(r, "v", "cleaning", "2024-03-05 10:00", 96, notice_hours=3)
    s = performed_time(cancellations=CANCEL).settle(h.context())
    # 96 min × 75 % = 72 min; 72 min × 382 SEK/h / 60 = 458.40
    assert visit_amounts(s, "cancellation") == [458.40]
    assert total(s) == 458.40


def test_personal_care_declined_late_paid_at_50_percent():
    h = History()
    h.provider()
    r = h.recipient("a")
    h.cancelled(r, "v", "personal_care", "2024-03-05 10:00", 30, notice_hours=1)
    s = performed_time(cancellations=CANCEL).settle(h.context())
    # 30 min × 50 % = 15 min; 15 × 464 / 60 = 116.00
    assert total(s) == 116.00


def test_long_notice_and_provider_cancellations_are_not_paid():
    h = History()
    h.provider()
    r = h.recipient("a")
    h.cancelled(r, "long", "personal_care", "2024-03-05 10:00", 30, notice_hours=48)
    h.cancelled(r, "prov", "personal_care", "2024-03-06 10:00", 30, by="provider", reason="staffing", notice_hours=1)
    h.cancelled(r, "nolist", "laundry", "2024-03-07 10:00", 30, notice_hours=1)  # laundry has no share in CANCEL
    assert total(performed_time(cancellations=CANCEL).settle(h.context())) == 0.0


# -- stays -----------------------------------------------------------------------------


def test_five_day_hospital_stay_with_two_hours_a_day():
    h = History()
    h.provider()
    r = h.recipient("a")
    h.stay(r, date(2024, 4, 10), date(2024, 4, 15))  # 10, 11, 12, 13, 14 April: five days away
    for day in range(10, 15):
        h.cancelled(r, f"m{day}", "personal_care", f"2024-04-{day} 08:00", 60, reason="stay", notice_hours=0.5)
        h.cancelled(r, f"e{day}", "personal_care", f"2024-04-{day} 18:00", 60, reason="stay", notice_hours=10)
    rule = {"day_shares": [0.75, 0.25, 0.25, 0.25, 0.25]}
    s = performed_time(stays=rule, cancellations=CANCEL).settle(h.context())
    # day 1: 2 h × 75 % = 1.5 h; days 2–5: 4 × 2 h × 25 % = 2 h; 3.5 h × 464 SEK/h = 1,624.00
    assert total(s) == 1624.00
    assert sum(visit_amounts(s, "cancellation")) == 0.0  # stay cancellations are not short-notice cancellations


def test_stay_days_after_the_listed_ones_are_not_paid():
    h = History()
    h.provider()
    r = h.recipient("a")
    h.stay(r, date(2024, 4, 1), date(2024, 4, 11))
    for day in range(1, 11):
        h.cancelled(r, f"d{day}", "personal_care", f"2024-04-{day:02d} 09:00", 60, reason="stay")
    s = performed_time(stays={"day_shares": [0.75, 0.25, 0.25, 0.25, 0.25]}).settle(h.context())
    # only days 1–5 pay: (0.75 + 4 × 0.25) h × 464 = 1.75 × 464 = 812.00
    assert total(s) == 812.00


def test_stay_days_come_from_the_stays_history_whatever_the_visits_say():
    h = History()
    h.provider()
    r = h.recipient("a")
    h.stay(r, date(2024, 4, 10), date(2024, 4, 12))  # 10 and 11 April away; 12 April is the day home
    h.visit(r, "planned", "personal_care", "2024-04-10 08:00", 60)  # never reported: day 1
    h.cancelled(r, "staffing", "personal_care", "2024-04-11 08:00", 60, by="provider", reason="staffing")  # day 2
    h.cancelled(r, "declined", "personal_care", "2024-04-11 18:00", 60, reason="declined")  # day 2, not a short-notice cancellation
    h.performed(r, "done", "personal_care", "2024-04-11 12:00", 60)  # performed during the stay: paid as performed
    h.cancelled(r, "home", "personal_care", "2024-04-12 08:00", 60, reason="declined")  # the day home: a cancellation
    h.cancelled(r, "cleaning", "cleaning", "2024-04-10 10:00", 60, reason="declined")  # service on a stay day: neither rule
    s = performed_time(stays={"day_shares": [0.75, 0.25]}, cancellations=CANCEL).settle(h.context())
    # stay: 60 × 75 % + 2 × 60 × 25 % = 75 min × 464 / 60 = 580.00; performed: 464.00; the day home: 50 % × 464 = 232.00
    assert visit_amounts(s, "stay") == [348.0, 116.0, 116.0, 0.0, 0.0, 0.0]
    assert visit_amounts(s, "base") == [0.0, 0.0, 0.0, 464.0, 0.0, 0.0]
    assert visit_amounts(s, "cancellation") == [0.0, 0.0, 0.0, 0.0, 232.0, 0.0]
    assert total(s) == 580.00 + 464.00 + 232.00


# -- performed time -------------------------------------------------------------------


def test_rounding_and_minimum():
    h = History()
    h.provider()
    r = h.recipient("a")
    h.performed(r, "a", "personal_care", "2024-03-05 10:00", 37.4)
    h.performed(r, "b", "personal_care", "2024-03-06 10:00", 7.0)
    s = performed_time(rounding_minutes=5, rounding="nearest", minimum_minutes=15).settle(h.context())
    # 37.4 → 35 min; 35 × 464 / 60 = 270.666… → 270.67; 7 → 5 → minimum 15 min: 15 × 464 / 60 = 116.00
    assert visit_amounts(s, "base") == [270.67, 116.00]
    up = performed_time(rounding_minutes=5, rounding="up").settle(h.context())
    # 37.4 → 40 min = 309.33; 7 → 10 min = 77.33
    assert visit_amounts(up, "base") == [309.33, 77.33]


def test_double_staffing_pays_both_staff():
    h = History()
    h.provider()
    r = h.recipient("a")
    h.performed(r, "a", "personal_care", "2024-03-05 10:00", 40, staff=("s1", "s2"))
    s = performed_time().settle(h.context())
    # 40 × 464 / 60 = 309.33 for each staff
    assert visit_amounts(s, "base") == [309.33] and visit_amounts(s, "double_staffing") == [309.33]
    single = performed_time(pay_double_staffing=False).settle(h.context())
    assert visit_amounts(single, "double_staffing") == [0.0]


UPLIFTS = {
    "evening": {"start": "19:00", "end": "22:00", "share": 0.064},
    "weekend": 0.15,
    "holiday": 0.15,
    "major_holiday": 0.31,
}


def test_time_uplifts_take_the_highest_that_applies():
    h = History()
    h.provider()
    r = h.recipient("a")
    h.performed(r, "weekday", "personal_care", "2024-03-05 10:00", 60)  # Tuesday morning: none
    h.performed(r, "evening", "personal_care", "2024-03-05 20:00", 60)  # Tuesday evening: 6.4 %
    h.performed(r, "saturday", "personal_care", "2024-03-09 10:00", 60)  # Saturday: 15 %
    h.performed(r, "sat_evening", "personal_care", "2024-03-09 20:00", 60)  # Saturday evening: max(6.4, 15) = 15 %
    h.performed(r, "christmas_eve", "personal_care", "2024-12-24 10:00", 60)  # Tuesday, julafton: 31 %
    h.performed(r, "may_day", "personal_care", "2024-05-01 10:00", 60)  # Wednesday, första maj: holiday 15 %
    s = performed_time(uplifts=UPLIFTS).settle(h.context())
    # base 60 min × 464 / 60 = 464.00 each; uplifts: 0, 29.70 (464 × 0.064 = 29.696), 69.60, 69.60, 143.84 (464 × 0.31), 69.60
    assert visit_amounts(s, "base") == [464.0] * 6
    assert visit_amounts(s, "time_uplift") == [0.0, 29.70, 69.60, 69.60, 143.84, 69.60]


def test_night_visits_are_paid_a_fee_instead_of_time():
    h = History()
    h.provider("P1", ownership="private")
    h.provider("P2", ownership="municipal")
    r = h.recipient("a")
    h.performed(r, "night_private", "personal_care", "2024-03-05 23:00", 20)
    h.performed(r, "night_municipal", "personal_care", "2024-03-06 02:30", 20, provider="P2")
    h.performed(r, "day", "personal_care", "2024-03-06 07:00", 30)  # 07:00 is no longer night
    s = performed_time(night_fee={"fee": 245, "private_fee": 260}, uplifts=UPLIFTS).settle(h.context())
    # fee 260 (private) and 245 (municipal); the day visit: 30 × 464 / 60 = 232.00
    assert visit_amounts(s, "night_fee") == [260.0, 245.0, 0.0]
    assert visit_amounts(s, "base") == [0.0, 0.0, 232.0]
    assert total(s) == 737.00


def test_private_rates():
    h = History()
    h.provider("P1", ownership="private")
    h.provider("P2", ownership="municipal")
    r = h.recipient("a")
    h.performed(r, "p", "personal_care", "2024-03-05 10:00", 60)
    h.performed(r, "m", "personal_care", "2024-03-06 10:00", 60, provider="P2")
    model = PerformedTime.model_validate({"rates": {"personal_care": 485, "service": 485, "private_personal_care": 516, "private_service": 516}})
    # Stockholm 2024: 516 SEK/h private, 485 SEK/h municipal
    assert visit_amounts(model.settle(h.context()), "base") == [516.0, 485.0]


def test_rural_uplift_on_everything_paid_for_the_visit():
    h = History()
    h.provider()
    r = h.recipient("a", area="rural")
    h.performed(r, "a", "personal_care", "2024-03-09 10:00", 60)  # Saturday
    s = performed_time(rural_uplift=0.071, uplifts=UPLIFTS).settle(h.context())
    # base 464.00 + weekend 69.60 = 533.60; rural 7.1 % of 533.60 = 37.8856 → 37.89; total 571.49
    assert visit_amounts(s, "rural") == [37.89]
    assert total(s) == 571.49


def test_cap_at_granted_time():
    h = History()
    h.provider()
    r = h.recipient("a")
    h.grant(r, "cleaning", 60)  # one hour of service a month
    h.performed(r, "a", "cleaning", "2024-03-05 10:00", 45)
    h.performed(r, "b", "cleaning", "2024-03-19 10:00", 45)
    h.performed(r, "c", "cleaning", "2024-04-02 10:00", 45)
    s = performed_time(cap_at_granted=True).settle(h.context())
    # March: 90 min performed, 60 granted → each visit 30 min × 382 / 60 = 191.00; April: 45 < 60 → 45 × 382 / 60 = 286.50
    assert visit_amounts(s, "base") == [191.00, 191.00, 286.50]


def test_new_personal_care_client_one_off():
    h = History()
    h.provider()
    r = h.recipient("new", enrolled_on=date(2024, 3, 10))
    h.grant(r, "personal_care", 600, valid_from=date(2024, 3, 10))
    old = h.recipient("old", enrolled_on=date(2023, 1, 1))
    h.grant(old, "personal_care", 600, valid_from=date(2023, 1, 1))
    s = performed_time(new_client_hours=4).settle(h.context())
    # 4 h × 464 SEK/h = 1,856.00, once, in the enrolment month; nothing for the client from before the period
    assert round(s.month["new_client"].sum(), 2) == 1856.00
    rm = h.context().rm
    march = (rm["month"] == 2).to_numpy() & (rm["new_client"]).to_numpy()
    assert round(s.month["new_client"][march].sum(), 2) == 1856.00


def test_dated_rates_change_on_their_date():
    h = History()
    h.provider()
    r = h.recipient("a")
    h.performed(r, "old", "personal_care", "2024-12-31 10:00", 60)
    h.performed(r, "new", "personal_care", "2025-01-02 10:00", 60)
    model = PerformedTime.model_validate({"rates": {"personal_care": {"2024-01-01": 485, "2025-01-01": 498}, "service": 382}})
    s = model.settle(h.context("2024-12", "2025-01"))
    assert visit_amounts(s, "base") == [485.0, 498.0]


def test_a_day_before_the_first_dated_value_is_an_error():
    from ersattning.parameters import ParameterError

    h = History()
    h.provider()
    r = h.recipient("a")
    h.performed(r, "old", "personal_care", "2023-12-31 10:00", 60)
    model = PerformedTime.model_validate({"rates": {"personal_care": {"2024-01-01": 485}, "service": 382}})
    with pytest.raises(ParameterError, match="rates.personal_care has no value on 2023-12-31"):
        model.settle(h.context("2023-12", "2024-01"))


# -- granted time ---------------------------------------------------------------------


def test_cost_neutral_granted_time_price():
    h = History()
    h.provider("P1", ownership="private")
    r = h.recipient("a")
    h.grant(r, "personal_care", 600)  # 10 h a month
    model = GrantedTime.model_validate({"rates": {"personal_care": 516, "service": 516}, "price_factor": 0.825})
    s = model.settle(h.context("2024-03", "2024-03"))
    # 516 × 0.825 = 425.70 SEK per granted hour; 10 h → 4,257.00
    assert total(s) == 4257.00


def test_granted_time_deducts_days_away():
    h = History()
    h.provider()
    r = h.recipient("a")
    h.grant(r, "cleaning", 600)  # 10 h a month of service
    h.stay(r, date(2024, 4, 1), date(2024, 4, 16))  # 15 of April's 30 days away
    s = GrantedTime.model_validate({"rates": SOLNA}).settle(h.context("2024-04", "2024-04"))
    # full month: 10 h × 382 = 3,820.00; away 15/30: deduction −1,910.00; paid 1,910.00
    assert round(s.month["base"].sum(), 2) == 3820.00
    assert round(s.month["stay_deduction"].sum(), 2) == -1910.00
    assert total(s) == 1910.00


def test_weekly_decisions_are_converted_to_months():
    h = History()
    h.provider()
    r = h.recipient("a")
    h.grant(r, "cleaning", 120, per="week")  # 2 h a week = 2 × 52 / 12 = 8.6667 h a month
    s = GrantedTime.model_validate({"rates": {"personal_care": 600, "service": 600}}).settle(h.context("2024-04", "2024-04"))
    # 8.6667 h × 600 = 5,200.00
    assert total(s) == 5200.00


# -- time budget ----------------------------------------------------------------------


def _budget_history() -> History:
    h = History()
    h.provider()
    r = h.recipient("a")
    h.grant(r, "personal_care", 600)  # budget 10 h a month
    for day in range(1, 9):  # March: 8 visits of 1 h = 8 h performed
        h.performed(r, f"m{day}", "personal_care", f"2024-03-{day:02d} 10:00", 60)
    for day in range(1, 13):  # April: 12 h performed
        h.performed(r, f"a{day}", "personal_care", f"2024-04-{day:02d} 10:00", 60)
    return h


@pytest.mark.parametrize(
    ("variant", "extra", "march", "april"),
    [
        # 8 h → 8 h × 464 = 3,712.00; 12 h → budget 10 h = 4,640.00
        ("performed_up_to_budget", {}, 3712.00, 4640.00),
        # the whole budget both months: 10 h × 464 = 4,640.00
        ("full_budget", {}, 4640.00, 4640.00),
        # floor 90 %: March max(8, 9) = 9 h = 4,176.00 (top-up 1 h = 464.00); April capped at 10 h
        ("budget_with_floor", {"floor_share": 0.9}, 4176.00, 4640.00),
    ],
)
def test_time_budget_variants(variant, extra, march, april):
    ctx = _budget_history().context("2024-03", "2024-04")
    s = TimeBudget.model_validate({"variant": variant, "rates": SOLNA, **extra}).settle(ctx)
    by_month = s.recipient_months().groupby(ctx.rm["month"].to_numpy())["total"].sum().round(2).tolist()
    assert by_month == [march, april]
    if variant == "budget_with_floor":
        assert round(s.month["floor_top_up"].sum(), 2) == 464.00


def test_time_budget_marginal_minute_is_zero_above_the_budget():
    ctx = _budget_history().context("2024-03", "2024-04")
    s = TimeBudget.model_validate({"variant": "performed_up_to_budget", "rates": SOLNA}).settle(ctx)
    march = ctx.v_month == 0
    # under budget in March: one more minute earns 464 / 60 = 7.7333 SEK; none in April (over budget)
    assert np.allclose(s.marginal_minute[march], 464 / 60) and np.all(s.marginal_minute[~march] == 0)


# -- trust based ----------------------------------------------------------------------

TIERS = [{"up_to_hours": 9, "amount": 2000}, {"up_to_hours": 25, "amount": 6500}, {"up_to_hours": 50, "amount": 14000}, {"up_to_hours": None, "amount": 30000}]


def test_need_tiers_pro_rata_for_days_at_home():
    h = History()
    h.provider()
    a = h.recipient("a")
    h.grant(a, "personal_care", 30 * 60)  # 30 h → tier 25–50: 14,000
    b = h.recipient("b")
    h.grant(b, "cleaning", 9 * 60)  # exactly 9 h → first tier (bounds inclusive): 2,000
    h.stay(b, date(2024, 4, 1), date(2024, 4, 16))  # 15 of 30 days away → 1,000
    s = TrustBased.model_validate({"basis": "need_tier", "tiers": TIERS}).settle(h.context("2024-04", "2024-04"))
    assert sorted(round(x, 2) for x in s.month["fixed"]) == [1000.00, 14000.00]


def test_need_tier_by_the_decisions_monthly_hours_pro_rata_only_in_the_amount():
    h = History()
    h.provider()
    late = h.recipient("late", enrolled_on=date(2024, 3, 17))
    h.grant(late, "personal_care", 600, valid_from=date(2024, 3, 17))  # 10 h/month from 17 March
    away = h.recipient("away")
    h.grant(away, "personal_care", 600)  # 10 h/month all month, 10 days in hospital
    h.stay(away, date(2024, 3, 5), date(2024, 3, 15))
    ended = h.recipient("ended")
    h.grant(ended, "personal_care", 600, valid_to=date(2024, 3, 11))  # 10 h/month until 10 March, still enrolled
    s = TrustBased.model_validate({"basis": "need_tier", "tiers": TIERS}).settle(h.context("2024-03", "2024-03"))
    # all three in the ≤ 25 h tier (6,500), never the ≤ 9 h tier of pro-rated hours (2,000 × 15/31 = 967.74):
    # 6,500 × 15/31 = 3,145.16; 6,500 × 21/31 = 4,403.23; 6,500 × 10/31 = 2,096.77
    assert [round(x, 2) for x in s.month["fixed"]] == [3145.16, 4403.23, 2096.77]
    assert list(h.context("2024-03", "2024-03").rm["granted_monthly"].round(6)) == [600.0, 600.0, 600.0]


def test_models_that_need_decisions_count_the_months_without_one_and_explain_the_zero():
    h = History()
    h.provider()
    r = h.recipient("a")
    h.performed(r, "v", "personal_care", "2024-03-05 10:00", 60)
    h.context()
    # the history covers March only (a period it does not cover stops compare: tests/test_own_data_checks.py)
    # suppression off: the region is one person, whose counts are hidden otherwise
    c = compare(load_scenario("default").with_period(Period(start="2024-03", end="2024-03")), h.store, suppress=False)
    # enrolled all through March without a decision: 1 recipient-month that the decision-based models pay 0.00
    assert c.unpriced("trust") == {"recipient_months_without_decision": (1, 0.0)}
    assert c.unpriced("granted") == {"recipient_months_without_decision": (1, 0.0)}
    assert c.unpriced("per_minute") == {}  # per-minute pays the performed time without a decision
    assert any("trust: 1 recipient-months with no decision in force" in w for w in c.warnings())
    trust = next(m for m in explain_recipient_month(c, "a", "2024-03").models if m["model"] == "trust")
    assert trust["total_sek"] == 0 and trust["rules"][0].startswith("no decision in force this month: trust_based")


def test_a_provider_of_unknown_ownership_stops_models_with_private_rates():
    from ersattning.context import OwnershipError

    h = History()  # no provider registered: the visits name P1 only
    r = h.recipient("a")
    h.grant(r, "personal_care", 600)
    h.performed(r, "v", "personal_care", "2024-03-05 10:00", 60, staff=("s1", "s2"))
    ctx = h.context("2024-03", "2024-03")
    assert ctx.unknown_ownership == ["P1"] and ctx.default_ownership is None
    with pytest.raises(OwnershipError, match="P1.*ersattning import --kind providers.*default_ownership"):
        compare(load_scenario("default").with_period(Period(start="2024-03", end="2024-03")), h.store)
    assert ctx.ownership_problem([]) is None  # models with one rate for all settle as they are
    # one rate for all: 2 staff × 1 h × 464 = 928.00 whatever the ownership
    assert total(performed_time().settle(ctx)) == 928.00


def _continuity_history(distinct_staff: int) -> History:
    """One person, 65+, two visits every day for four weeks, by a given number of staff."""
    h = History()
    h.provider()
    r = h.recipient("a", birth_year=1935)
    h.grant(r, "personal_care", 1800)
    staff = [f"s{i}" for i in range(distinct_staff)]
    n = 0
    for day in range(4, 32):  # 4–31 March 2024: the fortnights from Monday 4 March
        for hour in (8, 17):
            h.performed(r, f"v{day}-{hour}", "personal_care", f"2024-03-{day:02d} {hour:02d}:00", 30, staff=(staff[n % distinct_staff],))
            n += 1
    return h


@pytest.mark.parametrize(("staff", "bonus"), [(6, 420.0), (14, 0.0)])
def test_quality_bonus_when_continuity_beats_the_threshold(staff, bonus):
    ctx = _continuity_history(staff).context("2024-03", "2024-03")
    model = TrustBased.model_validate({"tiers": TIERS, "quality": {"continuity_at_most": 10, "bonus_share": 0.03}})
    s = model.settle(ctx)
    # 30 h → 14,000; 3 % bonus = 420.00 when the provider's median distinct staff ≤ 10
    assert round(s.month["fixed"].sum(), 2) == 14000.00
    assert round(s.month["quality_bonus"].sum(), 2) == bonus


def test_team_amount_shared_by_planned_time():
    h = History()
    h.provider()
    a, b = h.recipient("a"), h.recipient("b")
    h.performed(a, "a1", "personal_care", "2024-03-05 10:00", 60)
    h.performed(a, "a2", "personal_care", "2024-03-06 10:00", 60)
    h.performed(b, "b1", "personal_care", "2024-03-05 11:00", 80)
    s = TrustBased.model_validate({"basis": "team", "team_amount": 100000}).settle(h.context("2024-03", "2024-03"))
    # one team-month: 100,000 split 120 : 80 minutes → 60,000 and 40,000
    assert sorted(round(x, 2) for x in s.month["fixed"]) == [40000.00, 60000.00]
    assert total(s) == 100000.00


def test_trust_based_settings_are_validated():
    from pydantic import ValidationError

    with pytest.raises(ValidationError, match="last with up_to_hours: null"):
        TrustBased.model_validate({"tiers": [{"up_to_hours": 9, "amount": 1}]})
    with pytest.raises(ValidationError, match="team_amount"):
        TrustBased.model_validate({"basis": "team"})


# -- explain: a model of one's own ---------------------------------------------------


class FeePerVisit(ReimbursementModel):
    """A user-defined model that does not say how it explains itself."""

    kind: ClassVar[str] = "fee_per_visit"
    fee: Param
    monthly: Param = param(0.0)

    def settle(self, ctx: SettlementContext) -> Settlement:
        days = ctx.month_starts[ctx.rm["month"].to_numpy()]
        visit = {"fee": np.where(ctx.performed, self.fee.at(ctx.v_day, "fee"), 0.0)}
        return Settlement(name="", kind=self.kind, ctx=ctx, visit=visit, month={"monthly": self.monthly.at(days, "monthly")})


def test_a_model_of_ones_own_gets_the_generic_explanation(tmp_path):
    h = History()
    h.provider()
    r = h.recipient("a")
    h.performed(r, "done", "personal_care", "2024-03-05 10:00", 30)
    h.visit(r, "missed", "personal_care", "2024-03-06 10:00", 30)
    scenario = tmp_path / "mine.yaml"
    scenario.write_text(
        "name: mine\nperiod: {start: 2024-03, end: 2024-03}\nbaseline: mine\nmodels:\n"
        "  - name: mine\n    kind: tests.test_models:FeePerVisit\n"
        "    params: {fee: {values: {2024-01-01: 250}, source: the tariff of 2024}, monthly: 1000}\n"
        "admin: {hourly_cost: 420, minutes_per_act: {}}\n"
    )
    h.context()  # saves the pending events
    c = compare(load_scenario(scenario, allow_plugins=["tests.test_models"]), h.store)  # its module allowed, as --allow-plugin does
    keys = c.ctx.projection.visit_keys
    visits = c.ctx.visits
    done = int(np.flatnonzero((visits["status"] == "performed").to_numpy())[0])
    vid = str(UUID(bytes=int(keys["key_hi"].iloc[done]).to_bytes(8, "big") + int(keys["key_lo"].iloc[done]).to_bytes(8, "big")))
    [m] = explain_visit(c, vid).models
    # the components the visit was paid, then every parameter in force with its source
    assert m["rules"] == ["fee: 250.00 SEK", "fee = 250 — the tariff of 2024", "monthly = 1000"]
    assert m["total_sek"] == 250.0
    [m] = explain_recipient_month(c, "a", "2024-03").models
    assert m["rules"] == ["fee: 250.00 SEK", "monthly: 1,000.00 SEK", "fee = 250 — the tariff of 2024", "monthly = 1000"]
    assert m["total_sek"] == 1250.0
