"""A municipality's own data meets no silent trap between the store and the figures (issue 24, traps 1, 5, 6 and 12).

Each test runs the commands a user types on files shaped like theirs: the silent path now stops or warns
(message and exit status asserted), and the fixed path gives the amount worked out by hand in the comments.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from ersattning.checks import RANGES, Coverage, PeriodNotCovered, check_coverage, longest_run, month_spans
from tests.test_cli import run
from tests.test_settle_imported import ADMIN, DECISIONS, ENV, STOCKHOLM, VISITS, _write

PROVIDERS = "code,name,ownership\nP1,Hemtjänst Öst,municipal\n"


def _store(tmp_path: Path, visits: str, decisions: str | None = None) -> str:
    """A store with these visits (and decisions), and the one provider registered as municipal."""
    store = f"sqlite:///{tmp_path / 'own.db'}"
    files = [("providers", PROVIDERS), ("visits", VISITS + visits)] + ([("decisions", DECISIONS + decisions)] if decisions else [])
    for kind, text in files:
        done = run("import", _write(tmp_path / f"{kind}.csv", text), "--kind", kind, "--store", store, env=ENV)
        assert done.returncode == 0, done.stderr
    return store


def _year_scenario(tmp_path: Path, extra: str = "", admin: str = ADMIN, name: str = "year.yaml") -> str:
    """The per-minute model at Stockholm's 2024 rates over a calendar year, as the bundled scenarios are."""
    text = f"name: test\nperiod: {{start: 2024-01, end: 2024-12}}\nbaseline: per_minute\nmodels:\n  - {STOCKHOLM}\n{extra}{admin}"
    return _write(tmp_path / name, text)


# visits in September and October 2024 only: 60 performed minutes, then 30
TWO_MONTHS = (
    "B1,P1,V1,personal_care,2024-09-02 08:00,2024-09-02 09:00,2024-09-02 08:00,2024-09-02 09:00,S1,performed\n"
    "B1,P1,V2,personal_care,2024-10-07 08:00,2024-10-07 08:30,2024-10-07 08:00,2024-10-07 08:30,S1,performed\n"
)


# -- trap 1: a scenario year on two months of data -------------------------------------------------


def test_a_period_the_history_does_not_cover_stops_with_the_months_covered_and_both_ways_out(tmp_path):
    store = _store(tmp_path, TWO_MONTHS)
    scenario = _year_scenario(tmp_path)
    for command in ("compare", "validate"):
        done = run(command, scenario, "--store", store, env=ENV)
        assert done.returncode == 2, (command, done.stdout, done.stderr)
        err = done.stderr
        assert "the period 2024-01 … 2024-12 is not covered" in err and "10 of its 12 months have no visits (2024-01 … 2024-08, 2024-11 … 2024-12)" in err
        assert "visits in 2024-09 … 2024-10" in err
        assert "--period 2024-09..2024-10" in err and "period: {start: 2024-09, end: 2024-10}" in err  # both ways out
        assert err.rstrip().endswith("[period_not_covered]")  # the stable code, for scripts
        assert "Traceback" not in err

    # --period: 60 min + 30 min at 485 SEK/h = 485.00 + 242.50 = 727.50
    done = run("compare", scenario, "--store", store, "--period", "2024-09..2024-10", "--format", "json", "--no-suppress", env=ENV)
    assert done.returncode == 0, done.stderr
    doc = json.loads(done.stdout)
    assert doc["models"][0]["cost_sek"] == 727.50
    assert doc["manifest"]["period"] == {"start": "2024-09", "end": "2024-10"} and doc["manifest"]["period_from"] == "--period"
    assert doc["models"][0]["monthly_cost_sek"] == {"2024-09": 485.0, "2024-10": 242.5}
    assert run("validate", scenario, "--store", store, "--period", "2024-09..2024-10", env=ENV).returncode == 0

    # the same with period: in the scenario
    text = Path(scenario).read_text(encoding="utf-8").replace("{start: 2024-01, end: 2024-12}", "{start: 2024-09, end: 2024-10}")
    fixed = _write(tmp_path / "autumn.yaml", text)
    done = run("compare", fixed, "--store", store, "--format", "json", "--no-suppress", env=ENV)
    assert done.returncode == 0, done.stderr
    assert json.loads(done.stdout)["models"][0]["cost_sek"] == 727.50 and json.loads(done.stdout)["manifest"]["period_from"] == "scenario"

    # one month: September alone, 485.00
    one = json.loads(run("compare", scenario, "--store", store, "--period", "2024-09", "--format", "json", "--no-suppress", env=ENV).stdout)
    assert one["models"][0]["cost_sek"] == 485.00


def test_the_partitioned_compare_checks_coverage_too(tmp_path):
    store = _store(tmp_path, TWO_MONTHS)
    done = run("compare", _year_scenario(tmp_path), "--store", store, "--partitions", "2", env=ENV)
    assert done.returncode == 2 and "--period 2024-09..2024-10" in done.stderr, done.stderr


def test_a_one_month_synthetic_region_is_not_compared_over_a_year(tmp_path):
    store = f"sqlite:///{tmp_path / 'synth.db'}"
    assert run("synth", "--recipients", "20", "--months", "1", "--start", "2024-01", "--store", store).returncode == 0
    done = run("compare", "--store", store)
    assert done.returncode == 2 and "11 of its 12 months have no visits (2024-02 … 2024-12)" in done.stderr
    assert "--period 2024-01..2024-01" in done.stderr


@pytest.mark.parametrize(
    ("value", "message"),
    [
        ("0001-01..9999-12", "between 1900-01 and 2100-12"),
        ("2024-10..2024-09", "ends before it starts"),
        ("2024-13", "expected a month, YYYY-MM"),
        ("2024-09 - 2024-10", "expected a month, YYYY-MM"),
    ],
)
def test_a_bad_period_is_one_line_before_any_work(tmp_path, value, message):
    done = run("compare", "--period", value, cwd=tmp_path)
    assert done.returncode == 2 and message in done.stderr and "Traceback" not in done.stderr
    assert not (tmp_path / "ersattning.db").exists()  # refused before a store was opened, let alone filled


def test_coverage_counts_a_decision_to_the_day_before_its_end():
    """A decision's end date is the first day it is not in force (docs/models.md): one ending on 1 March covers
    January and February, not March; one without an end covers every month from its start."""
    visits = pd.DataFrame({"planned_start": pd.to_datetime(["2024-01-05", "2024-02-10", "2024-03-03", "2024-03-20"])})
    decisions = pd.DataFrame({"valid_from": pd.to_datetime(["2024-01-01"]), "valid_to": pd.to_datetime(["2024-03-01"])})

    class Proj:  # the three tables Coverage.of reads
        def __init__(self, decisions: pd.DataFrame) -> None:
            self.visits, self.decisions = visits, decisions
            self.providers = pd.DataFrame({"provider": ["P1", "P2"]})

    cov = Coverage.of(Proj(decisions))  # type: ignore[arg-type]
    assert cov.visit_months == {"2024-01": 1, "2024-02": 1, "2024-03": 2}
    assert cov.decision_months == ["2024-01", "2024-02"] and cov.decisions_open_from is None and cov.providers_registered == 2
    findings = check_coverage(cov, "2024-01", "2024-03", "s.db")
    assert [(f.code, f.value) for f in findings] == [("decisions_not_covered", "2024-03")]
    # a decision ending on 2 March is in force on 1 March: March is covered
    later = Coverage.of(Proj(decisions.assign(valid_to=pd.to_datetime(["2024-03-02"]))))  # type: ignore[arg-type]
    assert later.decision_months == ["2024-01", "2024-02", "2024-03"]
    open_ended = Coverage.of(Proj(decisions.assign(valid_to=pd.NaT)))  # type: ignore[arg-type]
    assert open_ended.decisions_open_from == "2024-01" and open_ended.has_decision("2031-07") and not open_ended.has_decision("2023-12")
    assert Coverage.from_json(json.loads(json.dumps(cov.to_json()))) == cov
    with pytest.raises(PeriodNotCovered, match=r"1 of its 4 months have no visits \(2024-04\)"):
        check_coverage(cov, "2024-01", "2024-04", "s.db")


def test_month_spans_and_the_longest_run():
    assert month_spans(["2024-01", "2024-02", "2024-03", "2024-06", "2024-08", "2024-09"]) == "2024-01 … 2024-03, 2024-06, 2024-08 … 2024-09"
    assert month_spans([]) == "none"
    assert longest_run(["2024-01", "2024-02", "2024-05", "2024-06", "2024-07"]) == ("2024-05", "2024-07")
    assert longest_run(["2023-11", "2023-12", "2024-01", "2024-05"]) == ("2023-11", "2024-01")  # across a year's end
    assert longest_run(["2024-01", "2024-03"]) == ("2024-03", "2024-03")  # of equal runs, the latest


# -- trap 5: validate says ok, compare fails --------------------------------------------------------


def test_a_parameter_dated_after_the_period_start_fails_validate_as_it_fails_compare(tmp_path):
    store = _store(tmp_path, TWO_MONTHS)
    late_cost = ADMIN.replace("hourly_cost: 420", "hourly_cost: {values: {2024-10-01: 420}, assumption: true}")
    scenario = _year_scenario(tmp_path, admin=late_cost)
    expected = "admin.hourly_cost has no value on 2024-09-01 (its first value is from 2024-10-01)"
    for args in (["validate", scenario], ["validate", scenario, "--store", store], ["compare", scenario, "--store", store]):
        done = run(*args, "--period", "2024-09..2024-10", env=ENV)
        assert done.returncode == 2 and expected in done.stderr, (args, done.stderr)
    # from October on the parameter has a value: validate and compare agree that October settles
    # (30 min at 485 SEK/h = 242.50)
    assert run("validate", scenario, "--store", store, "--period", "2024-10", env=ENV).returncode == 0
    done = run("compare", scenario, "--store", store, "--period", "2024-10", "--format", "json", "--no-suppress", env=ENV)
    assert done.returncode == 0 and json.loads(done.stdout)["models"][0]["cost_sek"] == 242.50


# -- trap 6: no invented figures ------------------------------------------------------------------


def test_a_named_store_is_never_created_or_filled_with_a_demo_region(tmp_path):
    missing = tmp_path / "missing.db"
    done = run("compare", "--store", f"sqlite:///{missing}", cwd=tmp_path)
    assert done.returncode == 2 and "no store at" in done.stderr and not missing.exists()
    assert not (tmp_path / "ersattning.db").exists()

    # an empty store (an import that failed before its first row): an error naming it, still empty
    from ersattning.store import open_store

    empty = f"sqlite:///{tmp_path / 'empty.db'}"
    open_store(empty, create=True).close()
    for args in (["compare", "--store", empty], ["validate", "--store", empty]):
        done = run(*args, cwd=tmp_path, env={"ERSATTNING_STORE": ""})
        assert done.returncode == 2 and "empty.db is empty" in done.stderr and "ersattning import" in done.stderr, (args, done.stderr)
    assert open_store(empty, create=False).position() == 0
    done = run("compare", cwd=tmp_path, env={"ERSATTNING_STORE": empty})  # named by the environment
    assert done.returncode == 2 and "is empty" in done.stderr

    # a scenario's store: line names a store; it never creates one
    text = (Path(__file__).parents[1] / "ersattning" / "scenarios" / "default.yaml").read_text(encoding="utf-8")
    named = _write(tmp_path / "named.yaml", f"store: sqlite:///{tmp_path / 'scenario.db'}\n" + text)
    done = run("compare", named, cwd=tmp_path)
    assert done.returncode == 2 and "no store at" in done.stderr and not (tmp_path / "scenario.db").exists()


def test_every_output_of_a_synthetic_region_says_so(tmp_path):
    store = f"sqlite:///{tmp_path / 'synth.db'}"
    assert run("synth", "--recipients", "40", "--months", "1", "--start", "2024-03", "--store", store).returncode == 0
    html, xlsx = tmp_path / "r.html", tmp_path / "r.xlsx"
    done = run("compare", "--store", store, "--period", "2024-03", "--html", str(html), "--xlsx", str(xlsx))
    assert done.returncode == 0, done.stderr
    assert "synthetic demo region, not from real data" in done.stdout.split("model ")[0]  # at the top of the table
    assert "[demo_data]" in done.stderr
    doc = json.loads(run("compare", "--store", store, "--period", "2024-03", "--format", "json").stdout)
    assert doc["manifest"]["demo"] is True and doc["warnings"][0]["code"] == "demo_data"
    page = html.read_text(encoding="utf-8")
    assert 'id="demo-warning"' in page and "syntetisk demoregion" in page
    from openpyxl import load_workbook

    rows = [[c.value for c in row] for row in load_workbook(xlsx)["Körning"].iter_rows()]
    assert ["Syntetiska demodata", "ja"] in rows


# -- trap 12: implausible data passes ----------------------------------------------------------------

# one recipient granted 690 minutes of personal care a month from 1 September (an open decision)
GRANTED_690 = "B1,D1,P1,personal_care,690,month,2024-09-01,,urban,1940\n"
ONE_HOUR = "B1,P1,V1,personal_care,2024-09-02 08:00,2024-09-02 09:00,2024-09-02 08:00,2024-09-02 09:00,S1,performed\n"


def test_performed_time_far_below_granted_is_warned_of_everywhere(tmp_path):
    store = _store(tmp_path, ONE_HOUR, GRANTED_690)
    scenario = _year_scenario(tmp_path)
    # performed / granted = 60 / (690 × 30/30) = 0.0870, outside 0.5–1.1 (Stockholm's providers billed 79–86 %)
    done = run("compare", scenario, "--store", store, "--period", "2024-09", "--format", "json", "--no-suppress", env=ENV)
    assert done.returncode == 0, done.stderr
    found = {w["code"]: w for w in json.loads(done.stdout)["warnings"]}
    w = found["performed_to_granted_out_of_range"]
    assert w["value"] == pytest.approx(60 / 690) and w["expected"] == "0.5–1.1" and "79–86 %" in w["source"]
    assert "performed time / granted time is 0.087, outside the plausible range 0.5–1.1" in w["message"]
    assert "[performed_to_granted_out_of_range]" in done.stderr and "0.087" in done.stderr
    table = run("compare", scenario, "--store", store, "--period", "2024-09", "--no-suppress", env=ENV).stdout
    assert "performed time / granted time is 0.087" in table.split("model ")[0]
    assert run("validate", scenario, "--store", store, "--period", "2024-09", env=ENV).stderr.count("[performed_to_granted_out_of_range]") == 1

    # the region is one person: with suppression on the warning names the figure and range, never the value
    hidden = run("compare", scenario, "--store", store, "--period", "2024-09", "--format", "json", env=ENV)
    w = {w["code"]: w for w in json.loads(hidden.stdout)["warnings"]}["performed_to_granted_out_of_range"]
    assert w["value"] is None and "0.087" not in hidden.stderr and "0.087" not in hidden.stdout


def test_a_plausible_ratio_is_not_warned_of(tmp_path):
    # 60 granted minutes, 60 performed: performed / granted = 1.0, inside 0.5–1.1
    store = _store(tmp_path, ONE_HOUR, GRANTED_690.replace(",690,", ",60,"))
    done = run("compare", _year_scenario(tmp_path), "--store", store, "--period", "2024-09", "--format", "json", "--no-suppress", env=ENV)
    codes = [w["code"] for w in json.loads(done.stdout)["warnings"]]
    assert "performed_to_granted_out_of_range" not in codes
    # one visit in 30 days at home: 0.033 visits a recipient-day, outside 0.3–6
    assert "visits_per_recipient_day_out_of_range" in codes


def test_every_range_has_a_source_and_its_edges_are_inside():
    from ersattning.checks import plausibility

    for figure, r in RANGES.items():
        assert r.source and r.low < r.high
        assert plausibility({figure: r.low}) == [] and plausibility({figure: r.high}) == []
        assert [f.code for f in plausibility({figure: r.high * 1.01 + 1e-9})] == [r.code]
        if r.low > 0:
            assert [f.code for f in plausibility({figure: r.low * 0.99})] == [r.code]
    assert plausibility({"performed_to_granted": float("nan"), "share_night": None}) == []
    assert np.isfinite(RANGES["performed_to_granted"].low)


# -- trap 10 for compare: an interrupted demo is finished, a part of a region is never compared ----------


def test_ctrl_c_in_compare_is_one_line_and_the_interrupted_demo_is_finished_by_the_rerun(tmp_path):
    import os
    import signal
    import subprocess

    from tests.support import wait_for_first_commit
    from tests.test_cli import EXE

    text = (Path(__file__).parents[1] / "ersattning" / "scenarios" / "default.yaml").read_text(encoding="utf-8")
    scenario = _write(tmp_path / "demo.yaml", text + "demo_region: {recipients: 400, seed: 3}\n")
    env = {k: v for k, v in os.environ.items() if k != "ERSATTNING_STORE"}
    proc = subprocess.Popen([*EXE, "compare", scenario], cwd=tmp_path, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env)
    wait_for_first_commit(proc, tmp_path / "ersattning.db")
    assert proc.poll() is None, "the demo was written before it could be interrupted"
    proc.send_signal(signal.SIGINT)
    _, err = proc.communicate(timeout=120)
    assert proc.returncode == 130, err
    assert "ersattning: interrupted: nothing is half-written" in err and "Aborted!" not in err and "Traceback" not in err

    # the unfinished demo region is not compared as it stands: the rerun finishes it first
    history = json.loads(run("history", "--format", "json", cwd=tmp_path).stdout)
    assert history["synthetic"]["finished"] is False
    done = run("compare", scenario, "--format", "json", cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    assert "finishing the synthetic demo region" in done.stderr
    assert json.loads(run("history", "--format", "json", cwd=tmp_path).stdout)["synthetic"]["finished"] is True
    assert json.loads(done.stdout)["manifest"]["demo"] is True

    # a named store holding an unfinished region is an error giving the command that finishes it
    partial = tmp_path / "partial.db"
    proc = subprocess.Popen([*EXE, "synth", "--recipients", "2000", "--months", "2", "--store", f"sqlite:///{partial}"], cwd=tmp_path, stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=env)
    wait_for_first_commit(proc, partial)
    proc.send_signal(signal.SIGTERM)
    proc.communicate(timeout=120)
    if proc.returncode == 0:
        pytest.skip("the region was written before the signal arrived")
    refused = run("compare", "--store", f"sqlite:///{partial}", "--period", "2024-01..2024-02", cwd=tmp_path)
    assert refused.returncode == 2 and "holds an unfinished synthetic region" in refused.stderr
    assert "finish it first: ersattning synth --recipients 2000 --months 2" in refused.stderr
    # validate fails where compare would
    assert run("validate", "--store", f"sqlite:///{partial}", "--period", "2024-01..2024-02", cwd=tmp_path).returncode == 2
