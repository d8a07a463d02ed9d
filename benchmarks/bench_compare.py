"""Compare benchmark: settlement and indicator throughput, and the region-year compare.

    python benchmarks/bench_compare.py [--store sqlite:///PATH] [--workdir DIR] [--recipients 20000]

Uses (or first writes) a synthetic 12-month region in the given store, warms its
projection, then measures from that warm projection. Prints its figures and,
as the last line, one JSON object. The naive baseline is the tests' per-visit
reference implementation of the per-minute rules (tests/reference.py), run on
a sample in the same run. Targets (issue 3): ≥ 20M visits/s per model,
continuity ≥ 10M visits/s, the default scenario on a 12-month 20,000-recipient
region ≤ 15 s from a warm projection.
"""

from __future__ import annotations

import argparse
import json
import platform
import resource
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "benchmarks"))

import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402
from region import median_time, region_store  # noqa: E402

from ersattning import __version__, projection  # noqa: E402
from ersattning.compare import compare, model_indicators  # noqa: E402
from ersattning.context import build_context  # noqa: E402
from ersattning.indicators import _continuity_windows, shared_indicators  # noqa: E402
from ersattning.scenario import load_scenario  # noqa: E402
from ersattning.store import open_store  # noqa: E402
from tests import reference  # noqa: E402


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--store", default=None, help="an existing store with a 12-month region")
    ap.add_argument("--workdir", default="/tmp/ersattning-bench", help="where to keep the region between runs")
    ap.add_argument("--recipients", type=int, default=20000)
    ap.add_argument("--repeat", type=int, default=5)
    ap.add_argument("--sample-days", type=int, default=2, help="days of visits the naive loop settles")
    args = ap.parse_args()

    url, store = region_store(args.store, args.workdir, args.recipients)

    scenario = load_scenario("default")

    # -- the whole compare from the warm projection (a new process's view of the cache) -----
    def whole() -> object:
        return compare(load_scenario("default"), open_store(url, create=False))

    compare_s, result = median_time(whole, args.repeat)
    region_visits = result.ctx.n_visits  # type: ignore[attr-defined]
    print(f"compare, default scenario: {compare_s:.1f} s (median of {args.repeat}) for {region_visits:,} visits, {result.manifest['recipients']:,} recipients")  # type: ignore[attr-defined]

    # -- parts: load, context, each model, indicators ------------------------------------
    def load() -> object:
        store.projection_cache = None
        return projection.load(store)

    load_s, proj = median_time(load, args.repeat)
    context_s, ctx = median_time(lambda: build_context(proj, "2024-01", "2024-12"), args.repeat)
    print(f"warm projection load {load_s:.2f} s; settlement context {context_s:.2f} s")
    if ctx.n_visits < 10_000_000:
        # throughput is measured on at least 10M visits: the region's visits, each repeated
        k = -(-10_000_000 // ctx.n_visits)
        tiled = projection.Projection(
            pd.concat([proj.visits] * k, ignore_index=True), proj.recipients, proj.decisions, proj.stays, proj.providers,
            proj.provider_choices, proj.position, proj.as_of, proj.store_id, pd.concat([proj.visit_keys] * k, ignore_index=True),
        )  # fmt: skip
        ctx = build_context(tiled, "2024-01", "2024-12")
        print(f"throughput below on {ctx.n_visits:,} visits (each visit of the region {k} times)")
    n_visits = ctx.n_visits
    per_model = {}
    for entry, model in scenario.models:
        ctx.cache.clear()
        model.settle(ctx)  # warm-up: the context's shared per-visit arrays are built on first use
        seconds, _ = median_time(lambda m=model: m.settle(ctx), args.repeat)
        per_model[entry.name] = {"kind": model.kind, "seconds": round(seconds, 3), "visits_per_s": round(n_visits / seconds)}
        print(f"  {entry.name:<12} {model.kind:<15} {n_visits / seconds / 1e6:7.1f} M visits/s ({seconds:.3f} s)")

    def fresh_continuity() -> object:
        ctx.cache.pop("continuity", None)
        return _continuity_windows(ctx)

    continuity_s, _ = median_time(fresh_continuity, args.repeat)

    def fresh_indicators() -> object:
        ctx.cache.clear()
        return shared_indicators(ctx)

    indicators_s, _ = median_time(fresh_indicators, args.repeat)
    print(f"  continuity   {n_visits / continuity_s / 1e6:7.1f} M visits/s ({continuity_s:.3f} s); all shared indicators {n_visits / indicators_s / 1e6:.1f} M visits/s")
    settled = scenario.model(scenario.spec.baseline).settle(ctx)
    model_ind_s, _ = median_time(lambda: (setattr(settled, "_provider_months", None), model_indicators(settled)), args.repeat)
    print(f"  model indicators of {scenario.spec.baseline} (paid/unpaid minutes, marginal revenue, volatility): {n_visits / model_ind_s / 1e6:.1f} M visits/s")

    # -- naive baseline: the per-visit reference implementation on a sample ----------------
    per_minute = scenario.model(scenario.spec.baseline)
    sample = proj.service_period("2024-03-04", str((pd.Timestamp("2024-03-04") + pd.Timedelta(days=args.sample_days)).date()))
    t = time.perf_counter()
    rows = reference.settle_performed_time(per_minute, sample, "2024-03", "2024-03")
    naive_s = time.perf_counter() - t
    naive_rate = len(rows) / naive_s
    sample_ctx = build_context(sample, "2024-03", "2024-03")
    _, sample_settled = median_time(lambda: per_minute.settle(sample_ctx), 1)
    assert np.allclose([sum(r.values()) for r in rows], sum(sample_settled.visit.values()))  # same rules, same amounts
    fast_rate = per_model[scenario.spec.baseline]["visits_per_s"]
    print(f"naive per-visit loop: {naive_rate:,.0f} visits/s on {len(rows):,} visits; vectorized {fast_rate / naive_rate:,.0f}× faster")

    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    out = {
        "benchmark": "compare",
        "version": __version__,
        "python": platform.python_version(),
        "store": url,
        "region_visits": region_visits,
        "throughput_visits": n_visits,
        "recipients": result.manifest["recipients"],  # type: ignore[attr-defined]
        "compare_default_s": round(compare_s, 2),
        "warm_load_s": round(load_s, 2),
        "context_s": round(context_s, 2),
        "models": per_model,
        "continuity_visits_per_s": round(n_visits / continuity_s),
        "indicators_visits_per_s": round(n_visits / indicators_s),
        "model_indicators_visits_per_s": round(n_visits / model_ind_s),
        "naive_sample_visits": len(rows),
        "naive_visits_per_s": round(naive_rate),
        "ratio_vs_naive": round(fast_rate / naive_rate),
        "peak_rss_mb": round(peak),
        "targets_met": {
            "visits_ge_10m": n_visits >= 10_000_000,
            "each_model_ge_20m_per_s": all(m["visits_per_s"] >= 20_000_000 for m in per_model.values()),
            "continuity_ge_10m_per_s": n_visits / continuity_s >= 10_000_000,
            "compare_le_15s": compare_s <= 15,
        },
    }
    print(json.dumps(out))


if __name__ == "__main__":
    main()
