"""Stored encoding benchmark: compact states against the legacy JSON, on the same synthetic region.

    python benchmarks/bench_encoding.py [--recipients 1100] [--months 12] [--repeat 3]

The region's columns are encoded both ways in the same run: the compact encoder
(``ersattning.store.bulk``) and the legacy JSON bulk encoder as it was
(``legacy_json_bulk.py``, today's stores). Each is appended to its own SQLite
store and measured: bytes per event on disk (page_count × page_size after a
checkpoint), encode events/s (the bulk encoders), decode events/s (the columnar
decoders on the visit events read back) and the projection rebuild events/s.
Speeds are medians of ``--repeat`` runs. The region is generated, encoded and
appended one batch (a chunk of recipients) at a time, and read back a page at a
time, so memory does not grow with ``--recipients`` past the stores' SQLite page
caches (256 MB each); peak RSS is printed before the rebuilds and in all (a rebuild
holds the projection, which grows with the region). The last line is one JSON object.
Targets (issue 14): ≤ 200 bytes per event on disk; decoding much faster than Arrow's JSON reader.
"""

from __future__ import annotations

import argparse
import functools
import json
import resource
import sqlite3
import statistics
import sys
import tempfile
import time
from collections import defaultdict
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))

import legacy_json_bulk  # noqa: E402

from ersattning import projection  # noqa: E402
from ersattning.projection.decode import COMBINED_EVENTS, VISIT_EVENTS  # noqa: E402
from ersattning.store import bulk as compact_bulk  # noqa: E402
from ersattning.store import open_store  # noqa: E402
from ersattning.store.compact import decode_columns, decode_json_columns  # noqa: E402
from ersattning.store.encoding import compact_class  # noqa: E402
from ersattning.synth import RegionSpec, generate_chunk, make_providers, provider_batch  # noqa: E402

Part = tuple[type, np.ndarray, Any, dict[str, Any]]  # event class, ids, versions, columns
DECODE_EVENTS = 500_000  # visit states decoded per call (the projection decodes a page at a time too)


def _recorded(make: Callable[[], Any]) -> list[Part]:
    """The columns ``make`` hands to the encoder (recorded from ``EventBatch.add``)."""
    recorded: list[Part] = []
    original = compact_bulk.EventBatch.add

    def record(self: compact_bulk.EventBatch, encoder: compact_bulk.EventEncoder, originator_id: np.ndarray, version: Any, columns: Any, arena: Any = None) -> None:
        if len(originator_id):
            recorded.append((encoder.event_class, np.asarray(originator_id, dtype="S32"), version, dict(columns)))
        original(self, encoder, originator_id, version, columns, arena)

    compact_bulk.EventBatch.add = record  # type: ignore[method-assign]
    try:
        make()
    finally:
        compact_bulk.EventBatch.add = original  # type: ignore[method-assign]
    return recorded


def region_parts(spec: RegionSpec) -> Iterator[list[Part]]:
    """The region's batches one at a time (providers, then each chunk of recipients), as encoder columns:
    only one batch is in memory at once."""
    providers = make_providers(spec)
    yield _recorded(lambda: provider_batch(spec, providers))
    for k in range(-(-spec.recipients // spec.chunk_recipients)):
        yield _recorded(functools.partial(generate_chunk, spec, providers, k))


def encode(parts: list[Part], legacy: bool) -> tuple[compact_bulk.EventBatch, float]:
    """One batch encoded one way, and the seconds spent encoding."""
    batch, seconds = compact_bulk.EventBatch.empty(), 0.0
    for cls, ids, version, columns in parts:
        n = len(ids)
        t = time.perf_counter()
        if legacy:
            fixed = legacy_json_bulk.encoder_for(cls).encode(n, columns)
            width = fixed.dtype.itemsize
            states = compact_bulk.States(fixed.view(np.uint8).reshape(-1), np.arange(n + 1, dtype=np.int64) * width)
            topic = legacy_json_bulk.encoder_for(cls).topic
        else:
            enc = compact_bulk.encoder_for(cls)
            states, topic = enc.encode(n, columns), enc.topic
        seconds += time.perf_counter() - t
        batch.originator_id.append(ids)
        batch.version.append(np.broadcast_to(np.asarray(version, dtype=np.int64), (n,)))
        batch.topic.append(topic)
        batch.state.append(states)
    return batch, seconds


def median(fn: Callable[[], float], repeat: int) -> float:
    return statistics.median(fn() for _ in range(repeat))


def peak_rss_mb() -> int:
    return round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024)


class Run:
    """One encoding's store, filled a batch at a time, then measured."""

    def __init__(self, label: str, path: Path, repeat: int) -> None:
        self.label, self.path, self.repeat = label, path, repeat
        self.legacy = label == "legacy"
        self.store = open_store(f"sqlite:///{path}")
        self.events = 0
        self.encode_s = [0.0] * repeat  # per repeat, summed over batches (the median is taken over repeats)
        self.append_s = 0.0

    def add(self, parts: list[Part]) -> None:
        for r in range(self.repeat):
            batch, seconds = encode(parts, self.legacy)
            self.encode_s[r] += seconds
        t = time.perf_counter()
        self.events += compact_bulk.append_batch(self.store, batch)
        self.append_s += time.perf_counter() - t

    def decode_s(self) -> tuple[int, float]:
        """The visit events read back and decoded by the columnar decoders (the projection's hot path), a few
        hundred thousand at a time: how many, and the median seconds of ``repeat`` runs."""
        visit_classes = {*VISIT_EVENTS.values(), *COMBINED_EVENTS}
        long = {f"{c.__module__}:{c.__qualname__}": c for c in visit_classes}
        decoder = decode_json_columns if self.legacy else decode_columns
        totals, decoded = [0.0] * self.repeat, 0
        pending: dict[type, list[bytes]] = defaultdict(list)

        def flush() -> None:
            for r in range(self.repeat):
                t = time.perf_counter()
                for cls, states in pending.items():
                    decoder(cls, states)
                totals[r] += time.perf_counter() - t
            pending.clear()

        waiting = 0
        for page in self.store.read_pages(0):
            for topic, state in zip(page.topic.tolist(), page.state, strict=True):
                cls = compact_class(topic) or long.get(topic)
                if cls in visit_classes:
                    pending[cls].append(state)
                    waiting += 1
            if waiting >= DECODE_EVENTS:
                decoded, waiting = decoded + waiting, 0
                flush()
        flush()
        return decoded + waiting, statistics.median(totals)

    def finish(self) -> dict[str, Any]:
        """Checkpoint, size on disk, decode speed."""
        store, events = self.store, self.events
        t = time.perf_counter()
        store.checkpoint()
        append_s = self.append_s + time.perf_counter() - t
        con = sqlite3.connect(self.path)
        disk = con.execute("PRAGMA page_count").fetchone()[0] * con.execute("PRAGMA page_size").fetchone()[0]
        state_bytes = con.execute("SELECT SUM(LENGTH(state)), SUM(LENGTH(topic)) FROM stored_events").fetchone()
        con.close()
        decoded, decode_s = self.decode_s()
        return {
            "events": events,
            "bytes_per_event_on_disk": round(disk / events, 1),
            "state_bytes_per_event": round(state_bytes[0] / events, 1),
            "topic_bytes_per_event": round(state_bytes[1] / events, 1),
            "encode_events_per_s": round(events / statistics.median(self.encode_s)),
            "append_events_per_s": round(events / append_s),
            "decode_visit_events_per_s": round(decoded / decode_s),
        }

    def rebuild(self, figures: dict[str, Any]) -> dict[str, Any]:
        """The projection rebuilt from the store (it holds the projection: its memory grows with the region)."""
        store = self.store

        def rebuild_once() -> float:
            store.projection_cache = None
            t = time.perf_counter()
            projection.update(store, rebuild=True)
            return time.perf_counter() - t

        rebuild_s = median(rebuild_once, self.repeat)
        store.close()
        figures = {**figures, "rebuild_events_per_s": round(self.events / rebuild_s)}
        print(f"[{self.label}] " + ", ".join(f"{k} {v:,}" for k, v in figures.items()), flush=True)
        return figures


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0] if __doc__ else None)
    parser.add_argument("--recipients", type=int, default=1100)
    parser.add_argument("--months", type=int, default=12)
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args()
    spec = RegionSpec(recipients=args.recipients, months=args.months, start="2024-01", seed=1)
    with tempfile.TemporaryDirectory() as tmp:
        runs = {label: Run(label, Path(tmp) / f"{label}.db", args.repeat) for label in ("legacy", "compact")}
        t, generate_s = time.perf_counter(), 0.0
        for parts in region_parts(spec):  # one batch at a time: memory does not grow with the region
            generate_s += time.perf_counter() - t
            for run in runs.values():
                run.add(parts)
            t = time.perf_counter()
        print(f"region: {args.recipients} recipients x {args.months} months, columns generated in {generate_s:.1f} s", flush=True)
        measured = {label: run.finish() for label, run in runs.items()}
        before_rebuilds = peak_rss_mb()
        result: dict[str, Any] = {label: run.rebuild(measured[label]) for label, run in runs.items()}
    result["recipients"] = args.recipients
    result["months"] = args.months
    result["repeat"] = args.repeat
    result["peak_rss_mb_before_rebuilds"] = before_rebuilds  # generate, encode, append, read back, decode
    result["peak_rss_mb"] = peak_rss_mb()  # the rebuilds included
    print(f"peak memory {before_rebuilds:,} MB before the rebuilds, {result['peak_rss_mb']:,} MB in all", flush=True)
    print(json.dumps(result))


if __name__ == "__main__":
    main()
