"""Sensitivity and uncertainty benchmark: points settled on one context against rebuilding the comparison per point.

    python benchmarks/bench_sensitivity.py [--store sqlite:///PATH] [--repeat 3] [--naive-points 2]

Runs on an existing 12-month region (default: the 20,000-recipient region the
other benchmarks write, /tmp/ersattning-bench/region-20000.db), opened with
create=False and only read. The scenario is the bundled default with ranges on
20 parameters (models and admin; ±10 %, assumptions) and a distribution on
every price (rates, fees, tier amounts). Measured, median of ``--repeat`` runs,
each with a fresh evaluator: a one-way sensitivity of the 20 parameters (40
runs) and 200 uncertainty draws, each after the one compare that builds the
projection and the context. The naive baseline rebuilds the comparison from
scratch per point (a new store object, the projection loaded from its cache,
the context, every model settled: what running ``compare`` per point costs); it
is timed on ``--naive-points`` points, checked equal to the fast result there,
and extrapolated. Targets (issue 13): sensitivity ≤ 60 s, 200 draws ≤ 120 s, on
10M visits and 2 cores. Prints its figures and, last, one JSON object.
"""

from __future__ import annotations

import argparse
import json
import platform
import resource
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "benchmarks"))

import yaml  # noqa: E402
from region import median_time  # noqa: E402

from ersattning import __version__  # noqa: E402
from ersattning.analysis import Evaluator, sensitivity, uncertainty, with_values  # noqa: E402
from ersattning.analysis.sensitivity import ranged  # noqa: E402
from ersattning.compare import compare  # noqa: E402
from ersattning.scenario import load_scenario, resolve_scenario_path  # noqa: E402
from ersattning.store import open_store  # noqa: E402

STORE = "sqlite:////tmp/ersattning-bench/region-20000.db"
RANGED = [  # 20 parameters: 10 of the baseline, 7 of the alternatives, 3 admin assumptions
    ("models", 0, "params", "rates", "personal_care"),
    ("models", 0, "params", "rates", "service"),
    ("models", 0, "params", "rates", "private_personal_care"),
    ("models", 0, "params", "rates", "private_service"),
    ("models", 0, "params", "uplifts", "weekend"),
    ("models", 0, "params", "uplifts", "major_holiday"),
    ("models", 0, "params", "night_fee", "fee"),
    ("models", 0, "params", "cancellations", "shares", "personal_care"),
    ("models", 0, "params", "stays", "day_shares", 0),
    ("models", 0, "params", "new_client_hours"),
    ("models", 1, "params", "price_factor"),
    ("models", 1, "params", "rates", "personal_care"),
    ("models", 2, "params", "budget_factor"),
    ("models", 2, "params", "rates", "personal_care"),
    ("models", 3, "params", "tiers", 1, "amount"),
    ("models", 3, "params", "tiers", 2, "amount"),
    ("models", 3, "params", "quality", "bonus_share"),
    ("admin", "hourly_cost"),
    ("admin", "minutes_per_act", "registration"),
    ("admin", "minutes_per_act", "dialogue_meeting"),
]
PRICES = [  # every price of every model: normal, sd 3 % of the value (an assumption)
    *(("models", i, "params", "rates", g) for i in range(3) for g in ("personal_care", "service", "private_personal_care", "private_service")),
    ("models", 0, "params", "night_fee", "fee"),
    ("models", 0, "params", "night_fee", "private_fee"),
    *(("models", 3, "params", "tiers", k, "amount") for k in range(5)),
]


def _node(data: Any, path: tuple[Any, ...]) -> dict[str, Any]:
    for k in path[:-1]:
        data = data[k]
    if not isinstance(data[path[-1]], dict):
        data[path[-1]] = {"values": {"2024-01-01": data[path[-1]]}, "assumption": True}
    node: dict[str, Any] = data[path[-1]]
    return node


def bench_scenario(directory: Path) -> Path:
    """The default scenario with ±10 % ranges on RANGED and a distribution on PRICES (written to ``directory``)."""
    data = yaml.safe_load(resolve_scenario_path("default").read_text(encoding="utf-8"))
    for path in RANGED:
        node = _node(data, path)
        value = float(next(iter(node["values"].values())))
        node.update(low=round(value * 0.9, 6), high=round(value * 1.1, 6))
    for path in PRICES:
        node = _node(data, path)
        value = float(next(iter(node["values"].values())))
        node["distribution"] = {"kind": "normal", "sd": round(value * 0.03, 6), "assumption": True}
    out = directory / "bench-sensitivity.yaml"
    out.write_text(yaml.safe_dump(data, allow_unicode=True), encoding="utf-8")
    return out


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--store", default=STORE)
    ap.add_argument("--repeat", type=int, default=3)
    ap.add_argument("--draws", type=int, default=200)
    ap.add_argument("--naive-points", type=int, default=2)
    args = ap.parse_args()

    workdir = Path(tempfile.mkdtemp(prefix="bench-sensitivity-"))
    sc = load_scenario(bench_scenario(workdir))
    store = open_store(args.store, create=False)

    compare_s, c = median_time(lambda: compare(sc, store), 1)
    n_visits = c.ctx.n_visits
    print(f"compare (projection, context, every model): {compare_s:.1f} s for {n_visits:,} visits, {c.manifest['recipients']:,} recipients", flush=True)

    params = ranged(c)
    assert len(params) == 20, params
    sens_s, sens = median_time(lambda: sensitivity(c, params, evaluator=Evaluator(c)), args.repeat)
    print(f"sensitivity: {len(params)} parameters, {sens.manifest['runs']} runs, {sens.manifest['settlements']} settlements: {sens_s:.1f} s (median of {args.repeat}); with the compare {compare_s + sens_s:.1f} s", flush=True)
    unc_s, unc = median_time(lambda: uncertainty(c, args.draws, seed=1, evaluator=Evaluator(c)), args.repeat)
    print(f"uncertainty: {args.draws} draws of {len(unc.manifest['parameters'])} prices, {unc.manifest['settlements']} settlements: {unc_s:.1f} s (median of {args.repeat}); with the compare {compare_s + unc_s:.1f} s", flush=True)
    print("  methods: " + "; ".join(f"{m}: {how}" for m, how in unc.manifest["methods"].items()))

    # -- naive baseline: the comparison rebuilt from scratch for each point ------------------
    points = [{params[i]: float(sens.rows[sens.rows["parameter"] == params[i]]["low"].iloc[0])} for i in range(args.naive_points)]
    naive_times = []
    for point in points:
        t = time.perf_counter()
        again = compare(with_values(sc, point), open_store(args.store, create=False))
        naive_times.append(time.perf_counter() - t)
        fast = Evaluator(c).evaluate(point)
        for m in fast.cost:
            naive_cost = float(again.models.set_index("model").loc[m, "cost_sek"])
            assert abs(naive_cost - fast.cost[m]) < 1e-6 * max(abs(naive_cost), 1), (point, m, naive_cost, fast.cost[m])
    naive_point_s = statistics.median(naive_times)
    naive_sens_s = naive_point_s * 2 * len(params)
    naive_unc_s = naive_point_s * args.draws
    print(f"naive: {naive_point_s:.1f} s per point (median of {len(points)}, equal to the fast result) → sensitivity ≈ {naive_sens_s:.0f} s, {args.draws} draws ≈ {naive_unc_s:.0f} s")

    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    sens_total, unc_total = compare_s + sens_s, compare_s + unc_s
    out = {
        "benchmark": "sensitivity",
        "version": __version__,
        "python": platform.python_version(),
        "store": args.store,
        "visits": int(n_visits),
        "compare_s": round(compare_s, 2),
        "sensitivity_parameters": len(params),
        "sensitivity_runs": sens.manifest["runs"],
        "sensitivity_s": round(sens_s, 2),
        "sensitivity_with_compare_s": round(sens_total, 2),
        "uncertainty_draws": args.draws,
        "uncertainty_s": round(unc_s, 2),
        "uncertainty_with_compare_s": round(unc_total, 2),
        "naive_point_s": round(naive_point_s, 2),
        "naive_sensitivity_s_extrapolated": round(naive_sens_s),
        "naive_uncertainty_s_extrapolated": round(naive_unc_s),
        "ratio_vs_naive": {"sensitivity": round(naive_sens_s / sens_total, 1), "uncertainty": round(naive_unc_s / unc_total, 1)},
        "peak_rss_mb": round(peak),
        "targets_met": {"sensitivity_le_60s": sens_total <= 60, "uncertainty_200_draws_le_120s": unc_total <= 120},
    }
    print(json.dumps(out))


if __name__ == "__main__":
    main()
