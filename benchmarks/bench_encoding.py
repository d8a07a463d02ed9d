"""Stored encoding benchmark: compact states against the legacy JSON, on the same synthetic region.

    python benchmarks/bench_encoding.py [--recipients 1100] [--months 12] [--repeat 3]

The region's columns are encoded both ways in the same run: the compact encoder
(``ersattning.store.bulk``) and the legacy JSON bulk encoder as it was
(``legacy_json_bulk.py``, today's stores). Each is appended to its own SQLite
store and measured: bytes per event on disk (page_count × page_size after a
checkpoint), encode events/s (the bulk encoders), decode events/s (the columnar
decoders on the visit events read back) and the projection rebuild events/s.
Speeds are medians of ``--repeat`` runs. The last line is one JSON object.
Targets (issue 14): ≤ 200 bytes per event on disk; decoding much faster than Arrow's JSON reader.
"""

from __future__ import annotations

import argparse
import json
import sqlite3
import statistics
import sys
import tempfile
import time
from collections import defaultdict
from collections.abc import Callable
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


def region_parts(spec: RegionSpec) -> list[list[Part]]:
    """The region's batches as the columns handed to the encoder (recorded from ``EventBatch.add``)."""
    recorded: list[Part] = []
    original = compact_bulk.EventBatch.add

    def record(self: compact_bulk.EventBatch, encoder: compact_bulk.EventEncoder, originator_id: np.ndarray, version: Any, columns: Any, arena: Any = None) -> None:
        if len(originator_id):
            recorded.append((encoder.event_class, np.asarray(originator_id, dtype="S32"), version, dict(columns)))
        original(self, encoder, originator_id, version, columns, arena)

    compact_bulk.EventBatch.add = record  # type: ignore[method-assign]
    try:
        providers = make_providers(spec)
        batches = []
        provider_batch(spec, providers)
        batches.append(recorded[:])
        for k in range(-(-spec.recipients // spec.chunk_recipients)):
            recorded.clear()
            generate_chunk(spec, providers, k)
            batches.append(recorded[:])
    finally:
        compact_bulk.EventBatch.add = original  # type: ignore[method-assign]
    return batches


def encode(batches: list[list[Part]], legacy: bool) -> tuple[list[compact_bulk.EventBatch], float]:
    """Every batch encoded one way, and the seconds spent encoding."""
    out, seconds = [], 0.0
    for parts in batches:
        batch = compact_bulk.EventBatch.empty()
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
        out.append(batch)
    return out, seconds


def median(fn: Callable[[], float], repeat: int) -> float:
    return statistics.median(fn() for _ in range(repeat))


def measure(label: str, batches: list[list[Part]], path: Path, repeat: int) -> dict[str, Any]:
    legacy = label == "legacy"
    encoded, _ = encode(batches, legacy)
    events = sum(len(b) for b in encoded)
    encode_s = median(lambda: encode(batches, legacy)[1], repeat)
    store = open_store(f"sqlite:///{path}")
    t = time.perf_counter()
    for batch in encoded:
        compact_bulk.append_batch(store, batch)
    store.checkpoint()
    append_s = time.perf_counter() - t
    con = sqlite3.connect(path)
    disk = con.execute("PRAGMA page_count").fetchone()[0] * con.execute("PRAGMA page_size").fetchone()[0]
    state_bytes = con.execute("SELECT SUM(LENGTH(state)), SUM(LENGTH(topic)) FROM stored_events").fetchone()
    con.close()
    # columnar decoding of the visit events as read back (the projection's hot path)
    by_topic: dict[str, list[bytes]] = defaultdict(list)
    for page in store.read_pages(0):
        for topic, state in zip(page.topic.tolist(), page.state, strict=True):
            by_topic[topic].append(state)
    visit_classes = {*VISIT_EVENTS.values(), *COMBINED_EVENTS}
    parts = []
    for topic, states in by_topic.items():
        cls = compact_class(topic)
        if cls is None:
            cls = next((c for c in visit_classes if f"{c.__module__}:{c.__qualname__}" == topic), None)
        if cls in visit_classes:
            parts.append((cls, states))
    decoded = sum(len(s) for _, s in parts)

    def decode_once() -> float:
        t = time.perf_counter()
        for cls, states in parts:
            (decode_json_columns if legacy else decode_columns)(cls, states)
        return time.perf_counter() - t

    decode_s = median(decode_once, repeat)

    def rebuild_once() -> float:
        store.projection_cache = None
        t = time.perf_counter()
        projection.update(store, rebuild=True)
        return time.perf_counter() - t

    rebuild_s = median(rebuild_once, repeat)
    store.close()
    figures = {
        "events": events,
        "bytes_per_event_on_disk": round(disk / events, 1),
        "state_bytes_per_event": round(state_bytes[0] / events, 1),
        "topic_bytes_per_event": round(state_bytes[1] / events, 1),
        "encode_events_per_s": round(events / encode_s),
        "append_events_per_s": round(events / append_s),
        "decode_visit_events_per_s": round(decoded / decode_s),
        "rebuild_events_per_s": round(events / rebuild_s),
    }
    print(f"[{label}] " + ", ".join(f"{k} {v:,}" for k, v in figures.items()), flush=True)
    return figures


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0] if __doc__ else None)
    parser.add_argument("--recipients", type=int, default=1100)
    parser.add_argument("--months", type=int, default=12)
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args()
    spec = RegionSpec(recipients=args.recipients, months=args.months, start="2024-01", seed=1)
    t = time.perf_counter()
    batches = region_parts(spec)
    print(f"region: {args.recipients} recipients x {args.months} months, columns generated in {time.perf_counter() - t:.1f} s", flush=True)
    with tempfile.TemporaryDirectory() as tmp:
        result = {label: measure(label, batches, Path(tmp) / f"{label}.db", args.repeat) for label in ("legacy", "compact")}
    result["recipients"] = args.recipients
    result["months"] = args.months
    result["repeat"] = args.repeat
    print(json.dumps(result))


if __name__ == "__main__":
    main()
