"""Import benchmark: a visits CSV in Swedish Excel style, end to end.

    python benchmarks/bench_import.py [--rows 2000000] [--sample 5000]

Writes the CSV (Windows-1252, ';', decimal comma, durations in decimal hours,
Swedish column names and values), then imports it with a mapping file: parse,
map, check, pseudonymise, append. Each import runs in its own process, once on
the file's first ``--small`` rows and once on all of it, so that the two peak
memories show whether memory grows with the file (it should not: the import
streams in chunks); the peak of the import's writer process (a child of the
import) is printed beside it, with the writer's busy time and journal mode.
The rate varies with the disk: run it a few times and take the median. The
naive baseline builds a pydantic model per row and saves
one visit aggregate per row through the library, on a sample, in the same run.
Prints its figures; the last line is one JSON object. Target (issue 4): ≥ 100k
rows/s.
"""

from __future__ import annotations

import argparse
import json
import platform
import resource
import shutil
import subprocess
import sys
import tempfile
import time
from datetime import datetime, timedelta
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from pydantic import BaseModel  # noqa: E402

from ersattning import __version__  # noqa: E402
from ersattning.domain import Category, Registration, Visit, stable_id  # noqa: E402
from ersattning.ingest.mapping import load_mapping  # noqa: E402
from ersattning.ingest.visits import import_visits  # noqa: E402
from ersattning.privacy import Pseudonymiser  # noqa: E402
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


def import_once(src: Path, db: Path) -> dict:
    """One import in this process (run as a child, so its peak memory is its own)."""
    store = open_store(f"sqlite:///{db}")
    report = import_visits(store, [src], load_mapping(src.parent / "mapping.yaml"), Pseudonymiser(b"benchmark-key-0123456789abcdef"))
    return {
        "rows": report.rows_read,
        "rows_imported": report.rows_imported,
        "events_written": report.events_written,
        "seconds": report.seconds,
        "peak_rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
        "writer_peak_rss_mb": resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024,  # the child writer process
        "journal": report.journal,
        "writer_seconds": report.writer_seconds,
        "summary": report.summary(),
    }


def import_in_child(src: Path, db: Path) -> dict:
    done = subprocess.run([sys.executable, __file__, "--child", str(src), str(db)], capture_output=True, text=True, check=False)
    if done.returncode != 0:
        raise SystemExit(f"import of {src} failed:\n{done.stderr}")
    return json.loads(done.stdout.strip().splitlines()[-1])


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
    ap.add_argument("--child", nargs=2, metavar=("CSV", "DB"), help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.child:
        print(json.dumps(import_once(Path(args.child[0]), Path(args.child[1]))))
        return
    work = Path(tempfile.mkdtemp(prefix="bench-import-"))
    try:
        src = work / "visits.csv"
        t = time.perf_counter()
        write_csv(src, args.rows)
        print(f"wrote {args.rows:,} rows ({src.stat().st_size / 1e6:.0f} MB) in {time.perf_counter() - t:.0f} s")
        (work / "mapping.yaml").write_text(MAPPING, encoding="utf-8")
        runs = {}
        if 0 < args.small < args.rows:
            small_src = work / "small.csv"
            head(src, small_src, args.small)
            runs["small"] = import_in_child(small_src, work / "small.db")
        runs["full"] = import_in_child(src, work / "import.db")
        for r in runs.values():
            rate = r["rows"] / r["seconds"]
            print(
                f"import of {r['rows']:,} rows: {rate:,.0f} rows/s ({r['seconds']:.1f} s), {r['events_written'] / r['seconds']:,.0f} events/s, "
                f"peak memory {r['peak_rss_mb']:.0f} MB + writer process {r['writer_peak_rss_mb']:.0f} MB, journal {r['journal'] or '-'}, "
                f"writer busy {r['writer_seconds']:.1f} s"
            )
        print("\n".join(runs["full"]["summary"]))
        full = runs["full"]
        rate = full["rows"] / full["seconds"]
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
                "events_per_s": round(full["events_written"] / full["seconds"]),
                "peak_rss_mb": round(full["peak_rss_mb"]),
                "writer_peak_rss_mb": round(full["writer_peak_rss_mb"]),
                "journal": full["journal"],
                "writer_seconds": round(full["writer_seconds"], 2),
                "small_rows": small["rows"] if small else None,
                "small_rows_per_s": round(small["rows"] / small["seconds"]) if small else None,
                "small_peak_rss_mb": round(small["peak_rss_mb"]) if small else None,
                "small_writer_peak_rss_mb": round(small["writer_peak_rss_mb"]) if small else None,
                "naive_sample_rows": args.sample,
                "naive_rows_per_s": round(naive_rate),
                "ratio_vs_naive": round(rate / naive_rate, 1),
                "targets_met": {"rows_ge_100k_per_s": rate >= 100_000},
            }
        )
    )


if __name__ == "__main__":
    main()
