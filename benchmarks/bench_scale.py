"""Scale benchmark: the compare in one process, in local partitions and on a 2-worker Dask LocalCluster.

    python benchmarks/bench_scale.py [--workdir DIR] [--recipients 20000] [--scale 3] [--repeat 1] [--skip-large]

Measures, in one run, the default scenario's compare (without the break-even steps, as
bench_compare.py does) on the 12-month region of ``--recipients`` (benchmarks/region.py: the store
is reused, its partitioned projection written beside its cache once) and on a region ``--scale``
times that size. Each run is a fresh process; it reports its wall time and the peak memory of
every process (the parent's and each worker's VmHWM). The larger region is not written
through the store (60 M events would take long and ~32 GB of disk): it is the region-year's
projection replicated ``--scale`` times with distinct recipient ids (same providers, teams and
staff), written directly as a partitioned projection in ``--workdir`` and reused. The
single-process path is skipped there when its predicted peak (the measured one scaled by the
visits) exceeds ``--max-single-gb``. The partitioned runs settle from a warm dataset: the first pass
over it (the region-wide inputs of the trust-based model, kept beside it) is timed once apart, and
the LocalCluster's start (with its workers' imports) is timed apart from the compare on it. Targets (issue 16): ≤ 1 GB per worker whatever the region;
the 2-worker time ≤ 0.6 × the single-process time on the region-year; the large region completes.
Prints its figures and, as the last line, one JSON object.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "benchmarks"))

import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402
from region import region_store  # noqa: E402

from ersattning import __version__, projection  # noqa: E402
from ersattning.compare import compare_projection  # noqa: E402
from ersattning.partitioned.dataset import Dataset, ensure_dataset, open_dataset, partition_count, write_dataset  # noqa: E402
from ersattning.partitioned.runner import DaskPool, LocalPool, compare_partitioned, ensure_region_inputs  # noqa: E402
from ersattning.partitioned.settle import peak_rss, saved_inputs  # noqa: E402
from ersattning.projection import Projection  # noqa: E402
from ersattning.scenario import load_scenario  # noqa: E402
from ersattning.store import open_store  # noqa: E402

MB = 1024 * 1024


def replicated(proj: Projection, copies: int) -> Projection:
    """``proj`` with its recipients ``copies`` times over, each copy's recipient ids made distinct."""
    v = proj.visits
    cats = pd.Index(v["recipient"].cat.categories.astype(str))
    names = pd.Index([*cats] + [f"{r}~{c}" for c in range(1, copies) for r in cats])
    codes = v["recipient"].cat.codes.to_numpy().astype(np.int64)
    frames = []
    for c in range(copies):
        f = v.copy(deep=False)
        f["recipient"] = pd.Categorical.from_codes(codes + c * len(cats), categories=names)
        frames.append(f)
    visits = pd.concat(frames, ignore_index=True)

    def tables(t: pd.DataFrame) -> pd.DataFrame:
        out = [t] + [t.assign(recipient=t["recipient"].astype(str) + f"~{c}") for c in range(1, copies)]
        return pd.concat(out, ignore_index=True)

    return Projection(
        visits, tables(proj.recipients), tables(proj.decisions), tables(proj.stays), proj.providers, tables(proj.provider_choices),
        proj.position, None, proj.store_id, pd.DataFrame({"key_hi": [], "key_lo": []}),
    )  # fmt: skip


def large_dataset(url: str, workdir: Path, scale: int) -> Dataset:
    """The region ``scale`` times the region-year, as a partitioned projection (written once, then reused)."""
    base = workdir / f"region-x{scale}-partitioned"
    found = sorted(base.glob("position-*")) if base.is_dir() else []
    for path in found:
        if (path / "meta.json").exists():
            return open_dataset(path)
    t = time.perf_counter()
    proj = replicated(projection.load(open_store(url, create=False)), scale)
    p = partition_count(len(proj.visits))
    ds = write_dataset(proj, base / f"position-{proj.position}-p{p}", p)
    print(f"wrote the x{scale} region's partitioned projection ({sum(ds.visits):,} visits, {p} partitions) in {time.perf_counter() - t:.0f} s", flush=True)
    return ds


def warm_up() -> None:
    """What a fresh worker imports before its first task."""
    import ersattning.partitioned.settle  # noqa: F401


def child(mode: str, url: str, dataset: str | None, scale: int) -> dict[str, Any]:
    """One measured compare in this (fresh) process (the single path on the large region: the region-year's
    projection replicated in memory, the replication's time left out)."""
    sc = load_scenario("default")
    t = time.perf_counter()
    if mode == "single":
        store = open_store(url, create=False)
        proj = projection.load(store)
        if scale > 1:
            r = time.perf_counter()
            proj = replicated(proj, scale)
            t += time.perf_counter() - r
        c = compare_projection(sc, store, proj)
        del proj
        workers: list[int] = []
        partitions = 1
    elif mode == "local":
        ds = open_dataset(dataset) if dataset else ensure_dataset(open_store(url, create=False))
        c, stats = compare_partitioned(sc, None, dataset=ds, break_even=False)
        workers = sorted(stats.worker_peaks().values())
        partitions = ds.partitions
    else:  # a running 2-worker LocalCluster (its start, and the workers' imports, measured apart)
        ds = open_dataset(dataset) if dataset else ensure_dataset(open_store(url, create=False))
        pool = DaskPool(workers=2)
        pool.client.run(warm_up)
        started = time.perf_counter() - t
        t = time.perf_counter()
        c, stats = compare_partitioned(sc, None, dataset=ds, break_even=False, pool=pool)
        pool.close()
        workers = sorted(stats.worker_peaks().values())
        partitions = ds.partitions
    wall = time.perf_counter() - t
    return {
        "cluster_start_s": round(started, 2) if mode == "cluster" else None,
        "wall_s": round(wall, 2),
        "parent_peak_mb": round(peak_rss() / MB),
        "worker_peaks_mb": [round(w / MB) for w in workers],
        "partitions": partitions,
        "visits": int(c.manifest["visits"]),
        "cost_sek": {str(m): float(v) for m, v in zip(c.models["model"], c.models["cost_sek"], strict=True)},
    }


def region_inputs_once(ds: Dataset) -> float | None:
    """The first pass over a dataset (the region-wide inputs, then kept beside it), timed; None when already kept."""
    sc = load_scenario("default")
    if saved_inputs(str(ds.path), sc) is not None:
        return None
    t = time.perf_counter()
    pool = LocalPool(2)
    ensure_region_inputs(ds, sc, pool)
    pool.close()
    seconds = time.perf_counter() - t
    print(f"first pass over {ds.path.name} (region-wide inputs, kept beside it): {seconds:.1f} s", flush=True)
    return round(seconds, 2)


def run_child(mode: str, url: str, dataset: str | None, repeat: int, scale: int = 1) -> dict[str, Any]:
    """Median wall time of ``repeat`` fresh processes; the largest peaks seen (a failed run is reported, not raised)."""
    runs = []
    for _ in range(repeat):
        cmd = [sys.executable, __file__, "--child", mode, "--store", url, "--scale", str(scale)] + (["--dataset", dataset] if dataset else [])
        done = subprocess.run(cmd, capture_output=True, text=True, env={**os.environ, "PYTHONPATH": str(ROOT)})
        if done.returncode != 0:
            why = done.stderr.strip().splitlines()[-1] if done.stderr.strip() else f"exit status {done.returncode}"
            return {"failed": why, "wall_s": None, "parent_peak_mb": None, "worker_peak_mb": None}
        runs.append(json.loads(done.stdout.strip().splitlines()[-1]))
    out = dict(runs[-1])
    out["wall_s"] = round(statistics.median(r["wall_s"] for r in runs), 2)
    out["parent_peak_mb"] = max(r["parent_peak_mb"] for r in runs)
    out["worker_peak_mb"] = max((max(r["worker_peaks_mb"]) for r in runs if r["worker_peaks_mb"]), default=None)
    out["runs"] = len(runs)
    return out


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--workdir", default="/tmp/ersattning-bench")
    ap.add_argument("--recipients", type=int, default=20000)
    ap.add_argument("--scale", type=int, default=3, help="the large region is this many times the region-year")
    ap.add_argument("--repeat", type=int, default=1, help="fresh processes per measurement (the median is reported)")
    ap.add_argument("--skip-large", action="store_true")
    ap.add_argument("--max-single-gb", type=float, default=20.0, help="skip the single-process path where its predicted peak is above this")
    ap.add_argument("--child", default=None, help=argparse.SUPPRESS)
    ap.add_argument("--store", default=None, help="an existing store with a 12-month region")
    ap.add_argument("--dataset", default=None, help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.child:
        print(json.dumps(child(args.child, args.store, args.dataset, args.scale)))
        return

    workdir = Path(args.workdir)
    url, store = region_store(args.store, args.workdir, args.recipients)
    ds = ensure_dataset(store)  # the region-year's partitioned projection, beside its cache (written once)
    print(f"region-year: {sum(ds.visits):,} visits in {ds.partitions} partitions at {ds.path}", flush=True)
    results: dict[str, Any] = {"region_year": {}, "large": {}}
    first_pass = {"region_year": region_inputs_once(ds), "large": None}
    for mode in ("single", "local", "cluster"):
        r = run_child(mode, url, str(ds.path) if mode != "single" else None, args.repeat)
        results["region_year"][mode] = r
        started = f" (+ {r['cluster_start_s']:.1f} s to start the cluster)" if r.get("cluster_start_s") else ""
        print(f"region-year {mode:>7}: " + (f"failed: {r['failed']}" if "failed" in r else f"{r['wall_s']:6.1f} s{started}, parent peak {r['parent_peak_mb']:,} MB, worker peak {r['worker_peak_mb'] or '-'} MB"), flush=True)
    ry = results["region_year"]
    if any("failed" in r for r in ry.values()):
        raise SystemExit("a region-year run failed: " + "; ".join(f"{m}: {r['failed']}" for m, r in ry.items() if "failed" in r))
    costs_equal = ry["single"]["cost_sek"] == ry["local"]["cost_sek"] == ry["cluster"]["cost_sek"]
    ratio = ry["cluster"]["wall_s"] / ry["single"]["wall_s"]
    print(f"2-worker cluster / single process: {ratio:.2f} (target ≤ 0.6); costs identical: {costs_equal}")
    if not args.skip_large:
        big = large_dataset(url, workdir, args.scale)
        first_pass["large"] = region_inputs_once(big)
        visits = sum(big.visits)
        predicted_gb = ry["single"]["parent_peak_mb"] / 1024 * visits / ry["single"]["visits"]
        print(f"x{args.scale} region: {visits:,} visits in {big.partitions} partitions", flush=True)
        if predicted_gb > args.max_single_gb:
            print(f"x{args.scale} single: skipped, predicted peak {predicted_gb:.0f} GB (the region-year's {ry['single']['parent_peak_mb']:,} MB × {visits / ry['single']['visits']:.1f}) > {args.max_single_gb:g} GB")
            results["large"]["single"] = {"skipped": True, "predicted_peak_gb": round(predicted_gb, 1)}
        modes = ("local", "cluster") if predicted_gb > args.max_single_gb else ("single", "local", "cluster")
        for mode in modes:
            r = run_child(mode, url, str(big.path) if mode != "single" else None, args.repeat, args.scale if mode == "single" else 1)
            results["large"][mode] = r
            started = f" (+ {r['cluster_start_s']:.1f} s to start the cluster)" if r.get("cluster_start_s") else ""
            print(f"x{args.scale} {mode:>7}: " + (f"failed: {r['failed']}" if "failed" in r else f"{r['wall_s']:6.1f} s{started}, parent peak {r['parent_peak_mb']:,} MB, worker peak {r['worker_peak_mb'] or '-'} MB"), flush=True)
    worker_peaks = [r["worker_peak_mb"] for part in results.values() for r in part.values() if isinstance(r, dict) and r.get("worker_peak_mb")]
    summary = {
        "bench": "scale",
        "version": __version__,
        "python": platform.python_version(),
        "cpus": os.cpu_count(),
        "recipients": args.recipients,
        "scale": args.scale,
        "repeat": args.repeat,
        "region_year": {m: {k: v for k, v in r.items() if k != "cost_sek"} for m, r in ry.items()},
        "large": {m: {k: v for k, v in r.items() if k != "cost_sek"} for m, r in results["large"].items()},
        "large_costs_identical": len({json.dumps(r["cost_sek"], sort_keys=True) for r in results["large"].values() if "cost_sek" in r}) <= 1,
        "first_pass_s": first_pass,
        "cluster_over_single": round(ratio, 3),
        "costs_identical": costs_equal,
        "max_worker_peak_mb": max(worker_peaks) if worker_peaks else None,
        "targets": {"worker_peak_le_1gb": bool(worker_peaks) and max(worker_peaks) <= 1024, "cluster_le_0_6_single": ratio <= 0.6, "large_completes": args.skip_large or bool(results["large"].get("local", {}).get("wall_s"))},
    }
    print(json.dumps(summary))


if __name__ == "__main__":
    main()
