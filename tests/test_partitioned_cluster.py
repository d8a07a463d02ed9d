"""The partitioned compare on real processes: a Dask LocalCluster of two workers, the local pool, and the CLI."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from ersattning.compare import compare
from ersattning.partitioned import runner
from ersattning.partitioned.runner import ClusterError, DaskPool, compare_partitioned
from ersattning.scenario import Period, load_scenario
from ersattning.store import open_store
from ersattning.synth import RegionSpec, synthesize
from tests.test_partitioned import document

EXE = [sys.executable, "-m", "ersattning.cli.main"]


@pytest.fixture(scope="module")
def store_url(tmp_path_factory: pytest.TempPathFactory) -> str:
    url = f"sqlite:///{tmp_path_factory.mktemp('cluster') / 'region.db'}"
    synthesize(open_store(url), RegionSpec(recipients=40, months=2, start="2024-01", seed=7, providers=3))
    return url


#: the two months the region of ``store_url`` holds: every comparison here settles them
PERIOD = Period(start="2024-01", end="2024-02")
CLI_PERIOD = ("--period", "2024-01..2024-02")


def test_local_cluster_of_two_workers_gives_the_single_process_json(store_url: str) -> None:
    sc = load_scenario("default").with_period(PERIOD)
    store = open_store(store_url, create=False)
    single = document(compare(sc, store, suppress=False))
    c, stats = compare_partitioned(sc, store, partitions=3, workers=2, suppress=False)
    assert document(c) == single
    assert stats.mode.startswith("dask LocalCluster")
    workers = stats.worker_peaks()
    assert 1 <= len(workers) <= 2 and os.getpid() not in workers  # the tasks ran in the workers, not here
    assert all(0 < peak < 2 * 1024**3 for peak in workers.values())


def test_local_pool_gives_the_single_process_json(store_url: str) -> None:
    sc = load_scenario("karlskrona").with_period(PERIOD)  # the team amount and the quality bonus need the region-wide prepass
    store = open_store(store_url, create=False)
    c, stats = compare_partitioned(sc, store, partitions=2, suppress=False)
    assert document(c) == document(compare(sc, store, suppress=False))
    assert stats.mode.startswith("local pool")


def test_an_unreachable_scheduler_is_one_clear_error(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(runner, "CONNECT_TIMEOUT", "1s")
    with pytest.raises(ClusterError, match="cannot reach the Dask scheduler at tcp://127.0.0.1:9.*dask scheduler"):
        DaskPool(scheduler="tcp://127.0.0.1:9")


def _cli(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    full = {k: v for k, v in os.environ.items() if k not in ("ERSATTNING_STORE", runner.SCHEDULER_ENV)} | (env or {})
    return subprocess.run([*EXE, *args], capture_output=True, text=True, env=full, timeout=600)


def _doc(done: subprocess.CompletedProcess[str]) -> dict[str, Any]:
    assert done.returncode == 0, done.stderr
    doc: dict[str, Any] = json.loads(done.stdout)
    doc["manifest"].pop("created_at")
    return doc


def test_cli_partitions_and_workers_print_the_same_json(store_url: str) -> None:
    one = _doc(_cli("compare", "--store", store_url, *CLI_PERIOD, "--format", "json", "--partitions", "0"))
    assert _doc(_cli("compare", "--store", store_url, *CLI_PERIOD, "--format", "json", "--partitions", "3")) == one
    assert _doc(_cli("compare", "--store", store_url, *CLI_PERIOD, "--format", "json", "--workers", "2")) == one
    assert Path(store_url.removeprefix("sqlite:///") + ".projection", "partitions").is_dir()


def test_cli_unreachable_scheduler_from_the_environment_is_one_line(store_url: str) -> None:
    done = _cli("compare", "--store", store_url, *CLI_PERIOD, "--format", "json", env={runner.SCHEDULER_ENV: "tcp://127.0.0.1:9"})
    assert done.returncode == 2
    lines = done.stderr.strip().splitlines()
    assert lines[-1].startswith("ersattning: error: cannot reach the Dask scheduler at tcp://127.0.0.1:9") and "Traceback" not in done.stderr
