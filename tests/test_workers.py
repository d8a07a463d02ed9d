"""A researcher's script without ``if __name__ == "__main__":`` is not run again in ersattning's worker processes."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]

# Unguarded on purpose: every line runs again in any worker that imports the main script.
REBUILD = """
import ersattning.projection.rebuild as rebuild
rebuild.PARALLEL_MIN_EVENTS = 0  # the rebuild in worker processes even for this small store
from ersattning import projection
from ersattning.store import open_store
from ersattning.synth import RegionSpec, synthesize
print("script ran", flush=True)
store = open_store("sqlite:///{db}")
synthesize(store, RegionSpec(recipients=20, months=1, start="2024-01", seed=1))
again = open_store("sqlite:///{db}")
print("visits", len(projection.load(again, rebuild=True).visits), "workers", rebuild.workers_for(again, again.position()), flush=True)
"""

PARTITIONS = """
from ersattning.partitioned.runner import compare_partitioned
from ersattning.scenario import Period, load_scenario
from ersattning.store import open_store
from ersattning.synth import RegionSpec, synthesize
print("script ran", flush=True)
store = open_store("sqlite:///{db}")
synthesize(store, RegionSpec(recipients=20, months=1, start="2024-01", seed=1))
january = load_scenario("default").with_period(Period(start="2024-01", end="2024-01"))  # the one month the region holds
c, stats = compare_partitioned(january, store, partitions=2, break_even=False)
print("mode", stats.mode, "processes", len(stats.worker_peaks()), flush=True)
"""


def _run(script: str, tmp_path: Path) -> str:
    path = tmp_path / "study.py"
    path.write_text(script.format(db=tmp_path / "region.db"))
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(ROOT), os.environ.get("PYTHONPATH", "")])}
    try:
        out = subprocess.run([sys.executable, str(path)], cwd=tmp_path, env=env, capture_output=True, text=True, timeout=180)
    except subprocess.TimeoutExpired as e:  # before the fix: the copies of the script wrote to the store the rebuild waited on
        pytest.fail(f"the unguarded script hung: {e.stdout!r}")
    assert out.returncode == 0, out.stderr[-2000:]
    return out.stdout


def test_a_parallel_rebuild_does_not_run_the_script_again(tmp_path: Path) -> None:
    out = _run(REBUILD, tmp_path)
    assert out.count("script ran") == 1, out
    assert f"workers {os.cpu_count() or 1}" in out and "visits " in out, out


def test_local_partition_processes_do_not_run_the_script_again(tmp_path: Path) -> None:
    out = _run(PARTITIONS, tmp_path)
    assert out.count("script ran") == 1, out
    assert "mode local pool" in out and "processes" in out, out


def test_nested_blocks_restore_the_main_module() -> None:
    """A pool started while another starts (nested blocks, one thread) neither waits on itself nor loses the script's name."""
    from ersattning.workers import main_not_reimported

    main = sys.modules["__main__"]
    before = (main.__dict__.get("__file__"), main.__dict__.get("__spec__"))
    with main_not_reimported():
        assert "__file__" not in main.__dict__ and main.__spec__ is None
        with main_not_reimported():
            assert "__file__" not in main.__dict__
    assert (main.__dict__.get("__file__"), main.__dict__.get("__spec__")) == before
