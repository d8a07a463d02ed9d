"""Report benchmark: what writing the HTML and XLSX report adds to a compare.

    python benchmarks/bench_report.py [--store sqlite:///PATH] [--workdir DIR] [--recipients 20000] [--lang sv]

Uses (or first writes) a synthetic 12-month region, warms its projection, then
measures, each as the median of ``--repeat`` runs: the default scenario's
compare, and the report from that comparison (tables, six charts, HTML,
XLSX). The naive baseline is the payment distribution (recipient-months per
bin, with the distinct-person count each bin's suppression needs) computed in
a Python loop over recipient-months, against the vectorized one, on the same
data. Prints its figures and, as the last line, one JSON object.
Target (issue 5): the report adds ≤ 20 s beyond compare on 20,000 recipients.
"""

from __future__ import annotations

import argparse
import json
import platform
import resource
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "benchmarks"))

import numpy as np  # noqa: E402
from region import median_time, region_store  # noqa: E402

from ersattning import __version__  # noqa: E402
from ersattning.compare import compare  # noqa: E402
from ersattning.report import write_report  # noqa: E402
from ersattning.report.tables import payment_distribution  # noqa: E402
from ersattning.scenario import load_scenario  # noqa: E402
from ersattning.store import open_store  # noqa: E402
from ersattning.suppression import MIN_PERSONS  # noqa: E402


def naive_distribution(c, edges: np.ndarray) -> dict[str, list[int | None]]:
    """The distribution one recipient-month at a time, as a spreadsheet macro would."""
    rm = c.recipient_month_totals
    enrolled = c.ctx.rm["days_enrolled"].to_numpy() > 0
    out = {}
    lo, hi = edges[0], edges[-1]
    for name in c.settlements:
        months = [0] * (len(edges) + 1)
        persons: list[set] = [set() for _ in range(len(edges) + 1)]
        for recipient, value, ok in zip(rm["recipient"].tolist(), rm[name].tolist(), enrolled.tolist(), strict=True):
            if not ok:
                continue
            if value < lo:
                b = 0
            elif value > hi:
                b = len(edges)
            else:
                b = min(int(np.searchsorted(edges, value, side="right")) - 1, len(edges) - 2) + 1
            months[b] += 1
            persons[b].add(recipient)
        out[name] = [m if not (0 < len(p) < MIN_PERSONS) else None for m, p in zip(months, persons, strict=True)]
    return out


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--store", default=None, help="an existing store with a 12-month region")
    ap.add_argument("--workdir", default="/tmp/ersattning-bench", help="where to keep the region between runs")
    ap.add_argument("--recipients", type=int, default=20000)
    ap.add_argument("--repeat", type=int, default=3)
    ap.add_argument("--lang", default="sv")
    args = ap.parse_args()

    url, store = region_store(args.store, args.workdir, args.recipients)

    def whole() -> object:
        return compare(load_scenario("default"), open_store(url, create=False))

    compare_s, c = median_time(whole, args.repeat)
    rm = int((c.ctx.rm["days_enrolled"] > 0).sum())  # type: ignore[attr-defined]
    print(f"compare, default scenario: {compare_s:.1f} s (median of {args.repeat}); {c.ctx.n_visits:,} visits, {rm:,} recipient-months")  # type: ignore[attr-defined]

    out_dir = Path(tempfile.mkdtemp(prefix="bench-report-"))
    html, xlsx = out_dir / "report.html", out_dir / "report.xlsx"
    steps: dict[str, float] = {}

    def report() -> object:
        last = [time.perf_counter(), "tables"]

        def step(name: str) -> None:  # time each step of the report
            now = time.perf_counter()
            steps[last[1]] = steps.get(last[1], 0.0) + now - last[0]
            last[:] = [now, name]

        written = write_report(c, html=html, xlsx=xlsx, lang=args.lang, progress=step)
        step("end")
        return written

    report_s, _ = median_time(report, args.repeat)
    step_s = {k: round(v / args.repeat, 3) for k, v in steps.items() if k != "end"}
    print(f"report (HTML {html.stat().st_size / 1e3:,.0f} kB + XLSX {xlsx.stat().st_size / 1e3:,.0f} kB): {report_s:.1f} s beyond compare (median of {args.repeat})")
    print("  steps: " + ", ".join(f"{k} {v:.2f} s" for k, v in step_s.items()))

    # -- naive baseline: the distribution one recipient-month at a time ---------------------
    fast_s, dist = median_time(lambda: payment_distribution(c), args.repeat)
    inner = dist[dist["model"] == c.baseline].dropna(subset=["bin_from", "bin_to"])  # type: ignore[attr-defined]
    edges = np.concatenate([inner["bin_from"].to_numpy(), inner["bin_to"].to_numpy()[-1:]])
    t = time.perf_counter()
    slow = naive_distribution(c, edges)
    naive_s = time.perf_counter() - t
    fast = dist[dist["model"] == c.baseline]["recipient_months"].tolist()  # type: ignore[attr-defined]
    assert [None if v == ".." else v for v in fast] == slow[c.baseline], "naive and vectorized distributions differ"  # type: ignore[attr-defined]
    n = rm * len(c.settlements)  # type: ignore[attr-defined]
    print(f"distribution: vectorized {n / fast_s / 1e6:.1f} M recipient-months/s, naive loop {n / naive_s / 1e3:.0f} k/s ({naive_s / fast_s:.0f}× slower)")

    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    out = {
        "benchmark": "report",
        "version": __version__,
        "python": platform.python_version(),
        "store": url,
        "visits": int(c.ctx.n_visits),  # type: ignore[attr-defined]
        "recipient_months": rm,
        "lang": args.lang,
        "compare_s": round(compare_s, 2),
        "report_s": round(report_s, 2),
        "report_steps_s": step_s,
        "html_kb": round(html.stat().st_size / 1e3),
        "xlsx_kb": round(xlsx.stat().st_size / 1e3),
        "distribution_recipient_months_per_s": round(n / fast_s),
        "naive_distribution_recipient_months_per_s": round(n / naive_s),
        "ratio_vs_naive": round(naive_s / fast_s),
        "peak_rss_mb": round(peak),
        "targets_met": {"report_le_20s_beyond_compare": report_s <= 20},
    }
    print(json.dumps(out))


if __name__ == "__main__":
    main()
