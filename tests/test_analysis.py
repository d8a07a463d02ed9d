"""Sensitivity, sweeps, break-even and uncertainty (issue 13, items 2–6): checked against compare and by hand."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import yaml
from pydantic import ValidationError

from ersattning.analysis import Axis, Evaluator, break_even, break_evens, sensitivity, sweep, uncertainty, with_values
from ersattning.analysis.paths import PathError, is_price, scenario_parameters
from ersattning.api import compare, demo_store
from ersattning.parameters import Param
from ersattning.scenario import Period, load_scenario, resolve_scenario_path

RANGES = {
    ("models", 0, "params", "rates", "personal_care"): {"low": {"value": 450, "source": "Solna 2024"}, "high": 520, "distribution": {"kind": "normal", "sd": 15}},
    ("models", 1, "params", "price_factor"): {"low": 0.75, "high": 0.9},
    ("models", 1, "params", "rates", "personal_care"): {"distribution": {"kind": "lognormal", "sd": 0.03}},
    ("models", 3, "params", "tiers", 1, "amount"): {"low": 6000, "high": 7000, "distribution": "uniform"},
    ("admin", "minutes_per_act", "correction"): {"low": 5, "high": 15, "distribution": "triangular"},
}


def analysis_scenario(tmp_path: Path) -> Path:
    """The default scenario with ranges and distributions on a model parameter of three models and an admin assumption."""
    data = yaml.safe_load(resolve_scenario_path("default").read_text(encoding="utf-8"))
    for path, extra in RANGES.items():
        node = data
        for k in path:
            node = node[k]
        node.update(extra)
    out = tmp_path / "analysis.yaml"
    out.write_text(yaml.safe_dump(data, allow_unicode=True), encoding="utf-8")
    return out


@pytest.fixture(scope="module")
def setup(tmp_path_factory: pytest.TempPathFactory):
    path = analysis_scenario(tmp_path_factory.mktemp("analysis"))
    store = demo_store(recipients=40, months=12)
    sc = load_scenario(path)
    return sc, store, compare(sc, store)


# -- parameters --------------------------------------------------------------------------


def test_ranges_and_distributions_are_validated():
    p = Param.model_validate({"values": {"2024-01-01": 485}, "low": {"value": 450, "source": "x"}, "high": 520, "distribution": {"kind": "normal", "sd": 10}})
    assert p.low is not None and p.low.source == "x" and p.high is not None and p.high.assumption
    with pytest.raises(ValidationError, match="outside its range"):
        Param.model_validate({"values": {"2024-01-01": 485}, "low": 490, "high": 520})
    with pytest.raises(ValidationError, match="both low and high"):
        Param.model_validate({"values": {"2024-01-01": 485}, "low": 450})
    with pytest.raises(ValidationError, match="source, or assumption"):
        Param.model_validate({"values": {"2024-01-01": 485}, "low": {"value": 450}, "high": 520})
    with pytest.raises(ValidationError, match="needs low and high"):
        Param.model_validate({"values": {"2024-01-01": 485}, "distribution": "uniform"})
    with pytest.raises(ValidationError, match="needs sd"):
        Param.model_validate({"values": {"2024-01-01": 485}, "distribution": "normal"})
    with pytest.raises(ValidationError, match="beta"):
        Param.model_validate({"values": {"2024-01-01": 1.5}, "distribution": {"kind": "beta", "sd": 0.1}})
    share = Param.model_validate({"values": {"2024-01-01": 0.5}, "distribution": {"kind": "beta", "sd": 0.1}})
    draws = share.distribution.draw(np.random.Generator(np.random.PCG64(1)), 0.5, None, None, 20_000)  # type: ignore[union-attr]
    assert ((draws > 0) & (draws < 1)).all() and abs(draws.mean() - 0.5) < 0.01 and abs(draws.std() - 0.1) < 0.01


def test_paths_address_model_and_admin_parameters(setup):
    sc, _, _ = setup
    params = scenario_parameters(sc)
    assert params["models.trust.tiers[1].amount"].low.value == 6000
    assert is_price("models.per_minute.rates.personal_care") and is_price("models.trust.tiers[0].amount") and not is_price("models.granted.price_factor")
    changed = scenario_parameters(with_values(sc, {"models.trust.tiers[1].amount": 6100, "admin.minutes_per_act.correction": 12, "models.granted.prices": 2}))
    assert changed["models.trust.tiers[1].amount"].value_at(np.datetime64("2024-05-01")) == 6100
    assert changed["admin.minutes_per_act.correction"].value_at(np.datetime64("2024-05-01")) == 12
    assert changed["models.granted.rates.service"].value_at(np.datetime64("2024-05-01")) == 970
    assert params["models.granted.rates.service"].value_at(np.datetime64("2024-05-01")) == 485  # the scenario itself is unchanged
    with pytest.raises(PathError, match="no parameter"):
        with_values(sc, {"models.trust.tiers[9].amount": 1})


# -- sensitivity -------------------------------------------------------------------------


def test_a_tornado_row_is_two_compare_runs(setup):
    sc, store, c = setup
    s = sensitivity(c)
    assert set(s.rows["parameter"]) == {"models.per_minute.rates.personal_care", "models.granted.price_factor", "models.trust.tiers[1].amount", "admin.minutes_per_act.correction"}
    path = "models.per_minute.rates.personal_care"  # the baseline's rate: every alternative's difference moves
    low, high = compare(with_values(sc, {path: 450}), store), compare(with_values(sc, {path: 520}), store)

    def delta(cmp, m):
        return float(cmp.models.set_index("model").loc[m, "delta_sek"])

    for m in ("granted", "ramtid", "trust"):
        row = s.rows[(s.rows["model"] == m) & (s.rows["parameter"] == path)].iloc[0]
        assert row["delta_low_sek"] == pytest.approx(delta(low, m), abs=1e-6)
        assert row["change_high_sek"] == pytest.approx(delta(high, m) - delta(c, m), abs=1e-6)
        assert row["swing_sek"] == pytest.approx(abs(delta(high, m) - delta(low, m)), abs=1e-6)
    # admin minutes move admin hours only, by count × Δminutes / 60
    row = s.rows[(s.rows["model"] == "granted") & (s.rows["parameter"] == "admin.minutes_per_act.correction")].iloc[0]
    assert row["swing_sek"] == 0
    high_c = compare(with_values(sc, {"admin.minutes_per_act.correction": 15}), store)
    per_minute = high_c.models.set_index("model")["admin_hours"] - c.models.set_index("model")["admin_hours"]
    s_pm = s.rows[(s.rows["model"] == "ramtid") & (s.rows["parameter"] == "admin.minutes_per_act.correction")].iloc[0]
    assert s_pm["admin_hours_change_high"] == pytest.approx(per_minute["ramtid"], abs=1e-9)
    # sorted by swing within each model
    for m in ("granted", "ramtid", "trust"):
        swings = s.tornado(m)["swing_sek"].to_numpy()
        assert (np.diff(swings) <= 0).all()


def test_only_touched_models_are_settled_again(setup):
    _, _, c = setup
    ev = Evaluator(c)
    ev.evaluate({"models.trust.tiers[1].amount": 6100})
    assert ev.settles == 1
    ev.evaluate({"admin.minutes_per_act.correction": 12})
    assert ev.settles == 1


# -- break-even --------------------------------------------------------------------------


def test_break_even_factor_is_the_arithmetic(setup):
    _, _, c = setup
    costs = c.models.set_index("model")["cost_sek"]
    for b in break_evens(c):
        # every component of the bundled models is proportional to a price: cost(f) = f × cost(1)
        assert b.value == pytest.approx(costs["per_minute"] / costs[b.model], rel=1e-12)
        assert b.delta_at_value_sek is not None and abs(b.delta_at_value_sek) <= 0.005


def test_break_even_value_makes_the_difference_zero_to_the_ore(setup):
    sc, store, c = setup
    for model, path in (("granted", "models.granted.price_factor"), ("trust", "models.trust.tiers[1].amount"), ("ramtid", "models.ramtid.rates.personal_care")):
        b = break_even(c, model, path)
        if b.value is None:
            continue
        again = compare(with_values(sc, {path: b.value}), store).models.set_index("model")
        assert round(float(again.loc[model, "delta_sek"]), 2) == 0.0


# -- sweeps ------------------------------------------------------------------------------


def test_two_way_sweep_matches_single_points(setup):
    sc, store, c = setup
    axes = [Axis.parse("models.granted.price_factor=0.7..0.9/3"), Axis.parse("admin.minutes_per_act.correction=5..15/2")]
    s = sweep(c, axes)
    assert len(s.rows) == 3 * 2 * len(c.settlements)
    row = s.rows[(s.rows["model"] == "granted") & (s.rows["models.granted.price_factor"] == 0.8) & (s.rows["admin.minutes_per_act.correction"] == 15)].iloc[0]
    again = compare(with_values(sc, {"models.granted.price_factor": 0.8, "admin.minutes_per_act.correction": 15}), store).models.set_index("model")
    assert row["delta_sek"] == pytest.approx(again.loc["granted", "delta_sek"], abs=1e-6)
    assert row["admin_hours"] == pytest.approx(again.loc["granted", "admin_hours"], abs=1e-9)
    with pytest.raises(ValueError, match="LOW..HIGH/STEPS"):
        Axis.parse("models.granted.price_factor=0.7-0.9")


# -- uncertainty -------------------------------------------------------------------------


def test_the_same_seed_gives_the_same_numbers(setup):
    _, _, c = setup
    a, b = uncertainty(c, 30, seed=7), uncertainty(c, 30, seed=7)
    assert a.to_json() == b.to_json()
    assert a.costs.equals(b.costs)
    assert uncertainty(c, 30, seed=8).to_json()["models"] != a.to_json()["models"]
    assert a.manifest["seed"] == 7 and a.manifest["draws"] == 30
    summary = a.summary.set_index("model")
    assert summary.loc["ramtid", "cost_p05_sek"] == summary.loc["ramtid", "cost_p95_sek"]  # nothing of ramtid is drawn
    assert 0 <= summary.loc["granted", "p_cheaper"] <= 1


def test_linear_prices_match_full_settlements(setup):
    _, _, c = setup
    u = uncertainty(c, 5, seed=3)
    assert u.manifest["methods"]["trust"].startswith("linear")
    from ersattning.analysis.uncertainty import draw

    values = draw(c, 5, 3)
    ev = Evaluator(c)
    for i in range(5):
        point = {"models.trust.tiers[1].amount": float(values.iloc[i]["models.trust.tiers[1].amount"])}
        assert u.costs.loc[i, "trust"] == pytest.approx(ev.evaluate(point).cost["trust"], abs=0.005)


# -- suppression -------------------------------------------------------------------------


def test_a_small_region_hides_every_figure(tmp_path: Path):
    # The demo region holds 2024-01 and 2024-02 only: settle those two months (the coverage check stops a year).
    sc = load_scenario(analysis_scenario(tmp_path)).with_period(Period(start="2024-01", end="2024-02"))
    c = compare(sc, demo_store(recipients=3, months=2))
    assert c.region_hidden
    assert sensitivity(c).rows[["swing_sek", "change_low_sek"]].isna().all().all()
    assert all(m["cost_median_sek"] is None for m in uncertainty(c, 5, seed=1).to_json()["models"])
    assert all(b.to_json(hidden=c.region_hidden)["value"] is None for b in break_evens(c))
    assert sweep(c, [Axis.parse("models.granted.price_factor=0.7..0.9/2")]).rows["cost_sek"].isna().all()


# -- the command line --------------------------------------------------------------------


@pytest.fixture(scope="module")
def cli_store(tmp_path_factory: pytest.TempPathFactory) -> tuple[str, Path]:
    from tests.test_cli import run

    d = tmp_path_factory.mktemp("analysis-cli")
    url = f"sqlite:///{d / 's.db'}"
    done = run("synth", "--recipients", "40", "--months", "3", "--start", "2024-01", "--store", url)
    assert done.returncode == 0, done.stderr
    return url, analysis_scenario(d)


# The synthetic region of cli_store holds 2024-01 … 2024-03: every command settles those months.
CLI_PERIOD = ("--period", "2024-01..2024-03")


def test_cli_sensitivity_sweep_uncertainty(cli_store, tmp_path: Path):
    import json

    from tests.test_cli import run

    url, scenario = cli_store
    done = run("sensitivity", str(scenario), "--store", url, *CLI_PERIOD, "--format", "json", "--html", str(tmp_path / "s.html"), "--xlsx", str(tmp_path / "s.xlsx"), "--lang", "en")
    assert done.returncode == 0, done.stderr
    doc = json.loads(done.stdout)
    assert set(doc["tornado"]) == {"granted", "ramtid", "trust"}
    swings = [r["swing_sek"] for r in doc["tornado"]["trust"]]
    assert swings == sorted(swings, reverse=True)
    html = (tmp_path / "s.html").read_text(encoding="utf-8")
    assert 'id="chart-tornado"' in html and 'id="sensitivity-table"' in html and 'id="break-even-table"' in html
    from openpyxl import load_workbook

    assert {"Break-even", "Sensitivity", "Sweep"} <= set(load_workbook(tmp_path / "s.xlsx").sheetnames)
    table = run("sensitivity", str(scenario), "--store", url, *CLI_PERIOD)
    assert table.returncode == 0 and "swing" in table.stdout and "models.granted.price_factor" in table.stdout
    csv_out = run("sensitivity", str(scenario), "--store", url, *CLI_PERIOD, "--format", "csv")
    assert csv_out.stdout.splitlines()[0].startswith("model,parameter,low,high")

    sweep_out = run("sweep", str(scenario), "--store", url, *CLI_PERIOD, "--vary", "models.granted.price_factor=0.7..0.9/3", "--html", str(tmp_path / "w.html"))
    assert sweep_out.returncode == 0, sweep_out.stderr
    assert "0.8" in sweep_out.stdout and "granted" in sweep_out.stdout
    bad = run("sweep", str(scenario), "--store", url, *CLI_PERIOD, "--vary", "models.nope.x=1..2/2")
    assert bad.returncode == 2 and "no parameter 'models.nope.x'" in bad.stderr

    a = run("uncertainty", str(scenario), "--store", url, *CLI_PERIOD, "--draws", "40", "--seed", "11", "--format", "json")
    b = run("uncertainty", str(scenario), "--store", url, *CLI_PERIOD, "--draws", "40", "--seed", "11", "--format", "json")
    assert a.returncode == 0, a.stderr
    assert a.stdout == b.stdout
    assert json.loads(a.stdout)["manifest"]["seed"] == 11

    compared = run("compare", str(scenario), "--store", url, *CLI_PERIOD, "--format", "json")
    items = json.loads(compared.stdout)["break_even"]
    assert [i["model"] for i in items] == ["granted", "ramtid", "trust"] and all(i["value"] > 0 for i in items)
    assert "Break-even against per_minute" in run("compare", str(scenario), "--store", url, *CLI_PERIOD).stdout


def test_cli_small_region_hides_everything(tmp_path: Path):
    import json

    from tests.test_cli import run

    url = f"sqlite:///{tmp_path / 'small.db'}"
    assert run("synth", "--recipients", "3", "--months", "2", "--start", "2024-01", "--store", url).returncode == 0
    scenario = analysis_scenario(tmp_path)
    period = ("--period", "2024-01..2024-02")  # the two months the region holds
    doc = json.loads(run("sensitivity", str(scenario), "--store", url, *period, "--format", "json").stdout)
    assert doc["suppressed"] and all(r["swing_sek"] is None for rows in doc["tornado"].values() for r in rows)
    csv_out = run("uncertainty", str(scenario), "--store", url, *period, "--draws", "5", "--format", "csv").stdout.splitlines()
    assert all(line.split(",")[1] == ".." for line in csv_out[1:])
    items = json.loads(run("compare", str(scenario), "--store", url, *period, "--format", "json").stdout)["break_even"]
    assert all(i["value"] is None and i["suppressed"] for i in items)


# -- properties --------------------------------------------------------------------------

from hypothesis import HealthCheck, given, settings  # noqa: E402
from hypothesis import strategies as st  # noqa: E402


@settings(max_examples=8, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(factor=st.floats(0.5, 2.0), model=st.sampled_from(["granted", "ramtid", "trust"]))
def test_property_break_even_settles_to_the_ore(setup, factor: float, model: str):
    sc, store, _ = setup
    c = compare(with_values(sc, {"models.per_minute.prices": factor}), store)
    b = break_even(c, model)
    assert b.value is not None and b.delta_at_value_sek is not None and abs(b.delta_at_value_sek) <= 0.005
    assert round(Evaluator(c).evaluate({f"models.{model}.prices": b.value}).delta(model, "per_minute"), 2) == 0.0


@settings(max_examples=8, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(seed=st.integers(0, 2**63 - 1), draws=st.integers(1, 50))
def test_property_same_seed_same_results(setup, seed: int, draws: int):
    _, _, c = setup
    a, b = uncertainty(c, draws, seed, evaluator=Evaluator(c)), uncertainty(c, draws, seed, evaluator=Evaluator(c))
    assert a.to_json() == b.to_json() and a.costs.equals(b.costs)


@pytest.mark.parametrize(("path", "value"), [("models.trust.behaviour.team.size", 4), ("models.ramtid.behaviour.performed_change", -0.1), ("models.trust.behaviour.admin_minutes.decision_follow_up", 45)])
def test_a_behaviour_point_is_a_compare_run_with_the_assumption_set_by_hand(path: str, value: float) -> None:
    """Behaviour assumptions vary like any parameter: the model's counterfactual history is derived again."""
    sc = load_scenario("behaviour").with_period(Period(start="2024-01", end="2024-03"))  # the months the region holds
    store = demo_store(recipients=40, months=3)
    c = compare(sc, store)
    ev = Evaluator(c)
    point = ev.evaluate({path: value})
    assert (point.cost, point.admin_hours, point.continuity) != (ev.base.cost, ev.base.admin_hours, ev.base.continuity)  # it moved something
    by_hand = compare(with_values(sc, {path: value}), store)
    table = by_hand.models.set_index("model")
    for m in point.cost:
        assert point.cost[m] == pytest.approx(float(table.loc[m, "cost_sek"]), abs=1e-6), m
        assert point.admin_hours[m] == pytest.approx(float(table.loc[m, "admin_hours"]), abs=1e-9), m
        assert point.continuity[m] == by_hand.indicators[m].get("continuity_median"), m
