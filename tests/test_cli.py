"""The command line as a user runs it: real processes, real files."""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from ersattning.store import open_store
from ersattning.synth import RegionSpec, iter_chunks
from tests.support import wait_for_first_commit

EXE = [shutil.which("ersattning")] if shutil.which("ersattning") else [sys.executable, "-m", "ersattning.cli.main"]


def run(*args: str, cwd: Path | None = None, env: dict[str, str] | None = None) -> subprocess.CompletedProcess:
    full_env = {k: v for k, v in os.environ.items() if k != "ERSATTNING_STORE"} | (env or {})
    return subprocess.run([*EXE, *args], capture_output=True, text=True, cwd=cwd, env=full_env, timeout=600)


def test_synth_then_history(tmp_path):
    done = run("synth", "--recipients", "30", "--months", "2", "--start", "2024-03", "--seed", "5", cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    assert "30 recipients, 2 months from 2024-03" in done.stdout
    assert (tmp_path / "ersattning.db").exists()  # the default store in the working directory
    out = run("history", "--format", "json", cwd=tmp_path)
    assert out.returncode == 0, out.stderr
    summary = json.loads(out.stdout)
    assert {"events", "recipients", "providers", "visits", "first_day", "last_day", "position"} <= set(summary)
    assert summary["recipients"] == 30 and summary["providers"] == 3
    assert summary["first_day"] == "2024-03-01" and summary["last_day"] == "2024-04-30"
    assert summary["events"]["total"] == summary["position"] > summary["visits"] > 0
    assert summary["events"]["by_type"]["Recipient.Enrolled"] == 30
    table = run("history", cwd=tmp_path)
    assert "Recipients  30" in table.stdout and "Visit.Planned" in table.stdout


def test_store_from_environment_and_option(tmp_path):
    env = {"ERSATTNING_STORE": f"sqlite:///{tmp_path / 'env.db'}"}
    assert run("synth", "--recipients", "5", "--months", "1", env=env, cwd=tmp_path).returncode == 0
    assert (tmp_path / "env.db").exists()
    out = run("history", "--format", "json", "--store", f"sqlite:///{tmp_path / 'env.db'}", cwd=tmp_path)
    assert json.loads(out.stdout)["recipients"] == 5


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["history", "--store", "mysql://x/y"], "unknown store URL scheme 'mysql'"),
        (["history", "--store", "sqlite:///nothing-here.db"], "no store at nothing-here.db"),
        (["history", "--store", "sqlite:///notes.txt"], "notes.txt is not an ersattning store"),
        (["synth", "--store", "sqlite:///no/such/dir/x.db"], "directory no/such/dir does not exist"),
        (["synth", "--start", "2024-13"], "start: Value error, start must be a month, YYYY-MM"),
        (["synth", "--set", "share_double_staffed"], "--set expects KEY=VALUE"),
        (["synth", "--set", "nonsense=1"], "unknown figure 'nonsense'"),
        (["synth", "--recipients", "0"], "recipients: Input should be greater than or equal to 1"),
    ],
)
def test_user_mistakes_are_one_line_and_exit_2(tmp_path, args, message):
    (tmp_path / "notes.txt").write_text("not a database")
    done = run(*args, cwd=tmp_path)
    assert done.returncode == 2
    assert "Traceback" not in done.stderr
    lines = done.stderr.strip().splitlines()
    assert len(lines) == 1 and message in lines[0], done.stderr
    assert not (tmp_path / "ersattning.db").exists()


def test_a_killed_synth_leaves_whole_batches_and_a_rerun_completes_it(tmp_path):
    spec = RegionSpec(recipients=1000, months=3, chunk_recipients=100, seed=9)
    db = tmp_path / "crash.db"
    args = ["synth", "--recipients", "1000", "--months", "3", "--seed", "9", "--store", f"sqlite:///{db}"]
    proc = subprocess.Popen([*EXE, *args], cwd=tmp_path, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    wait_for_first_commit(proc, db)
    assert proc.poll() is None, "synth finished before it could be killed"
    time.sleep(0.3)  # let it be somewhere inside a later batch
    proc.send_signal(signal.SIGKILL)
    proc.wait()

    expected = [set(zip(*batch.columns()[:2], strict=True)) for batch in iter_chunks(spec)]
    store = open_store(f"sqlite:///{db}", create=False)
    stored = {(oid.decode(), int(v)) for page in store.read_pages(0) for oid, v in zip(page.originator_id, page.originator_version, strict=True)}
    complete = [batch <= stored for batch in expected]
    touched = [bool(batch & stored) for batch in expected]
    assert complete == touched, "a batch was stored in part"
    assert any(complete) and not all(complete), "the kill should land between the first and the last batch"
    store.close()

    rerun = run(*args, cwd=tmp_path)
    assert rerun.returncode == 0, rerun.stderr
    assert "resumed:" in rerun.stdout
    store = open_store(f"sqlite:///{db}", create=False)
    stored_rows = [(oid, int(v)) for page in store.read_pages(0) for oid, v in zip(page.originator_id.tolist(), page.originator_version.tolist(), strict=True)]
    assert len(stored_rows) == len(set(stored_rows)) == sum(len(b) for b in expected)
    assert {(o.decode(), v) for o, v in stored_rows} == set().union(*expected)
