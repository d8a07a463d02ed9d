"""Behaviour assumptions: the counterfactual history, with the arithmetic written out (docs/models.md)."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from ersattning import projection
from ersattning.behaviour import Behaviour, apply
from ersattning.context import build_context
from ersattning.indicators import continuity, shared_indicators
from ersattning.models import GrantedTime, PerformedTime, TimeBudget, TrustBased
from ersattning.store import open_store
from ersattning.synth import RegionSpec, synthesize
from tests.builders import History

RATES = {"personal_care": 600, "service": 600}  # 10 SEK a minute


def models(**behaviour):
    b = {"behaviour": behaviour} if behaviour else {}
    return {
        "per_minute": PerformedTime.model_validate({"rates": RATES, **b}),
        "granted": GrantedTime.model_validate({"rates": RATES, "price_factor": 0.825, **b}),
        "ramtid": TimeBudget.model_validate({"variant": "performed_up_to_budget", "rates": RATES, **b}),
        "trust": TrustBased.model_validate({"basis": "need_tier", "tiers": [{"up_to_hours": 5, "amount": 1000}, {"up_to_hours": None, "amount": 3000}], **b}),
    }


def small_history():
    """One recipient granted 10 h of personal care a month; in March three visits of 30, 40 and 50 minutes."""
    h = History()
    h.provider("P1", ownership="municipal")
    a = h.recipient("A")
    h.grant(a, "personal_care", 600)
    h.performed(a, "v1", "personal_care", "2024-03-04 10:00", 30)
    h.performed(a, "v2", "personal_care", "2024-03-05 10:00", 40)
    h.performed(a, "v3", "personal_care", "2024-03-06 10:00", 50)
    return h.context("2024-03", "2024-03")


def settle_all(ctx, ms):
    return {name: round(m.settle(apply(ctx, m.behaviour)).total(), 2) for name, m in ms.items()}


def test_performed_time_down_ten_percent_by_hand():
    ctx = small_history()
    static = settle_all(ctx, models())
    # per minute: 120 min × 10 SEK; granted: 600 min × 0.825 × 10 SEK; ramtid: min(120, 600) × 10; trust: 10 h → tier 2
    assert static == {"per_minute": 1200.0, "granted": 4950.0, "ramtid": 1200.0, "trust": 3000.0}
    changed = settle_all(ctx, models(performed_change=-0.1))
    # 27 + 36 + 45 = 108 min performed; granted time and the tier do not depend on performed time
    assert changed == {"per_minute": 1080.0, "granted": 4950.0, "ramtid": 1080.0, "trust": 3000.0}
    cf = apply(ctx, Behaviour(performed_change=-0.1))
    assert cf.v_minutes.tolist() == pytest.approx([27.0, 36.0, 45.0])
    assert ctx.v_minutes.tolist() == [30.0, 40.0, 50.0]  # the static context is untouched
    assert [t["transformation"] for t in cf.transformations] == ["performed_change"]


def team_history():
    """Recipient A: two visits a day for 28 days, six staff in turn; recipient B: the same, always staff s9."""
    h = History()
    h.provider("P1", ownership="municipal")
    a, b = h.recipient("A", birth_year=1940), h.recipient("B", birth_year=1940)
    h.grant(a, "personal_care", 3000)
    h.grant(b, "personal_care", 3000)
    staff = [f"s{i}" for i in range(1, 7)]
    n = 0
    for day in range(1, 29):
        for hour in (9, 17):
            when = f"2024-04-{day:02d} {hour:02d}:00"
            h.performed(a, f"a{n}", "personal_care", when, 30, staff=(staff[n % 6],))
            h.performed(b, f"b{n}", "personal_care", when, 30, staff=("s9",))
            n += 1
    return h.context("2024-04", "2024-04")


def test_team_of_two_gives_continuity_two_and_leaves_a_single_staff_recipient_alone():
    ctx = team_history()
    windows = lambda c: c.cache["continuity"].sort_values("recipient")["distinct_staff"].tolist()  # noqa: E731
    continuity(ctx)
    assert windows(ctx) == [6, 6, 1, 1]  # two fortnights from the first Monday (April 1st) for each of A and B
    cf = apply(ctx, Behaviour.model_validate({"team": {"size": 2}}))
    assert continuity(cf)["continuity_median"] == 1.5
    assert windows(cf) == [2, 2, 1, 1]
    recipient = ctx.visits["recipient"].astype(str).to_numpy()
    on_a = recipient == recipient[0]
    before = ctx.visits["staff1"].astype(str).to_numpy()
    after = cf.visits["staff1"].astype(str).to_numpy()
    assert (after[~on_a] == "s9").all() and (before[~on_a] == after[~on_a]).all()  # B left alone
    assert len(set(before[on_a])) == 6 and len(set(after[on_a])) == 2
    # the team is who served A most before: visits already by a team member keep their staff
    team = set(after[on_a])
    kept = np.isin(before[on_a], list(team))
    assert (after[on_a][kept] == before[on_a][kept]).all()
    assert [t["transformation"] for t in cf.transformations] == ["team"]
    assert cf.transformations[0]["visits"] == int((before != after).sum()) == 56 - int(kept.sum())
    # the same seed gives the same staff; the payment does not depend on who came
    assert (apply(ctx, Behaviour.model_validate({"team": {"size": 2}})).visits["staff1"].astype(str).to_numpy() == after).all()


def test_provider_cancellations_consolidation_and_registration():
    h = History()
    h.provider("P1", ownership="municipal")
    a = h.recipient("A")
    h.grant(a, "personal_care", 600)
    h.performed(a, "v1", "personal_care", "2024-03-04 08:00", 10, staff=("s1",))
    h.performed(a, "v2", "personal_care", "2024-03-04 12:00", 15, staff=("s1",))
    h.performed(a, "v3", "personal_care", "2024-03-04 18:00", 40, staff=("s2",))
    h.cancelled(a, "v4", "personal_care", "2024-03-05 10:00", 20, by="provider", reason="staffing")
    ctx = h.context("2024-03", "2024-03")
    # every provider cancellation performed as planned, by the recipient's usual staff member
    cf = apply(ctx, Behaviour(provider_cancellations_change=-1))
    assert cf.v_status.tolist() == [1, 1, 1, 1] and cf.v_minutes[3] == 20
    assert cf.visits["staff1"].astype(str).tolist()[3] == "s1"
    assert round(PerformedTime.model_validate({"rates": RATES}).settle(cf).total(), 2) == (10 + 15 + 40 + 20) * 10
    # the two short visits of March 4th merged into the first, 25 min; the 40-min visit stays
    cf = apply(ctx, Behaviour.model_validate({"consolidate": {"short_minutes": 15, "share": 1}}))
    assert cf.n_visits == 3 and cf.v_minutes.tolist()[:2] == [25.0, 40.0]
    assert cf.origin.tolist() == [0, 2, 3]
    assert shared_indicators(cf)["performed_hours"] == shared_indicators(ctx)["performed_hours"]
    cf = apply(ctx, Behaviour.model_validate({"consolidate": {"short_minutes": 15, "share": 1, "time_change": 0.2}}))
    assert cf.v_minutes[0] == pytest.approx(30.0)
    # no start/stop registration: none counted
    from ersattning.admin import count_units

    cf = apply(ctx, Behaviour(registration=0))
    s = PerformedTime.model_validate({"rates": RATES}).settle(cf)
    assert count_units(cf, s, "start_stop") == 0 and count_units(ctx, s, "start_stop") == 6


_REGIONS: dict[int, object] = {}


def region(seed: int):
    if seed not in _REGIONS:
        store = open_store("memory://")
        synthesize(store, RegionSpec(recipients=12, months=2, start="2024-03", seed=seed, share_cancelled_by_recipient=0.1))
        _REGIONS[seed] = projection.load(store)
    return _REGIONS[seed]


neutral = st.fixed_dictionaries(
    {},
    optional={
        "performed_change": st.just(0.0),
        "performed_change_by_category": st.just({"cleaning": 0.0}),
        "consolidate": st.builds(lambda m: {"short_minutes": m, "share": 0.0}, st.integers(0, 60)),
        "team": st.just({"size": 1000}),
        "provider_cancellations_change": st.just(0.0),
        "registration": st.just(1.0),
        "seed": st.integers(0, 10),
    },
)


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(seed=st.integers(0, 3), behaviour=neutral)
def test_neutral_behaviour_is_the_static_replay(seed, behaviour):
    ctx = build_context(region(seed), "2024-03", "2024-04")
    b = Behaviour.model_validate(behaviour)
    cf = apply(ctx, b)
    for m in models().values():
        static, changed = m.settle(ctx), m.settle(cf)
        assert static.component_totals() == changed.component_totals()
        assert np.array_equal(static.recipient_months()["total"].to_numpy(), changed.recipient_months()["total"].to_numpy())
    assert shared_indicators(build_context(region(seed), "2024-03", "2024-04")) == shared_indicators(cf)


SCENARIO = """
name: behaviour test
period: {start: 2024-03, end: 2024-03}
baseline: per_minute
models:
  - name: per_minute
    kind: performed_time
    params: {rates: {personal_care: 600, service: 600}}
  - name: fewer_minutes
    kind: performed_time
    params: {rates: {personal_care: 600, service: 600}}
    behaviour:
      performed_change: {values: {2024-01-01: -0.1}, source: "a test"}
      admin_minutes: {registration: 1}
admin:
  hourly_cost: 420
  minutes_per_act: {registration: 0.5, correction: 10, invoice_line: 0.5, reconciliation: 15, decision_follow_up: 60}
"""


def _scenario(tmp_path, text=SCENARIO):
    from ersattning.scenario import load_scenario

    path = tmp_path / "s.yaml"
    path.write_text(text)
    return load_scenario(str(path))


def _history_store():
    h = History()
    h.provider("P1", ownership="municipal")
    for name in "ABCDEF":  # six recipients: above the small-cell limit
        r = h.recipient(name)
        h.grant(r, "personal_care", 600)
        h.performed(r, f"{name}1", "personal_care", "2024-03-04 10:00", 30)
        h.performed(r, f"{name}2", "personal_care", "2024-03-05 10:00", 40)
    h.context()
    return h.store


def test_compare_settles_the_counterfactual_beside_the_static_replay(tmp_path):
    from ersattning.compare import compare
    from ersattning.explain import explain_recipient_month, explain_visit

    c = compare(_scenario(tmp_path), _history_store())
    j = c.to_json()
    base, fewer = j["models"]
    assert base["cost_sek"] == base["static"]["cost_sek"] == 6 * 70 * 10 and base["transformations"] == []
    assert fewer["cost_sek"] == 6 * 63 * 10 and fewer["static"]["cost_sek"] == 6 * 70 * 10
    assert fewer["delta_vs_baseline_sek"] == -420 and fewer["static"]["delta_vs_baseline_sek"] == 0
    # 12 start/stop pairs = 24 registrations at 1 minute (its own) against 0.5 (the scenario's)
    reg = {a["act"]: a["hours"] for a in fewer["admin"]}["registration"]
    assert reg == pytest.approx(24 / 60) and fewer["static"]["admin_hours"] < fewer["admin_hours"]
    assert [t["transformation"] for t in fewer["transformations"]] == ["performed_change"] and fewer["transformations"][0]["visits"] == 12
    assert j["manifest"]["transformations"]["fewer_minutes"]["steps"][0]["parameters"] == {"@2024-01-01": -0.1}
    assert "per_minute" not in j["manifest"]["transformations"]
    # explain: a visit and a recipient-month, as replayed and as transformed
    rid = c.ctx.visits["recipient"].astype(str).iloc[0]
    text = explain_recipient_month(c, rid, "2024-03").text()
    assert "as replayed (static): 700.00 SEK" in text and "fewer_minutes (performed_time): 630.00 SEK" in text
    assert "1.2 h → 2 planned, 2 performed, 1.1 h" in text and "behaviour: performed_change" in text
    from uuid import UUID

    keys = c.ctx.projection.visit_keys.iloc[0]
    vid = str(UUID(bytes=int(keys["key_hi"]).to_bytes(8, "big") + int(keys["key_lo"]).to_bytes(8, "big")))
    text = explain_visit(c, vid).text()
    assert "as replayed (static): 300.00 SEK" in text and "performed 30.0 min → 27.0 min" in text and "fewer_minutes (performed_time): 270.00 SEK" in text


def test_behaviour_in_the_report_in_both_languages_and_hidden_in_a_small_region(tmp_path):
    from ersattning.compare import compare
    from ersattning.report.charts import CHARTS
    from ersattning.report.html import render_html
    from ersattning.report.tables import build_tables

    c = compare(_scenario(tmp_path), _history_store())
    t = build_tables(c)
    assert t.transformations["transformation"].tolist() == ["performed_change", "admin_minutes"]
    for lang, title in (("sv", "Beteendeantaganden"), ("en", "Behaviour assumptions")):
        page = render_html(t, dict.fromkeys(CHARTS, ""), lang)
        assert 'id="behaviour-table"' in page and title in page
    # three recipients: every region figure of the behaviour tables is hidden
    h = History()
    h.provider("P1", ownership="municipal")
    for name in "ABC":
        r = h.recipient(name)
        h.grant(r, "personal_care", 600)
        h.performed(r, f"{name}1", "personal_care", "2024-03-04 10:00", 30)
    h.context()
    small = compare(_scenario(tmp_path), h.store)
    t = build_tables(small)
    assert small.to_json()["models"][1]["transformations"][0]["visits"] is None
    from ersattning.suppression import SUPPRESSED_MARK

    assert (t.behaviour.drop(columns="model") == SUPPRESSED_MARK).all().all()
    assert (t.transformations["visits"].iloc[:1] == SUPPRESSED_MARK).all()
    assert small.to_json()["models"][1]["static"]["cost_sek"] is None


def test_behaviour_errors_name_the_line(tmp_path):
    from ersattning.yamlconf import ConfigError

    with pytest.raises(ConfigError) as e:
        _scenario(tmp_path, SCENARIO.replace("admin_minutes: {registration: 1}", "admin_minutes: {dialogue_meeting: 1}\n      perfomed_change: 0.1"))
    text = str(e.value)
    assert "models[1].behaviour.perfomed_change" in text and "unknown key" in text
    with pytest.raises(ConfigError) as e:
        _scenario(tmp_path, SCENARIO.replace("admin_minutes: {registration: 1}", "admin_minutes: {dialogue_meeting: 1}"))
    assert "models[1].behaviour.admin_minutes.dialogue_meeting" in str(e.value)


def test_bundled_behaviour_scenario_cites_its_evidence():
    from ersattning.scenario import load_scenario

    s = load_scenario("behaviour")
    trust = s.model("trust").behaviour
    assert trust.team is not None and trust.team.size.values and "Skönsmon" in (trust.team.size.source or "")
    pc = trust.performed_change
    assert pc is not None and pc.low is not None and pc.high is not None
    assert "Västervik" in (pc.source or "") and "Buurtzorg" in (pc.low.source or "") and pc.low.value == -0.36 and "Västervik" in (pc.high.source or "")
    ramtid = s.model("ramtid").behaviour.performed_change
    assert ramtid is not None and ramtid.high is not None and "82,5" in (ramtid.high.source or "") and ramtid.high.value == 0.21
    assert trust.team.size.low is not None and "Skönsmon" in (trust.team.size.low.source or "") and trust.team.size.low.value == 9
    assert "Norge" in (s.spec.admin.minutes_per_act["documentation"].source or "")
    for _, m in s.models:  # every behaviour figure is sourced or marked
        for name, p in m.parameters().items():
            if name.startswith("behaviour."):
                assert p.source or p.assumption, name


def test_admin_minutes_alone_change_no_visit(tmp_path):
    from ersattning.compare import compare

    text = SCENARIO.replace("      performed_change: {values: {2024-01-01: -0.1}, source: \"a test\"}\n", "")
    c = compare(_scenario(tmp_path, text), _history_store())
    fewer = c.to_json()["models"][1]
    assert fewer["cost_sek"] == fewer["static"]["cost_sek"] == 6 * 70 * 10 and fewer["transformations"] == []
    assert fewer["admin_hours"] - fewer["static"]["admin_hours"] == pytest.approx(24 * 0.5 / 60)
    assert c.manifest["transformations"]["fewer_minutes"]["admin_minutes"] == {"registration": "1"}


BEHAVIOUR_JS = """JSON.stringify({
  lang: document.documentElement.lang,
  title: document.querySelector('#behaviour h2').textContent,
  rows: [...document.querySelectorAll('#behaviour-table tbody tr')].map(tr => [...tr.children].map(td => td.textContent)),
  steps: [...document.querySelectorAll('#transformations-table tbody tr')].map(tr => [...tr.children].map(td => td.textContent)),
})"""


def test_behaviour_in_the_report_read_in_a_browser_and_the_workbook(tmp_path):
    import json
    import os

    from openpyxl import load_workbook

    from ersattning.compare import compare
    from ersattning.report import i18n, write_report
    from tests.browser import Browser, chromium_path

    c = compare(_scenario(tmp_path), _history_store())
    doc = c.to_json()
    for lang, title, sheets in (("sv", "Beteendeantaganden", ["Beteendeantaganden", "Transformationer"]), ("en", "Behaviour assumptions", ["Behaviour assumptions", "Transformations"])):
        html, xlsx = tmp_path / f"r-{lang}.html", tmp_path / f"r-{lang}.xlsx"
        write_report(c, html=html, xlsx=xlsx, lang=lang)
        wb = load_workbook(xlsx)
        assert wb.sheetnames[-2:] == sheets
        assert [cell.value for cell in wb[sheets[0]][3]][:3] == ["fewer_minutes", 4200, 3780]  # model, static cost, counterfactual cost
        if chromium_path() is None and not os.environ.get("CI"):
            continue
        with Browser() as browser:
            page = browser.load(html, BEHAVIOUR_JS)
        assert page.errors == [], page.errors
        value = json.loads(page.value)
        assert value["lang"] == lang and value["title"] == title
        fewer = doc["models"][1]
        assert value["rows"][1][:3] == ["fewer_minutes", i18n.number(fewer["static"]["cost_sek"], lang), i18n.number(fewer["cost_sek"], lang)]
        assert [s[2] for s in value["steps"]] == [("Ändrad utförd tid" if lang == "sv" else "Performed time changed"), ("Minuter per administrativ åtgärd" if lang == "sv" else "Minutes per administrative act")]
