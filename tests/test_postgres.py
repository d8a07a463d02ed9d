"""PostgreSQL as a team's shared store, against a real server (see tests/conftest.py).

Opening (fail fast with the real cause, never the password, .pgpass and PG* variables,
read-only opens create nothing), roles with only SELECT, concurrent writers, a
held transaction, a killed synth, and the same comparison as on SQLite.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

import psycopg
import pytest
from click.testing import CliRunner

from ersattning import projection
from ersattning.cli.main import cli
from ersattning.store import StoreError, open_store
from ersattning.store.encoding import long_topic
from ersattning.store.postgres import EVENTS_TABLE, PostgresStore, copy_data
from ersattning.synth import RegionSpec, iter_chunks
from tests.conftest import PostgresServer
from tests.test_append_process import _visits

pytestmark = pytest.mark.postgres

ROOT = Path(__file__).resolve().parent.parent
SECRET = "s3cret-Pass"


def _tables(url: str) -> set[str]:
    with psycopg.connect(url) as conn:
        return {r[0] for r in conn.execute("SELECT tablename FROM pg_tables WHERE schemaname='public'")}


def _with(url: str, **changes: str | int | None) -> str:
    """The URL with user, password, host or port changed (None: left out)."""
    parts = urlsplit(url)
    user = changes.get("user", parts.username)
    password = changes.get("password", parts.password)
    host = changes.get("host", parts.hostname)
    port = changes.get("port", parts.port)
    auth = f"{user}:{password}@" if user and password else f"{user}@" if user else ""
    return urlunsplit(parts._replace(netloc=f"{auth}{host or ''}{f':{port}' if port else ''}"))


@pytest.fixture
def role(postgres_server: PostgresServer, postgres_url: str) -> Iterator[str]:
    """A login role with a password that may make a store in the test database (as a DBA would grant)."""
    name = f"ers_role_{os.getpid()}"
    postgres_server.execute(f"DROP ROLE IF EXISTS {name}")
    postgres_server.execute(f"CREATE ROLE {name} LOGIN PASSWORD '{SECRET}'")
    dbname = urlsplit(postgres_url).path.lstrip("/")
    postgres_server.execute(f"GRANT CONNECT ON DATABASE {dbname} TO {name}")
    _as_owner(postgres_url, f"GRANT USAGE, CREATE ON SCHEMA public TO {name}")
    yield name
    _forget_role(postgres_server, postgres_url, name)


def _as_owner(url: str, sql: str) -> None:
    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute(sql)


def _forget_role(server: PostgresServer, url: str, name: str) -> None:
    _as_owner(url, f"DROP OWNED BY {name}")  # its tables and every privilege it was given, the database's included
    server.execute(f"DROP ROLE IF EXISTS {name}")


# -- opening ----------------------------------------------------------------------------------


def test_an_existing_store_opens_again_with_its_id_and_read_only_opens_create_nothing(postgres_url: str) -> None:
    with pytest.raises(StoreError, match="no store in postgresql://.*create one with `ersattning synth`"):
        open_store(postgres_url, create=False)
    assert _tables(postgres_url) == set()
    made = open_store(postgres_url)
    assert isinstance(made, PostgresStore)
    again = open_store(postgres_url, create=False)
    assert again.store_id == made.store_id and again.position() == 0
    assert again.get_meta("schema") == "1" and again.get_meta("nothing") is None
    again.set_meta("note", "a")
    again.set_meta("note", "b")
    assert made.get_meta("note") == "b"
    assert _tables(postgres_url) == {EVENTS_TABLE, "ersattning_meta"}
    made.close()
    again.close()


def test_history_and_compare_on_an_empty_database_create_nothing(postgres_url: str) -> None:
    runner = CliRunner()
    for args in (["history", "--store", postgres_url], ["compare", "--store", postgres_url, "--format", "json"]):
        done = runner.invoke(cli, args)
        assert done.exit_code == 2, done.output
        assert "no store in" in done.output and "Traceback" not in done.output
    assert _tables(postgres_url) == set()


def _refused(url: str) -> tuple[str, float]:
    started = time.perf_counter()
    with pytest.raises(StoreError) as caught:
        open_store(url)
    return str(caught.value), time.perf_counter() - started


def test_connection_failures_are_fast_and_say_why_without_the_password(postgres_url: str, role: str) -> None:
    url = _with(postgres_url, user=role, password=SECRET)
    open_store(url).close()  # the role works
    free_port = 1  # nothing listens on port 1
    cases = {
        "Connection refused": _with(url, port=free_port),
        "password authentication failed": _with(url, password="wrong-" + SECRET),
        "does not exist": url.rsplit("/", 1)[0] + "/no_such_database",
    }
    for cause, bad in cases.items():
        message, seconds = _refused(bad)
        assert cause in message, message
        assert seconds < 6, (cause, seconds)
        assert SECRET not in message and "***" in message
        assert "\n" not in message
    # the CLI: one line, exit 2, no password
    done = CliRunner().invoke(cli, ["history", "--store", cases["password authentication failed"]])
    assert done.exit_code == 2 and SECRET not in done.output and "password authentication failed" in done.output


def test_a_url_without_a_password_uses_pgpassword_or_pgpass(postgres_url: str, role: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    url = _with(postgres_url, user=role, password=None)
    monkeypatch.delenv("PGPASSWORD", raising=False)
    monkeypatch.setenv("PGPASSFILE", str(tmp_path / "absent"))
    message, _ = _refused(url)
    assert "password" in message  # the server asked for one and none was found
    monkeypatch.setenv("PGPASSWORD", SECRET)
    open_store(url).close()
    monkeypatch.delenv("PGPASSWORD")
    parts = urlsplit(url)
    pgpass = tmp_path / "pgpass"
    pgpass.write_text(f"{parts.hostname}:{parts.port}:*:{role}:{SECRET}\n")
    pgpass.chmod(0o600)
    monkeypatch.setenv("PGPASSFILE", str(pgpass))
    store = open_store(url, create=False)
    assert store.position() == 0
    store.close()


def test_the_readmes_grants_let_a_writer_append_and_a_reader_read(postgres_server: PostgresServer, postgres_url: str) -> None:
    owner = open_store(postgres_url)  # the role that makes the store owns it
    owner.append(*_rows(RegionSpec(recipients=6, months=1, chunk_recipients=6, seed=3)))
    dbname = urlsplit(postgres_url).path.lstrip("/")
    writer, reader = f"ers_writer_{os.getpid()}", f"ers_reader_{os.getpid()}"
    grants = {
        writer: [
            f"GRANT USAGE ON SCHEMA public TO {writer}",
            f"GRANT SELECT, INSERT ON ALL TABLES IN SCHEMA public TO {writer}",
            f"GRANT USAGE ON ALL SEQUENCES IN SCHEMA public TO {writer}",
            f"GRANT UPDATE ON {EVENTS_TABLE} TO {writer}",
        ],
        reader: [f"GRANT USAGE ON SCHEMA public TO {reader}", f"GRANT SELECT ON ALL TABLES IN SCHEMA public TO {reader}"],
    }
    try:
        for name, statements in grants.items():
            postgres_server.execute(f"DROP ROLE IF EXISTS {name}")
            postgres_server.execute(f"CREATE ROLE {name} LOGIN PASSWORD '{SECRET}'")
            postgres_server.execute(f"GRANT CONNECT ON DATABASE {dbname} TO {name}")
            for statement in statements:
                _as_owner(postgres_url, statement)
        as_writer = open_store(_with(postgres_url, user=writer, password=SECRET), create=True)
        more = list(zip(*_rows(RegionSpec(recipients=4, months=1, chunk_recipients=4, seed=8)), strict=True))
        as_writer.append(*map(list, zip(*(r for r in more if not long_topic(r[2]).endswith("Provider.Registered")), strict=True)))  # the providers are in
        as_writer.set_meta("written_by", "writer")  # a new key, as synth records its region
        as_writer.close()

        url = _with(postgres_url, user=reader, password=SECRET)
        store = open_store(url, create=False)
        assert store.store_id == owner.store_id and store.get_meta("written_by") == "writer"
        assert len(projection.load(store).visits) == len(projection.load(owner).visits) > 0
        done = CliRunner().invoke(cli, ["history", "--store", url, "--format", "json"])
        assert done.exit_code == 0, done.output
        with pytest.raises(StoreError, match="permission denied"):
            store.append(["0" * 32], [1], ["t"], [b"{}"])  # no INSERT privilege
        store.close()
    finally:
        owner.close()
        for name in grants:
            _forget_role(postgres_server, postgres_url, name)


# -- writing ----------------------------------------------------------------------------------


def _rows(spec: RegionSpec) -> tuple[list[str], list[int], list[str], list[bytes]]:
    cols: tuple[list, list, list, list] = ([], [], [], [])
    for batch in iter_chunks(spec):
        for acc, part in zip(cols, batch.columns(), strict=True):
            acc.extend(part)
    return cols


def test_copy_rows_are_the_rows_the_library_reads(postgres_url: str) -> None:
    store = open_store(postgres_url)
    ids, versions, topics, states = _rows(RegionSpec(recipients=5, months=1, chunk_recipients=5, seed=4))
    store.append(ids, versions, topics, states)
    notes = store.recorder.select_notifications(1, len(ids) + 10)
    assert [(n.originator_id.hex, n.originator_version, n.topic, n.state) for n in notes] == list(zip(ids, versions, topics, states, strict=True))
    assert [n.id for n in notes] == sorted(n.id for n in notes)
    # the library's repository reads the aggregates back
    recipient = next(i for i, t in zip(ids, topics, strict=True) if long_topic(t).endswith("Recipient.Enrolled"))
    from uuid import UUID

    assert store.app.repository.get(UUID(recipient)).version >= 1
    assert copy_data([], [], [], []).startswith(b"PGCOPY")
    store.close()


def test_a_large_batch_goes_in_one_transaction_without_hanging(postgres_url: str) -> None:
    """The library's pipeline insert hangs above ~8–12 MB of parameters; COPY streams any size."""
    store = open_store(postgres_url)
    n = 40_000
    big = b'{"x":"' + b"a" * 500 + b'"}'
    store.append([f"{i:032x}" for i in range(1, n + 1)], [1] * n, ["t:T"] * n, [big] * n)  # ~20 MB
    assert store.position() >= n and store.events_by_topic() == {"t:T": n}
    store.close()


def test_two_concurrent_importers_both_write_whole_batches_in_id_order(postgres_url: str) -> None:
    """Two writers at once, each batch one transaction: the table lock gives each batch a contiguous,
    increasing run of ids, committed in id order."""
    open_store(postgres_url).close()
    batches = {w: [[f"{w:02x}{b:06x}{i:024x}" for i in range(2000)] for b in range(5)] for w in (1, 2)}
    errors: list[BaseException] = []

    def write(w: int) -> None:
        try:
            store = open_store(postgres_url)
            for ids in batches[w]:
                store.append(ids, [1] * len(ids), [f"w:{w}"] * len(ids), [b"{}"] * len(ids))
            store.close()
        except BaseException as e:  # noqa: BLE001 - reported below
            errors.append(e)

    threads = [threading.Thread(target=write, args=(w,)) for w in (1, 2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not errors
    store = open_store(postgres_url, create=False)
    page = next(store.read_pages(0, page_size=100_000))
    assert len(page) == 20_000
    ids = page.originator_id.astype("U32")
    runs = [ids[k : k + 2000] for k in range(0, 20_000, 2000)]
    assert all(len({r[:8] for r in run}) == 1 for run in runs)  # no batch interleaved with another
    store.close()


def test_a_reader_holding_a_transaction_still_sees_both_writers_batches(postgres_url: str) -> None:
    """A batch whose transaction is held open makes the next writer wait (the table lock), so the
    reader never passes an id that commits later: after both commit it sees both, in id order."""
    store = open_store(postgres_url)
    store.append(["a" * 32], [1], ["t:A"], [b"{}"])
    projection_position = store.position()
    held = psycopg.connect(postgres_url)
    held.execute(f"LOCK TABLE public.{EVENTS_TABLE} IN EXCLUSIVE MODE")  # as a writer mid-batch holds it
    held.execute(f"INSERT INTO public.{EVENTS_TABLE} (originator_id, originator_version, topic, state) VALUES ('{'b' * 32}', 1, 't:B', '{{}}')")
    other = threading.Thread(target=lambda: open_store(postgres_url).append(["c" * 32], [1], ["t:C"], [b"{}"]))
    other.start()
    time.sleep(0.5)
    assert other.is_alive()  # waiting for the lock, not committing past the held batch
    seen = [int(i) for p in store.read_pages(projection_position) for i in p.notification_id]
    assert seen == []
    held.commit()
    held.close()
    other.join(10)
    assert not other.is_alive()
    after = [(p.originator_id.tolist(), p.notification_id.tolist()) for p in store.read_pages(projection_position)]
    assert [i.decode()[0] for i in after[0][0]] == ["b", "c"]
    assert after[0][1] == sorted(after[0][1])
    store.close()


def test_a_conflict_burns_ids_and_pages_still_follow_them(postgres_url: str) -> None:
    from ersattning.store import AppendConflict

    store = open_store(postgres_url)
    store.append(["a" * 32], [1], ["t:A"], [b"{}"])
    with pytest.raises(AppendConflict, match="nothing of this batch was written"):
        store.append(["b" * 32, "a" * 32], [1, 1], ["t:B", "t:A"], [b"{}", b"{}"])
    store.append(["c" * 32], [1], ["t:C"], [b"{}"])
    ids = [int(i) for p in store.read_pages(0, page_size=1) for i in p.notification_id]
    assert len(ids) == 2 and ids[1] > ids[0] + 1  # the refused batch's ids are a gap
    store.close()


def test_a_killed_synth_leaves_whole_batches_and_a_rerun_completes_it(postgres_url: str, tmp_path: Path) -> None:
    spec = RegionSpec(recipients=1000, months=3, chunk_recipients=100, seed=9)
    args = ["synth", "--recipients", "1000", "--months", "3", "--seed", "9", "--store", postgres_url]
    exe = [sys.executable, "-m", "ersattning.cli.main"]
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    expected = [set(zip(*batch.columns()[:2], strict=True)) for batch in iter_chunks(spec)]
    proc = subprocess.Popen([*exe, *args], cwd=tmp_path, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, env=env)
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline and proc.poll() is None:
        try:
            with psycopg.connect(postgres_url) as conn:
                # the providers' batch and the first recipients' batch are in
                if conn.execute(f"SELECT count(*) FROM public.{EVENTS_TABLE}").fetchone()[0] > len(expected[0]):  # type: ignore[index]
                    break
        except psycopg.Error:
            pass
        time.sleep(0.05)
    assert proc.poll() is None, "synth finished before it could be killed"
    time.sleep(0.1)  # let it be somewhere inside a later batch
    proc.send_signal(signal.SIGKILL)
    proc.wait()

    store = open_store(postgres_url, create=False)
    stored = {(oid.decode(), int(v)) for page in store.read_pages(0) for oid, v in zip(page.originator_id, page.originator_version, strict=True)}
    complete = [batch <= stored for batch in expected]
    assert complete == [bool(batch & stored) for batch in expected], "a batch was stored in part"
    assert any(complete) and not all(complete), "the kill should land between the first and the last batch"
    store.close()

    rerun = subprocess.run([*exe, *args], cwd=tmp_path, capture_output=True, text=True, env=env, timeout=600)
    assert rerun.returncode == 0, rerun.stderr
    assert "resumed:" in rerun.stdout
    store = open_store(postgres_url, create=False)
    rows = [(o, int(v)) for p in store.read_pages(0) for o, v in zip(p.originator_id.tolist(), p.originator_version.tolist(), strict=True)]
    assert len(rows) == len(set(rows)) == sum(len(b) for b in expected)
    store.close()


# -- SQLite and PostgreSQL agree ------------------------------------------------------------------


def _compare_json(url: str, *extra: str) -> dict:
    done = CliRunner().invoke(cli, ["compare", "--store", url, "--format", "json", *extra])
    assert done.exit_code == 0, done.output
    doc = json.loads(done.stdout)
    for key in ("store", "store_id", "store_url", "store_created_at", "created_at", "generated_at"):
        doc.get("manifest", {}).pop(key, None)
    return doc


def test_sqlite_and_postgresql_give_the_same_comparison(postgres_url: str, tmp_path: Path) -> None:
    sqlite_url = f"sqlite:///{tmp_path / 'same.db'}"
    for url in (sqlite_url, postgres_url):
        done = CliRunner().invoke(cli, ["synth", "--recipients", "60", "--months", "3", "--seed", "5", "--store", url])
        assert done.exit_code == 0, done.output
    # the months the region holds (compare stops on a period its history does not cover), and as known mid-February
    for extra in (("--period", "2024-01..2024-03"), ("--as-of", "2024-02-15", "--period", "2024-01..2024-02")):
        a, b = _compare_json(sqlite_url, *extra), _compare_json(postgres_url, *extra)
        assert a == b
        assert a["models"]


# -- imports --------------------------------------------------------------------------------------

def test_two_concurrent_importers_each_write_all_of_theirs(postgres_url: str, tmp_path: Path) -> None:
    from ersattning.ingest.mapping import Mapping
    from ersattning.ingest.options import ImportOptions
    from ersattning.ingest.visits import import_visits
    from ersattning.privacy import Pseudonymiser

    pseudonymiser = Pseudonymiser(b"k" * 32)
    open_store(postgres_url).close()
    files = {p: _visits(tmp_path / f"{p}.csv", 6000, p) for p in ("A", "B")}
    errors: list[BaseException] = []

    def run(prefix: str) -> None:
        try:
            store = open_store(postgres_url)
            import_visits(store, [str(files[prefix])], Mapping(), pseudonymiser, ImportOptions(chunk_rows=1000))
            store.close()
        except BaseException as e:  # noqa: BLE001 - reported below
            errors.append(e)

    threads = [threading.Thread(target=run, args=(p,)) for p in files]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not errors, errors
    store = open_store(postgres_url, create=False)
    assert len(projection.load(store).visits) == 12_000
    store.close()


def test_a_killed_import_leaves_whole_chunks_and_a_rerun_completes_it(postgres_url: str, tmp_path: Path) -> None:
    """SIGKILL in the middle of an import: every chunk is in whole or not at all, and the same command again
    adds exactly what is missing (the rows already in count as such)."""
    n, chunk = 100_000, 5_000
    src = _visits(tmp_path / "v.csv", n, "K")
    args = [sys.executable, "-m", "ersattning.cli.main", "import", str(src), "--store", postgres_url, "--chunk-rows", str(chunk)]
    env = {**os.environ, "PYTHONPATH": str(ROOT), "ERSATTNING_PSEUDONYM_KEY": "ab" * 32}
    open_store(postgres_url).close()
    proc = subprocess.Popen(args, cwd=tmp_path, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, env=env)
    stored = 0
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline and proc.poll() is None:
        with psycopg.connect(postgres_url) as conn:
            stored = conn.execute(f"SELECT count(*) FROM public.{EVENTS_TABLE}").fetchone()[0]  # type: ignore[index]
        if stored >= chunk:  # the first chunk is in
            break
        time.sleep(0.02)
    assert proc.poll() is None, "the import finished before it could be killed"
    proc.send_signal(signal.SIGKILL)
    proc.wait()

    with psycopg.connect(postgres_url) as conn:
        stored = conn.execute(f"SELECT count(*) FROM public.{EVENTS_TABLE}").fetchone()[0]  # type: ignore[index]
    assert 0 < stored < n and stored % chunk == 0, stored  # whole chunks only (one event a new visit)

    rerun = subprocess.run(args, cwd=tmp_path, capture_output=True, text=True, env=env, timeout=600)
    assert rerun.returncode == 0, rerun.stderr
    assert f"rows read {n:,}, imported {n - stored:,}, already in the store {stored:,}" in rerun.stdout
    store = open_store(postgres_url, create=False)
    visits = projection.load(store).visits
    assert len(visits) == n and visits["status"].astype(str).eq("performed").all()
    store.close()
