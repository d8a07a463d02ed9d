"""Store benchmark: bulk append, projection rebuild, incremental update, memory.

    python benchmarks/bench_store.py [--recipients 1000] [--months 12] [--sample 20] [--postgres URL]

Prints its figures and, as the last line, one JSON object (SQLite's figures at the top
level, every backend's under ``backends``). With ``--postgres`` the same region is
appended to a new database on that server, side by side with SQLite in the same run. The naive baseline
(aggregates built by method calls, one save each; read back with
select_notifications + to_domain_event) runs on a sample in the same run.
The rebuild is timed with one process and with every core (``rebuild_events_per_s``
is the latter: what a rebuild of a store this big uses). Targets (issue 2): append
≥ 100k events/s, rebuild ≥ 150k events/s, incremental +1 % ≤ 5 % of a rebuild,
≤ 64 bytes per visit; issue 14: rebuild ≥ 400k events/s on every core at 20M events.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import resource
import shutil
import statistics
import sys
import tempfile
import time
from collections import defaultdict
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit, urlunsplit

sys.path.insert(0, str(Path(__file__).resolve().parent))

import naive  # noqa: E402
from eventsourcing.persistence import StoredEvent  # noqa: E402

from ersattning import __version__, projection  # noqa: E402
from ersattning.projection import cache as projection_cache  # noqa: E402
from ersattning.store import open_store  # noqa: E402
from ersattning.store.bulk import EventBatch, append_batch  # noqa: E402
from ersattning.synth import RegionSpec, generate_chunk, make_providers, provider_batch  # noqa: E402


def peak_rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def measure(url: str, spec: RegionSpec, repeat: int, work: Path, label: str) -> dict[str, Any]:
    """Append the region, rebuild the projection, and update it after +1 % new events, on one store."""
    store = open_store(url)

    # -- bulk append: encode + insert, the synthetic generation timed apart ----------
    providers = make_providers(spec)
    gen_s = append_s = 0.0
    events = 0
    batches = [provider_batch(spec, providers)]
    n_chunks = -(-spec.recipients // spec.chunk_recipients)
    for k in range(n_chunks + 1):
        if k > 0:
            t = time.perf_counter()
            batches = [generate_chunk(spec, providers, k - 1).batch]
            gen_s += time.perf_counter() - t
        for batch in batches:
            gen_s -= batch.encode_seconds  # encoding is part of the append
            t = time.perf_counter()
            events += append_batch(store, batch)
            append_s += time.perf_counter() - t + batch.encode_seconds
    t = time.perf_counter()
    store.checkpoint()
    append_s += time.perf_counter() - t
    print(f"[{label}] region: {spec.recipients} recipients x {spec.months} months = {events:,} events")
    print(f"[{label}] append: {events / append_s:,.0f} events/s ({append_s:.1f} s; synthetic generation {gen_s:.1f} s apart)")
    db_path = getattr(store, "path", None)  # an SQLite file (checkpointed above); a server's size is its own business
    disk_bytes = db_path.stat().st_size if db_path is not None else None
    if disk_bytes is not None:
        print(f"[{label}] on disk: {disk_bytes / 1e6:,.1f} MB = {disk_bytes / events:.1f} bytes per event")

    # -- projection rebuild -----------------------------------------------------------
    cores = os.cpu_count() or 1
    timings: dict[int, list[float]] = {}
    for workers in (1, cores):  # one process, then every core (what a rebuild of a big store uses)
        with rebuild_workers(workers):
            rebuilds = timings.setdefault(workers, [])
            for _ in range(repeat):
                store.projection_cache = None
                t = time.perf_counter()
                projection.update(store, rebuild=True)
                rebuilds.append(time.perf_counter() - t)
        print(f"[{label}] rebuild, {workers} process(es): {events / statistics.median(rebuilds):,.0f} events/s (median of {repeat}; all {[round(x, 2) for x in rebuilds]})")
    single_s, rebuild_s = statistics.median(timings[1]), statistics.median(timings[cores])
    t = time.perf_counter()
    proj = projection.load(store)
    warm_s = time.perf_counter() - t
    bytes_per_visit = proj.bytes_per_visit
    visits = len(proj.visits)
    print(f"[{label}] warm load: {warm_s:.2f} s for {visits:,} visits, {bytes_per_visit:.1f} bytes per visit in memory")
    del proj

    # -- incremental update with +1 % new events --------------------------------------
    def extra_batch(recipients: int) -> EventBatch:
        extra_spec = RegionSpec(recipients=recipients, months=spec.months, seed=2, chunk_recipients=recipients)
        return generate_chunk(extra_spec, make_providers(extra_spec), 0).batch

    # whole aggregates of new recipients, cut at 1 % of the region's events
    ids, versions, topics, states = extra_batch(max(2, spec.recipients // 25)).columns()
    cut = max(1, events // 100)
    while cut < len(ids) and ids[cut] == ids[cut - 1]:
        cut += 1
    store.append(ids[:cut], versions[:cut], topics[:cut], states[:cut])
    added = cut
    cache_dir = store.projection_dir()
    assert cache_dir is not None  # a store that persists
    before = work / f"cache-before-{label}"
    shutil.copytree(cache_dir, before)
    increments = []
    for _ in range(repeat + 2):
        shutil.rmtree(cache_dir)
        shutil.copytree(before, cache_dir)  # the cache as it was before the new events
        store.projection_cache = None  # start from the Parquet cache, as a new process would
        t = time.perf_counter()
        projection.update(store)
        increments.append(time.perf_counter() - t)
    incremental_s = statistics.median(increments)
    print(
        f"[{label}] incremental: +{added:,} events ({100 * added / events:.2f} %) in {incremental_s:.2f} s "
        f"(median of {len(increments)}) = {100 * incremental_s / rebuild_s:.1f} % of a rebuild"
    )
    shutil.rmtree(cache_dir, ignore_errors=True)
    store.close()
    return {
        "events": events,
        "bytes_per_event_on_disk": round(disk_bytes / events, 1) if disk_bytes is not None else None,
        "visits": visits,
        "append_events_per_s": round(events / append_s),
        "rebuild_events_per_s": round(events / rebuild_s),
        "rebuild_s": round(rebuild_s, 3),
        "rebuild_1_process_events_per_s": round(events / single_s),
        "rebuild_all_cores_events_per_s": round(events / rebuild_s),
        "rebuild_cores": cores,
        "incremental_events": added,
        "incremental_s": round(incremental_s, 3),
        "incremental_share_of_rebuild": round(incremental_s / rebuild_s, 4),
        "warm_load_s": round(warm_s, 3),
        "bytes_per_visit": round(bytes_per_visit, 1),
        "targets_met": {
            "append_ge_100k": events / append_s >= 100_000,
            "rebuild_ge_150k": events / rebuild_s >= 150_000,
            "incremental_le_5pct": incremental_s / rebuild_s <= 0.05,
            "bytes_per_visit_le_64": bytes_per_visit <= 64,
        },
    }


@contextmanager
def rebuild_workers(workers: int) -> Iterator[None]:
    """Rebuilds with ``workers`` processes (1: the single-process read), whatever the store's size."""
    chosen = projection_cache.workers_for
    projection_cache.workers_for = lambda store, events: workers
    try:
        yield
    finally:
        projection_cache.workers_for = chosen


@contextmanager
def postgres_database(server_url: str) -> Iterator[str]:
    """A new database on the server (the URL's role must be allowed to create one), dropped afterwards."""
    import psycopg

    name = f"ersattning_bench_{os.getpid()}"
    with psycopg.connect(server_url, autocommit=True) as conn:
        conn.execute(f"DROP DATABASE IF EXISTS {name}")
        conn.execute(f"CREATE DATABASE {name}")
    try:
        yield urlunsplit(urlsplit(server_url)._replace(path=f"/{name}"))
    finally:
        with psycopg.connect(server_url, autocommit=True) as conn:
            conn.execute(f"DROP DATABASE IF EXISTS {name} WITH (FORCE)")


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--recipients", type=int, default=1100, help="1,100 recipients × 12 months ≈ 1.1 M events")
    ap.add_argument("--months", type=int, default=12)
    ap.add_argument("--sample", type=int, default=20, help="recipients in the naive baseline's sample")
    ap.add_argument("--repeat", type=int, default=3, help="repetitions of the rebuild (medians are reported)")
    ap.add_argument("--postgres", metavar="URL", default=None, help="also measure a PostgreSQL store: a new database on this server (postgresql://user@host:port/db)")
    ap.add_argument("--keep", action="store_true", help="keep the temporary directory")
    args = ap.parse_args()
    work = Path(tempfile.mkdtemp(prefix="bench-store-"))
    os.environ.setdefault("ERSATTNING_CACHE_DIR", str(work / "cache"))  # a server store's projection cache
    spec = RegionSpec(recipients=args.recipients, months=args.months, seed=1)
    backends = {"sqlite": measure(f"sqlite:///{work / 'bench.db'}", spec, args.repeat, work, "sqlite")}
    if args.postgres:
        with postgres_database(args.postgres) as url:
            backends["postgresql"] = measure(url, spec, args.repeat, work, "postgresql")
    sqlite = backends["sqlite"]

    # -- naive baseline on a sample ---------------------------------------------------
    sample_by_aggregate: dict = defaultdict(list)
    sample_spec = RegionSpec(recipients=args.sample, months=spec.months, seed=1, chunk_recipients=args.sample)
    sample_providers = make_providers(sample_spec)
    mem = open_store("memory://")
    for batch in (provider_batch(sample_spec, sample_providers), generate_chunk(sample_spec, sample_providers, 0).batch):
        for oid, version, topic, state in zip(*batch.columns(), strict=True):
            from uuid import UUID

            event = mem.app.mapper.to_domain_event(StoredEvent(UUID(oid), version, topic, state))
            sample_by_aggregate[event.originator_id].append(event)
    naive_url = f"sqlite:///{work / 'naive.db'}"
    naive_store = open_store(naive_url)
    t = time.perf_counter()
    aggregates = naive.rebuild_by_method_calls(sample_by_aggregate)
    n_naive = naive.save_one_by_one(naive_store.app, aggregates)
    naive_append_s = time.perf_counter() - t
    t = time.perf_counter()
    n_read = naive.read_event_by_event(naive_store.app)
    naive_read_s = time.perf_counter() - t
    assert n_read == n_naive
    naive_append = n_naive / naive_append_s
    naive_read = n_read / naive_read_s
    print(f"naive baseline on {n_naive:,} events: append {naive_append:,.0f} events/s, read {naive_read:,.0f} events/s")

    result = {
        "benchmark": "store",
        "version": __version__,
        "python": platform.python_version(),
        "recipients": spec.recipients,
        "months": spec.months,
        **sqlite,
        "peak_rss_mb": round(peak_rss_mb(), 1),
        "naive_sample_events": n_naive,
        "naive_append_events_per_s": round(naive_append),
        "naive_read_events_per_s": round(naive_read),
        "append_ratio_vs_naive": round(sqlite["append_events_per_s"] / naive_append, 1),
        "rebuild_ratio_vs_naive_read": round(sqlite["rebuild_events_per_s"] / naive_read, 1),
        "backends": backends,
    }
    if not args.keep:
        shutil.rmtree(work)
    print(json.dumps(result))


if __name__ == "__main__":
    main()
