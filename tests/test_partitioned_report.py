"""The report and its analyses on a comparison settled in recipient partitions: every table, the break-even,
tornado, sweep and uncertainty equal the one-process ones, to the öre and with the same cells hidden."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile
from dataclasses import fields
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest
import yaml
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from ersattning.analysis import Axis, Evaluator, sensitivity, sweep, uncertainty
from ersattning.analysis.engine import PointPart, paid_provider_months
from ersattning.compare import Comparison, compare
from ersattning.exact import exact_bincount
from ersattning.partitioned import runner
from ersattning.partitioned.runner import InlinePool, PartitionedEvaluator, compare_partitioned
from ersattning.report.tables import ReportTables, build_tables
from ersattning.scenario import Scenario, resolve_scenario_path
from tests.test_analysis import analysis_scenario
from tests.test_partitioned import region, settled

EXE = [sys.executable, "-m", "ersattning.cli.main"]


def analyses(c: Comparison, sc: Scenario) -> list[Any]:
    """The break-even first (as ``compare`` prints it), then a tornado, a two-way sweep and, with distributions, the uncertainty."""
    from ersattning.analysis.breakeven import break_even_summary

    break_even_summary(c)
    out: list[Any] = [sensitivity(c)]
    names = [e.name for e, _ in sc.models]
    out.append(sweep(c, [Axis(f"models.{names[1]}.prices", 0.8, 1.2, 3), Axis("admin.hourly_cost", 400, 600, 2)]))
    if any(p.distribution is not None for p in _params(sc)):
        out.append(uncertainty(c, 6, seed=3))
    return out


def _params(sc: Scenario) -> list[Any]:
    from ersattning.analysis.paths import scenario_parameters

    return list(scenario_parameters(sc).values())


def assert_tables_equal(a: ReportTables, b: ReportTables) -> None:
    for f in fields(ReportTables):
        x, y = getattr(a, f.name), getattr(b, f.name)
        if isinstance(x, pd.DataFrame):
            pd.testing.assert_frame_equal(x, y, check_exact=True, obj=f.name)
        elif f.name == "manifest":
            assert {k: v for k, v in x.items() if k != "created_at"} == {k: v for k, v in y.items() if k != "created_at"}
        else:
            assert x == y, f.name


@pytest.fixture(scope="module")
def analysis_path(tmp_path_factory: pytest.TempPathFactory) -> str:
    return str(analysis_scenario(tmp_path_factory.mktemp("scenario")))


@pytest.fixture(scope="module")
def own_minutes_path(tmp_path_factory: pytest.TempPathFactory) -> str:
    """karlskrona with the team model's own minutes per invoice line: a behaviour assumption that leaves the visits alone."""
    data = yaml.safe_load(resolve_scenario_path("karlskrona").read_text(encoding="utf-8"))
    data["models"][1]["behaviour"] = {"admin_minutes": {"invoice_line": {"values": {"2024-01-01": 1.5}, "low": 1, "high": 2, "assumption": True}}}
    out = tmp_path_factory.mktemp("scenario") / "own_minutes.yaml"
    out.write_text(yaml.safe_dump(data, allow_unicode=True), encoding="utf-8")
    return str(out)


@settings(max_examples=10, deadline=None, suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture])
@given(
    recipients=st.integers(4, 30),
    months=st.integers(1, 2),
    seed=st.integers(0, 10_000),
    providers=st.integers(1, 5),
    partitions=st.integers(1, 4),
    scenario=st.sampled_from(["analysis", "own_minutes", "default", "karlskrona", "solna"]),
    suppress=st.booleans(),
)
def test_partitioned_report_tables_and_analyses_equal_single_process(
    analysis_path: str, own_minutes_path: str, recipients: int, months: int, seed: int, providers: int, partitions: int, scenario: str, suppress: bool
) -> None:
    sc = settled({"analysis": analysis_path, "own_minutes": own_minutes_path}.get(scenario, scenario), months)  # the period from the generated spec
    with tempfile.TemporaryDirectory() as d:
        store = region(d, recipients, months, seed, providers)
        single = compare(sc, store, suppress=suppress)
        parted, _ = compare_partitioned(sc, store, partitions=partitions, suppress=suppress, pool=InlinePool(), break_even=False)
        assert isinstance(Evaluator.of(parted), PartitionedEvaluator)
        one, many = analyses(single, sc), analyses(parted, sc)
        for a, b in zip(one, many, strict=True):
            assert json.dumps(a.to_json(), sort_keys=True) == json.dumps(b.to_json(), sort_keys=True)
        assert_tables_equal(build_tables(single, one), build_tables(parted, many))


def test_points_give_cost_admin_hours_and_continuity_on_partitions(own_minutes_path: str, tmp_path: Path) -> None:
    """Every kind of point: a price (cost), an admin assumption (hours of every model), a model's own admin minutes
    (its behaviour changed: continuity gathered again), on 3 partitions and in one process."""
    sc = settled(own_minutes_path, 2)  # the region's two months; the trust-based model counts invoice lines per provider-month and dialogue meetings per team-month
    store = region(str(tmp_path), 24, 2, 5, 3)
    single = compare(sc, store, suppress=False)
    parted, _ = compare_partitioned(sc, store, partitions=3, suppress=False, pool=InlinePool(), break_even=False)
    a, b = Evaluator.of(single), Evaluator.of(parted)
    names = a.names
    points: list[dict[str, float]] = [{f"models.{n}.prices": 1.07} for n in names] + [{"admin.hourly_cost": 700.0}, {"models.team.prices": 0.9, "admin.hourly_cost": 510.0}]
    points += [{"models.team.behaviour.admin_minutes.invoice_line": 2.0}, {"admin.minutes_per_act.correction": 12.0}]
    got_a, got_b = a.evaluate_many(points), b.evaluate_many(points)
    for point, x, y in zip(points, got_a, got_b, strict=True):
        assert x == y, point
    assert a.settles == b.settles
    # by hand: an hourly cost only scales every model's admin cost, not its hours; a price factor moves only its model's cost
    assert got_a[len(names)].admin_hours == a.base.admin_hours and got_a[len(names)].cost == a.base.cost
    first = got_a[0]
    assert first.cost[names[0]] == pytest.approx(1.07 * a.base.cost[names[0]], rel=1e-9)
    assert all(first.cost[n] == a.base.cost[n] for n in names[1:])
    own = got_a[-2]  # the team model's own minutes per invoice line 1.5 → 2: its hours grow by invoice lines × 0.5 / 60
    lines = float(single.admin[(single.admin["model"] == "team") & (single.admin["act"] == "invoice_line")]["count"].iloc[0])
    assert lines > 0 and own.admin_hours["team"] == pytest.approx(a.base.admin_hours["team"] + lines * 0.5 / 60, rel=1e-12)
    assert own.continuity == a.base.continuity and own.cost == a.base.cost


def test_paid_provider_months_by_hand() -> None:
    """Masks where every amount is ≥ 0; exact sums where amounts cancel across partitions (+5 here, −5 there: none paid)."""

    def part(mask: list[bool] | None, amounts: list[float] | None) -> PointPart:
        bins = None if amounts is None else {"x": exact_bincount(np.arange(len(amounts)), np.array(amounts), len(amounts))}
        return PointPart({}, {}, None if mask is None else np.packbits(np.array(mask)), bins, np.zeros(0, dtype=np.int64), None)

    assert paid_provider_months([part([True, False, False], None), part([False, False, True], None)]) == 2.0
    assert paid_provider_months([part(None, [5.0, 0.0, 1.0]), part(None, [-5.0, 0.0, 0.0])]) == 1.0
    assert paid_provider_months([part([True, False, False], None), part(None, [-5.0, 0.0, 0.0])]) is None  # ask every piece for sums


def test_a_point_settled_again_with_exact_sums_when_amounts_cancel(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """When one partition sends a mask and another sums, the point is settled again with sums everywhere (same outcome)."""
    sc = settled("karlskrona", 2)  # the region's two months
    store = region(str(tmp_path), 20, 2, 8, 2)
    single = compare(sc, store, suppress=False)
    parted, _ = compare_partitioned(sc, store, partitions=2, suppress=False, pool=InlinePool(), break_even=False)
    from ersattning.analysis import engine

    calls: list[bool] = []
    original = engine.point_part

    def first_partition_cancels(s: Any, acts: Any, windows: Any, exact_bins: bool = False) -> PointPart:
        calls.append(exact_bins)
        return original(s, acts, windows, exact_bins or len(calls) == 1)  # the first piece sends sums, as if it had a negative amount

    monkeypatch.setattr(engine, "point_part", first_partition_cancels)
    point = {"models.team.prices": 1.3}
    y = Evaluator.of(parted).evaluate(point)
    monkeypatch.undo()
    assert y == Evaluator.of(single).evaluate(point)
    assert calls == [False, False, True, True]


# -- the command line ----------------------------------------------------------------------


def _cli(*args: str) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if k not in ("ERSATTNING_STORE", runner.SCHEDULER_ENV)}
    return subprocess.run([*EXE, *args], capture_output=True, text=True, env=env, timeout=900)


def _sheets(path: Path) -> dict[str, list[tuple[Any, ...]]]:
    from openpyxl import load_workbook

    book = load_workbook(path)
    return {ws.title: [tuple(c.value for c in row) for row in ws.iter_rows()] for ws in book.worksheets}


def test_cli_report_in_partitions_writes_the_single_process_report(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'region.db'}"
    region(str(tmp_path), 30, 2, 11, 3)
    out = {}
    for label, extra in (("one", ["--partitions", "0"]), ("three", ["--partitions", "3"])):
        html, xlsx = tmp_path / f"{label}.html", tmp_path / f"{label}.xlsx"
        done = _cli("report", "karlskrona", "--store", url, "--period", "2024-01..2024-02", "--html", str(html), "--xlsx", str(xlsx), "--lang", "en", *extra)
        assert done.returncode == 0, done.stderr
        assert "one process" not in done.stderr and "Traceback" not in done.stderr
        out[label] = (html.read_text(encoding="utf-8"), _sheets(xlsx))
    assert Path(str(tmp_path / "region.db") + ".projection", "partitions").is_dir()  # it did settle in partitions
    sheets_one, sheets_three = out["one"][1], out["three"][1]
    assert sheets_one.keys() == sheets_three.keys()
    for name in sheets_one:
        rows_one = [r for r in sheets_one[name] if not _stamped(r)]
        rows_three = [r for r in sheets_three[name] if not _stamped(r)]
        assert rows_one == rows_three, name
    assert _without_stamps(out["one"][0]) == _without_stamps(out["three"][0])


def _stamped(row: tuple[Any, ...]) -> bool:
    """The manifest's creation time and the store's projection are the only cells that may differ."""
    return any(isinstance(v, str) and ("created_at" in v or "Created" in v or "Skapad" in v) for v in row)


def _without_stamps(html: str) -> str:
    import re

    return re.sub(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d[+\-Z0-9:]*", "<time>", html)


def test_cli_analyses_and_compare_report_in_partitions(tmp_path: Path) -> None:
    """sensitivity and compare --html print the same in partitions as in one process; --as-of stays in one process and says so."""
    url = f"sqlite:///{tmp_path / 'region.db'}"
    region(str(tmp_path), 25, 1, 4, 3)
    period = ("--period", "2024-01..2024-01")  # the one month the region holds
    one = _cli("sensitivity", "--store", url, *period, "--format", "json", "--partitions", "0")
    three = _cli("sensitivity", "--store", url, *period, "--format", "json", "--partitions", "3")
    assert one.returncode == 0 and three.returncode == 0, one.stderr + three.stderr
    assert json.loads(one.stdout) == json.loads(three.stdout)
    html = tmp_path / "r.html"
    done = _cli("compare", "--store", url, *period, "--format", "json", "--partitions", "2", "--html", str(html))
    assert done.returncode == 0 and html.exists(), done.stderr
    assert "one process" not in done.stderr
    as_of = _cli("report", "--store", url, *period, "--partitions", "2", "--html", str(tmp_path / "a.html"), "--as-of", "2030-01-01")
    assert as_of.returncode == 0, as_of.stderr
    assert "settling in one process: --as-of refolds the store at a time" in as_of.stderr


# -- real processes ---------------------------------------------------------------------------


def test_report_on_a_local_cluster_and_on_a_reopened_pool(tmp_path: Path) -> None:
    """The points go through Dask to two worker processes (the pool kept open, then released); a comparison whose
    own pool was closed opens a new one for its report. Both give the one-process tables."""
    sc = settled("karlskrona", 2)  # the region's two months
    store = region(str(tmp_path), 30, 2, 13, 3)
    single = compare(sc, store, suppress=False)
    expected = build_tables(single)
    on_cluster, stats = compare_partitioned(sc, store, partitions=3, workers=2, suppress=False, break_even=False, keep_pool=True)
    try:
        assert_tables_equal(build_tables(on_cluster), expected)
        assert stats.mode.startswith("dask LocalCluster") and os.getpid() not in stats.worker_peaks()
    finally:
        runner.release(on_cluster)
    assert Evaluator.of(on_cluster).pool is None  # type: ignore[attr-defined]
    reopened, _ = compare_partitioned(sc, store, partitions=2, suppress=False)  # its pool closed when it returned
    try:
        assert_tables_equal(build_tables(reopened), expected)
    finally:
        runner.release(reopened)
