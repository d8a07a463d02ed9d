"""Import benchmark: a visits CSV in Swedish Excel style, end to end.

    python benchmarks/bench_import.py [--rows 2000000] [--sample 5000] [--repeat 5]

Writes the CSV (Windows-1252, ';', decimal comma, durations in decimal hours,
Swedish column names and values), then imports it with a mapping file: parse,
map, check, pseudonymise, append. Each import runs in its own process, once on
the file's first ``--small`` rows and once on all of it, so that the two peak
memories show whether memory grows with the file (it should not: the import
streams in chunks); the peak of the import's writer process (a child of the
import) is printed beside it, with the writer's busy time and journal mode.
The rate varies with the disk and the machine's load: the whole file is imported ``--repeat``
times kept current and as many times feed off, alternating, and the medians and ranges are printed
(the detailed lines are the median run's). The
naive baseline builds a pydantic model per row and saves
one visit aggregate per row through the library, on a sample, in the same run.
Each import is followed by the first compare (default scenario, a new store
object), timed from the end of the import to its result: once with the import
keeping the projection current, once without (the compare folds everything the
import wrote, as before issue 14). Prints its figures; the last line is one
JSON object. Targets: ≥ 100k rows/s (issue 4), ≥ 200k rows/s (issue 14); it also prints the store's bytes per event on disk,
and the import's CPU seconds (its process, and its importing thread step by step: ``ImportReport.step_seconds``), which
a busy machine disturbs less than wall time.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import resource
import shutil
import subprocess
import sys
import tempfile
import time
from datetime import datetime, timedelta
from pathlib import Path
from statistics import median

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from pydantic import BaseModel  # noqa: E402

from ersattning import __version__  # noqa: E402
from ersattning.compare import compare  # noqa: E402
from ersattning.domain import Category, Registration, Visit, stable_id  # noqa: E402
from ersattning.ingest.mapping import Mapping, load_mapping  # noqa: E402
from ersattning.ingest.providers import import_providers  # noqa: E402
from ersattning.ingest.visits import import_visits  # noqa: E402
from ersattning.privacy import Pseudonymiser  # noqa: E402
from ersattning.projection.feed import ImportFeed  # noqa: E402
from ersattning.scenario import Period, load_scenario  # noqa: E402
from ersattning.store import open_store  # noqa: E402

MAPPING = """
columns: {Brukare: recipient, Utförare: provider, Besök: visit_id, Insats: category, Planerad start: planned_start,
          Planerad tid (h): planned_duration, Utförd start: actual_start, Utförd tid (h): actual_duration, Personal: staff, Status: status}
values:
  category: {Omvårdnad: personal_care, Städ: cleaning, Inköp: shopping, Tvätt: laundry}
  status: {Utförd: performed, Avbokad av brukare: cancelled_by_recipient}
units: {planned_duration: decimal_hours, actual_duration: decimal_hours}
decimal: ","
"""
CATEGORIES = ["Omvårdnad", "Omvårdnad", "Omvårdnad", "Städ", "Inköp", "Tvätt"]


def write_csv(path: Path, rows: int) -> None:
    t0 = datetime(2024, 1, 1, 7, 0)
    with path.open("w", encoding="cp1252", newline="") as f:
        f.write("Brukare;Utförare;Besök;Insats;Planerad start;Planerad tid (h);Utförd start;Utförd tid (h);Personal;Status\r\n")
        for i in range(rows):
            start = t0 + timedelta(days=i // 400, minutes=(i % 400) * 2)
            recipient = f"B{i % 20000:05d}"
            staff = f"Personal {i % 6000}"
            if i % 25 == 0:
                f.write(f"{recipient};Hemtjänst Söder;V{i};{CATEGORIES[i % 6]};{start:%Y-%m-%d %H:%M};0,5;;;;Avbokad av brukare\r\n")
            else:
                f.write(f"{recipient};Hemtjänst Söder;V{i};{CATEGORIES[i % 6]};{start:%Y-%m-%d %H:%M};0,5;{start + timedelta(minutes=1):%Y-%m-%d %H:%M};0,45;{staff};Utförd\r\n")


class Row(BaseModel):
    """The naive path: one validated object per row."""

    recipient: str
    provider: str
    visit_id: str
    category: Category
    planned_start: datetime
    planned_minutes: int
    actual_start: datetime | None
    actual_minutes: float | None
    staff: str | None


def naive(path: Path, sample: int, work: Path) -> float:
    import csv
    from zoneinfo import ZoneInfo

    tz = ZoneInfo("Europe/Stockholm")
    categories = {"Omvårdnad": Category.personal_care, "Städ": Category.cleaning, "Inköp": Category.shopping, "Tvätt": Category.laundry}
    store = open_store(f"sqlite:///{work / 'naive.db'}")
    p = Pseudonymiser(b"benchmark-key-0123456789abcdef")
    started = time.perf_counter()
    with path.open(encoding="cp1252", newline="") as f:
        reader = csv.DictReader(f, delimiter=";")
        for n, r in enumerate(reader):
            if n >= sample:
                break
            row = Row(
                recipient=p.one(r["Brukare"]),
                provider=r["Utförare"],
                visit_id=r["Besök"],
                category=categories[r["Insats"]],
                planned_start=datetime.fromisoformat(r["Planerad start"]).replace(tzinfo=tz),
                planned_minutes=round(float(r["Planerad tid (h)"].replace(",", ".")) * 60),
                actual_start=datetime.fromisoformat(r["Utförd start"]).replace(tzinfo=tz) if r["Utförd start"] else None,
                actual_minutes=float(r["Utförd tid (h)"].replace(",", ".")) * 60 if r["Utförd tid (h)"] else None,
                staff=p.one(r["Personal"]) if r["Personal"] else None,
            )
            v = Visit.plan(key=row.visit_id, recipient_id=stable_id("recipient", row.recipient), provider=row.provider, team=row.provider, category=row.category, planned_start=row.planned_start, planned_minutes=row.planned_minutes, recorded_at=row.planned_start)
            if row.actual_start is not None:
                end = row.actual_start + timedelta(minutes=row.actual_minutes or 0)
                v.perform(actual_start=row.actual_start, actual_end=end, staff=(row.staff,) if row.staff else (), registration=Registration.mobile, recorded_at=end)
            store.app.save(v)
    return sample / (time.perf_counter() - started)


def import_once(src: Path, db: Path, keep_cache: bool = True) -> dict:
    """One import in this process (run as a child, so its peak memory is its own), then the first compare.

    ``keep_cache=False`` turns off the import's folding of its batches into the projection (as before
    issue 14): the first compare then folds everything the import wrote. The import's time is its wall
    clock, the cache's fold at its end included.
    """
    url = f"sqlite:///{db}"
    store = open_store(url)
    providers = src.parent / "providers.csv"
    providers.write_text("code,name,ownership,teams\nHemtjänst Söder,Hemtjänst Söder,municipal,\n", encoding="utf-8")
    import_providers(store, [providers], Mapping(), Pseudonymiser(b"benchmark-key-0123456789abcdef"))
    if not keep_cache:
        ImportFeed.submitted = ImportFeed.committed = ImportFeed.finish = lambda *args: None  # type: ignore[method-assign,assignment]
    started, cpu = time.perf_counter(), time.process_time()
    report = import_visits(store, [src], load_mapping(src.parent / "mapping.yaml"), Pseudonymiser(b"benchmark-key-0123456789abcdef"))
    wall, cpu = time.perf_counter() - started, time.process_time() - cpu
    store.close()
    db_bytes = db.stat().st_size  # the store file after the import (its journal folded back)
    started = time.perf_counter()
    # the default scenario's year, or the months of it the file covers (400 rows a day from 2024-01-01)
    last = min((datetime(2024, 1, 1) + timedelta(days=(report.rows_read - 1) // 400)).strftime("%Y-%m"), "2024-12")
    scenario = load_scenario("default").with_period(Period(start="2024-01", end=last))
    result = compare(scenario, open_store(url, create=False))  # a new store object: the cache as a new process sees it
    to_compare = time.perf_counter() - started
    return {
        "wall_seconds": wall,
        "to_first_compare_s": to_compare,
        "db_bytes": db_bytes,
        "compared_visits": int(result.manifest["visits"]),
        "rows": report.rows_read,
        "rows_imported": report.rows_imported,
        "events_written": report.events_written,
        "seconds": report.seconds,
        "peak_rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
        "writer_peak_rss_mb": resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024,  # the child writer process
        "journal": report.journal,
        "writer_seconds": report.writer_seconds,
        "writer_cpu_seconds": (lambda u: u.ru_utime + u.ru_stime)(resource.getrusage(resource.RUSAGE_CHILDREN)),  # the writer process (it has ended)
        "cpu_seconds": cpu,  # the import's process (the feed's thread included when on; not the writer process)
        "steps": dict(report.step_seconds),  # the importing thread's CPU seconds per step
        "summary": report.summary(),
    }


def import_in_child(src: Path, db: Path, keep_cache: bool = True) -> dict:
    mode = "current" if keep_cache else "refold"
    done = subprocess.run([sys.executable, __file__, "--child", str(src), str(db), mode], capture_output=True, text=True, check=False)
    if done.returncode != 0:
        raise SystemExit(f"import of {src} failed:\n{done.stderr}")
    return json.loads(done.stdout.strip().splitlines()[-1])


def _median_run(runs: list[dict], seconds: str) -> dict:
    """The run of median time (its other figures printed as measured, not mixed across runs)."""
    return sorted(runs, key=lambda r: r[seconds])[(len(runs) - 1) // 2]


def _remove_store(db: Path) -> None:
    """A benchmark store, its journal files and its projection cache."""
    for path in db.parent.glob(db.name + "*"):
        shutil.rmtree(path) if path.is_dir() else path.unlink()


def head(src: Path, dst: Path, rows: int) -> None:
    """The header and the first ``rows`` rows of a CSV."""
    with src.open("rb") as f, dst.open("wb") as out:
        for i, line in enumerate(f):
            if i > rows:
                break
            out.write(line)


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--rows", type=int, default=2_000_000)
    ap.add_argument(
        "--small",
        type=int,
        default=1_000_000,
        help="a second, smaller import of the file's first rows, to show that peak memory does not grow with the file "
        "(big enough to have whole chunks in the middle: the first and the last chunk go to the writer in quarters)",
    )
    ap.add_argument("--sample", type=int, default=5000)
    ap.add_argument(
        "--repeat",
        type=int,
        default=5,
        help="imports of the whole file kept current and feed off, alternating; medians and ranges are reported (the machine is noisy)",
    )
    ap.add_argument("--child", nargs=3, metavar=("CSV", "DB", "MODE"), help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.child:
        print(json.dumps(import_once(Path(args.child[0]), Path(args.child[1]), keep_cache=args.child[2] == "current")))
        return
    work = Path(tempfile.mkdtemp(prefix="bench-import-"))
    try:
        src = work / "visits.csv"
        t = time.perf_counter()
        write_csv(src, args.rows)
        os.sync()  # the file on disk before the imports: its writeback would otherwise compete with theirs
        print(f"wrote {args.rows:,} rows ({src.stat().st_size / 1e6:.0f} MB) in {time.perf_counter() - t:.0f} s")
        (work / "mapping.yaml").write_text(MAPPING, encoding="utf-8")
        runs = {}
        if 0 < args.small < args.rows:
            small_src = work / "small.csv"
            head(src, small_src, args.small)
            runs["small"] = import_in_child(small_src, work / "small.db")
        kept, off = [], []
        for _ in range(max(1, args.repeat)):  # alternating, so a noisy minute touches both
            kept.append(import_in_child(src, work / "import.db"))
            off.append(import_in_child(src, work / "refold.db", keep_cache=False))  # as before: the first compare folds the import
            for db in ("import.db", "refold.db"):
                _remove_store(work / db)
        runs["full"], refold = _median_run(kept, "seconds"), _median_run(off, "wall_seconds")
        spread = {
            "kept current": [r["rows"] / r["seconds"] for r in kept],
            "kept current, wall": [r["rows"] / r["wall_seconds"] for r in kept],
            "feed off, wall": [r["rows"] / r["wall_seconds"] for r in off],
        }
        for name, rates in spread.items():
            in_order = ", ".join(f"{r:,.0f}" for r in rates)
            print(f"import rows/s ({name}) over {len(rates)} runs: median {median(rates):,.0f}, range {min(rates):,.0f}-{max(rates):,.0f} (in order: {in_order})")
        for r in runs.values():
            rate = r["rows"] / r["seconds"]
            print(
                f"import of {r['rows']:,} rows: {rate:,.0f} rows/s ({r['seconds']:.1f} s), {r['events_written'] / r['seconds']:,.0f} events/s, "
                f"peak memory {r['peak_rss_mb']:.0f} MB + writer process {r['writer_peak_rss_mb']:.0f} MB, journal {r['journal'] or '-'}, "
                f"writer busy {r['writer_seconds']:.1f} s ({r['writer_cpu_seconds']:.1f} s CPU), store {r['db_bytes'] / r['events_written']:.1f} bytes per event on disk"
            )
        for name, r in (("kept current", runs["full"]), ("feed off", refold)):
            thread = sum(r["steps"].values())
            steps = ", ".join(f"{k} {v:.2f}" for k, v in sorted(r["steps"].items(), key=lambda kv: -kv[1]))
            print(
                f"importer CPU ({name}, {r['rows']:,} rows): {r['cpu_seconds']:.1f} s in the import's process, {thread:.1f} s in its importing thread "
                f"({r['rows'] / thread:,.0f} rows per thread CPU-second, {thread / r['rows'] * 1e6:.2f} µs a row); per step (s): {steps}"
            )
        print("\n".join(runs["full"]["summary"]))
        full = runs["full"]
        rate = full["rows"] / full["seconds"]
        wall_rate, refold_rate = full["rows"] / full["wall_seconds"], refold["rows"] / refold["wall_seconds"]
        print(
            f"end of import → first compare's result: {full['to_first_compare_s']:.1f} s with the projection kept current by the import "
            f"({wall_rate:,.0f} rows/s, the cache's fold included), {refold['to_first_compare_s']:.1f} s when the compare folds the import "
            f"({refold_rate:,.0f} rows/s)"
        )
        naive_rate = naive(src, args.sample, work)
        print(f"naive (pydantic per row, one save per visit) on {args.sample:,} rows: {naive_rate:,.0f} rows/s; bulk is {rate / naive_rate:.0f}× faster")
    finally:
        shutil.rmtree(work)
    small = runs.get("small")
    print(
        json.dumps(
            {
                "benchmark": "import",
                "version": __version__,
                "python": platform.python_version(),
                "rows": args.rows,
                "rows_imported": full["rows_imported"],
                "events_written": full["events_written"],
                "seconds": round(full["seconds"], 2),
                "rows_per_s": round(rate),
                "runs": len(kept),
                "rows_per_s_range": [round(min(spread["kept current"])), round(max(spread["kept current"]))],
                "wall_rows_per_s_range": [round(min(spread["kept current, wall"])), round(max(spread["kept current, wall"]))],
                "refold_wall_rows_per_s_range": [round(min(spread["feed off, wall"])), round(max(spread["feed off, wall"]))],
                "events_per_s": round(full["events_written"] / full["seconds"]),
                "peak_rss_mb": round(full["peak_rss_mb"]),
                "writer_peak_rss_mb": round(full["writer_peak_rss_mb"]),
                "journal": full["journal"],
                "writer_seconds": round(full["writer_seconds"], 2),
                "bytes_per_event_on_disk": round(full["db_bytes"] / full["events_written"], 1),
                "small_rows": small["rows"] if small else None,
                "small_rows_per_s": round(small["rows"] / small["seconds"]) if small else None,
                "small_peak_rss_mb": round(small["peak_rss_mb"]) if small else None,
                "small_writer_peak_rss_mb": round(small["writer_peak_rss_mb"]) if small else None,
                "naive_sample_rows": args.sample,
                "naive_rows_per_s": round(naive_rate),
                "ratio_vs_naive": round(rate / naive_rate, 1),
                "wall_rows_per_s": round(wall_rate),
                "to_first_compare_s": round(full["to_first_compare_s"], 2),
                "refold_wall_rows_per_s": round(refold_rate),
                "refold_to_first_compare_s": round(refold["to_first_compare_s"], 2),
                "import_speed_kept_current_vs_refold": round(wall_rate / refold_rate, 3),
                "import_cpu_s": round(full["cpu_seconds"], 2),
                "import_thread_cpu_s": round(sum(full["steps"].values()), 2),
                "refold_import_cpu_s": round(refold["cpu_seconds"], 2),
                "refold_import_thread_cpu_s": round(sum(refold["steps"].values()), 2),
                "rows_per_thread_cpu_s_feed_off": round(refold["rows"] / sum(refold["steps"].values())),
                "import_thread_cpu_steps_feed_off": {k: round(v, 3) for k, v in refold["steps"].items()},
                "targets_met": {"rows_ge_100k_per_s": rate >= 100_000, "rows_ge_200k_per_s (issue 14)": rate >= 200_000},
            }
        )
    )


if __name__ == "__main__":
    main()
