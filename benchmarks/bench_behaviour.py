"""Behaviour benchmark: a staff re-assignment (team rule) for the whole region-year.

    python benchmarks/bench_behaviour.py [--store sqlite:///PATH] [--repeat 3]

Opens an existing 12-month region store read-only (``create=False``; nothing is
written to it), builds the projection and settlement context once, then
measures ``ersattning.behaviour.apply`` with a team rule (each recipient served
by a team of k staff) followed by the continuity indicator on the
counterfactual history — first cold (who served whom is counted once and
cached on the static context), then the median of runs with a changed team
size. The naive baseline in the same run rebuilds the comparison's input from
scratch for the point (projection load, context, re-assignment, continuity), as
a sweep without a shared context would. Target (issue 13): ≤ 10 s. Prints its
figures and, as the last line, one JSON object.
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

from region import median_time  # noqa: E402

from ersattning import __version__, projection  # noqa: E402
from ersattning.behaviour import Behaviour, apply  # noqa: E402
from ersattning.context import build_context  # noqa: E402
from ersattning.indicators import continuity  # noqa: E402
from ersattning.scenario import load_scenario  # noqa: E402
from ersattning.store import open_store  # noqa: E402


def team(size: int) -> Behaviour:
    return Behaviour.model_validate({"team": {"size": size}})


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--store", default="sqlite:////tmp/ersattning-bench/region-20000.db", help="an existing store with a 12-month region (opened read-only)")
    ap.add_argument("--repeat", type=int, default=3)
    ap.add_argument("--size", type=int, default=10, help="team size k (Skönsmon: about 10 staff met per month)")
    args = ap.parse_args()

    store = open_store(args.store, create=False)
    t = time.perf_counter()
    proj = projection.load(store)
    ctx = build_context(proj, "2024-01", "2024-12")
    setup_s = time.perf_counter() - t
    static = continuity(ctx)
    print(f"projection and context once: {setup_s:.1f} s for {ctx.n_visits:,} visits; static continuity median {static['continuity_median']}")

    def reassign(size: int) -> dict:
        cf = apply(ctx, team(size))
        return {**continuity(cf), "visits_reassigned": cf.transformations[-1]["visits"]}

    t = time.perf_counter()
    cold = reassign(args.size)
    cold_s = time.perf_counter() - t
    print(f"team of {args.size}, cold (who served whom counted once): {cold_s:.2f} s; continuity median {static['continuity_median']} → {cold['continuity_median']}, {cold['visits_reassigned']:,} visits re-assigned")
    sizes = iter([args.size - 1, args.size + 2, args.size] * args.repeat)
    warm_s, _ = median_time(lambda: reassign(next(sizes)), args.repeat)
    print(f"team re-assignment with a changed size (warm), median of {args.repeat}: {warm_s:.2f} s ({ctx.n_visits / warm_s / 1e6:.1f} M visits/s)")

    trust = load_scenario("behaviour").model("trust")
    full_s, cf = median_time(lambda: apply(ctx, trust.behaviour), args.repeat)
    settle_s, _ = median_time(lambda: trust.settle(cf), args.repeat)
    print(f"the bundled trust behaviour (cancellations, consolidation, performed time, team): apply {full_s:.2f} s, settle {settle_s:.2f} s")

    def naive() -> dict:
        fresh = build_context(projection.load(open_store(args.store, create=False)), "2024-01", "2024-12")
        cf = apply(fresh, team(args.size))
        return continuity(cf)

    naive_s, naive_result = median_time(naive, 1)
    assert naive_result == {k: v for k, v in cold.items() if k != "visits_reassigned"}  # same seed, same history: the same result
    print(f"naive (rebuild projection and context for the point): {naive_s:.1f} s; shared context {naive_s / warm_s:.1f}× faster")

    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    out = {
        "benchmark": "behaviour",
        "version": __version__,
        "python": platform.python_version(),
        "store": args.store,
        "visits": int(ctx.n_visits),
        "team_size": args.size,
        "setup_s": round(setup_s, 2),
        "reassign_cold_s": round(cold_s, 2),
        "reassign_warm_median_s": round(warm_s, 2),
        "bundled_trust_apply_s": round(full_s, 2),
        "bundled_trust_settle_s": round(settle_s, 2),
        "naive_s": round(naive_s, 2),
        "continuity_static": static["continuity_median"],
        "continuity_team": cold["continuity_median"],
        "visits_reassigned": cold["visits_reassigned"],
        "peak_rss_mb": round(peak),
        "targets_met": {"reassign_le_10s": max(cold_s, warm_s) <= 10},
    }
    print(json.dumps(out))


if __name__ == "__main__":
    main()
