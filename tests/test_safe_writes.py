"""Files owner-only, safe writes through planted links, limits before work, and one-line errors
(issue 25; docs/personal-data.md, "Files on disk").

The CLI runs in subprocesses under umask 022, the umask that made store, cache and unsuppressed
reports world-readable; planted symbolic links point at a victim file that must stay as it was.
"""

from __future__ import annotations

import errno
import os
import shutil
import stat
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import pytest

from ersattning.files import write_text_atomic
from tests.test_cli import EXE

ENV = {"ERSATTNING_PSEUDONYM_KEY": "a-key-for-the-safe-writes-test-0123456789"}
PERIOD = ("--period", "2024-03..2024-04")
VICTIM_TEXT = "the victim's own content\n"


def run(*args: str, cwd: Path, umask: int = 0o022, wrap: list[str] | None = None) -> subprocess.CompletedProcess:
    """The CLI under ``umask`` (in the child only), optionally inside ``wrap`` (e.g. a mount namespace)."""
    env = {k: v for k, v in os.environ.items() if k != "ERSATTNING_STORE"} | ENV
    return subprocess.run([*(wrap or []), *EXE, *args], capture_output=True, text=True, cwd=cwd, env=env, timeout=600, preexec_fn=lambda: os.umask(umask))


def mode(path: Path) -> int:
    return stat.S_IMODE(path.lstat().st_mode)


def one_line_error(done: subprocess.CompletedProcess, *words: str) -> str:
    assert done.returncode == 2, (done.returncode, done.stderr)
    assert "Traceback" not in done.stderr
    lines = [line for line in done.stderr.strip().splitlines() if line.startswith("ersattning: error:")]
    assert len(lines) == 1, done.stderr
    for w in words:
        assert w in lines[0], lines[0]
    return lines[0]


@pytest.fixture(scope="module")
def region(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A synthetic store made under umask 022 (30 recipients, March–April 2024)."""
    where = tmp_path_factory.mktemp("region")
    done = run("synth", "--recipients", "30", "--months", "2", "--start", "2024-03", "--seed", "5", "--store", f"sqlite:///{where / 'store.db'}", cwd=where)
    assert done.returncode == 0, done.stderr
    return where


# -- safe writes --------------------------------------------------------------------------------------------------


def _plant(link: Path, victim: Path) -> None:
    victim.write_text(VICTIM_TEXT)
    link.symlink_to(victim)


def test_a_link_at_the_target_is_replaced_not_followed(tmp_path: Path) -> None:
    victim, target = tmp_path / "victim.txt", tmp_path / "out.txt"
    _plant(target, victim)
    write_text_atomic(target, "report\n")
    assert victim.read_text() == VICTIM_TEXT
    assert not target.is_symlink() and target.read_text() == "report\n"
    assert mode(target) == 0o600  # private by default


def test_links_at_the_temporary_names_are_never_written_through(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """A link at the old predictable name (``.NAME.tmp``) and at the first names the generator would draw:
    an exclusive creation skips them; none is followed, none removed."""
    victim, target = tmp_path / "victim.txt", tmp_path / "out.txt"
    victim.write_text(VICTIM_TEXT)
    (tmp_path / ".out.txt.tmp").symlink_to(victim)
    drawn = iter(["aaaaaaaa", "bbbbbbbb", "cccccccc"])
    monkeypatch.setattr(tempfile, "_get_candidate_names", lambda: drawn)
    for name in ("aaaaaaaa", "bbbbbbbb"):
        (tmp_path / f".out.txt.{name}.tmp").symlink_to(victim)
    write_text_atomic(target, "report\n")
    assert victim.read_text() == VICTIM_TEXT
    assert target.read_text() == "report\n" and not target.is_symlink()
    assert sorted(p.name for p in tmp_path.iterdir() if p.is_symlink()) == [".out.txt.aaaaaaaa.tmp", ".out.txt.bbbbbbbb.tmp", ".out.txt.tmp"]


def test_a_failed_write_leaves_target_and_no_temporary_file(tmp_path: Path) -> None:
    target = tmp_path / "out.txt"
    target.write_text("old\n")

    def broken(tmp: Path) -> None:
        tmp.write_text("half")
        raise OSError(errno.ENOSPC, "No space left on device")

    from ersattning.files import WriteError, write_atomic

    with pytest.raises(WriteError, match="disk full"):
        write_atomic(target, broken)
    assert target.read_text() == "old\n" and [p.name for p in tmp_path.iterdir()] == ["out.txt"]


def test_cli_outputs_replace_planted_links_and_unsuppressed_ones_are_owner_only(region: Path, tmp_path: Path) -> None:
    store = f"sqlite:///{region / 'store.db'}"
    victim = tmp_path / "victim.txt"
    victim.write_text(VICTIM_TEXT)
    names = {"--output": tmp_path / "c.json", "--html": tmp_path / "r.html", "--xlsx": tmp_path / "r.xlsx"}
    for path in names.values():
        path.symlink_to(victim)
        path.with_name(f".{path.name}.tmp").symlink_to(victim)  # the name the writers used to go through
    args = [x for option, path in names.items() for x in (option, str(path))]
    done = run("compare", "--store", store, *PERIOD, "--format", "json", "--no-suppress", *args, cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    assert victim.read_text() == VICTIM_TEXT
    for path in names.values():
        assert not path.is_symlink() and path.stat().st_size > 0
        assert mode(path) == 0o600, path  # unsuppressed figures: owner-only under umask 022
    # suppressed outputs are for publication: the umask's ordinary mode
    done = run("compare", "--store", store, *PERIOD, "--output", str(tmp_path / "pub.txt"), "--html", str(tmp_path / "pub.html"), cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    assert mode(tmp_path / "pub.txt") == mode(tmp_path / "pub.html") == 0o644


# -- files owner-only ---------------------------------------------------------------------------------------------


def test_store_and_cache_are_owner_only_under_umask_022(region: Path) -> None:
    done = run("compare", "--store", f"sqlite:///{region / 'store.db'}", *PERIOD, cwd=region)  # writes the cache
    assert done.returncode == 0, done.stderr
    files = [p for p in region.iterdir() if p.name.startswith("store.db") and p.is_file()]
    assert region / "store.db" in files
    for p in files:  # the store, its -wal and -shm
        assert mode(p) == 0o600, p
    cache = region / "store.db.projection"
    written = list(cache.rglob("*"))
    assert any(p.suffix == ".parquet" for p in written) and any(p.is_dir() for p in written)
    assert mode(cache) == 0o700
    for p in written:
        assert mode(p) == (0o700 if p.is_dir() else 0o600), p


DECISIONS = "recipient,decision_id,provider,category,granted,per,valid_from,valid_to,area,birth_year\n"


def test_dates_outside_1900_2100_are_quarantined_owner_only(tmp_path: Path) -> None:
    """Years 0001 and 9999 used to import (and a 0001 decision crashed compare); now each row is quarantined
    with its reason, in an owner-only file under umask 022, and the one good row is imported."""
    src = tmp_path / "d.csv"
    src.write_text(
        DECISIONS
        + "R1,D1,P1,personal_care,600,month,2024-01-01,,urban,1938\n"
        + "R2,D2,P1,personal_care,600,month,0001-01-01,,urban,1938\n"
        + "R3,D3,P1,personal_care,600,month,2024-01-01,9999-12-31,urban,1938\n"
        + "R4,D4,P1,personal_care,600,month,1899-12-31,,urban,1938\n",
        encoding="utf-8",
    )
    q, victim = tmp_path / "q.csv", tmp_path / "victim.txt"
    _plant(q, victim)  # --quarantine used to write through a link at its path
    done = run("import", str(src), "--kind", "decisions", "--store", f"sqlite:///{tmp_path / 's.db'}", "--quarantine", str(q), cwd=tmp_path)
    assert done.returncode == 3, done.stderr  # imported, some rows rejected
    assert "imported 1" in done.stdout, done.stdout
    assert "quarantined (valid_from outside the years 1900-2100): 2" in done.stdout, done.stdout
    assert "quarantined (valid_to outside the years 1900-2100): 1" in done.stdout, done.stdout
    assert mode(q) == 0o600 and not q.is_symlink() and victim.read_text() == VICTIM_TEXT
    assert sorted(p.name for p in tmp_path.iterdir() if p.name.startswith(".")) == []  # no temporary file left
    lines = q.read_text(encoding="utf-8").splitlines()
    assert len(lines) == 4 and all("outside the years 1900-2100" in line for line in lines[1:])


def test_visit_times_outside_the_window_are_quarantined(tmp_path: Path) -> None:
    from ersattning.ingest.cells import DATE_WINDOW, outside_window, window_reason

    times = ["0001-03-01T10:00", "9999-12-31T23:00", "1900-01-01T00:00", "2100-12-31T23:59", "2101-01-01T00:00", "NaT"]
    assert outside_window(__import__("numpy").array(times, dtype="datetime64[us]")).tolist() == [True, True, False, False, True, False]
    assert DATE_WINDOW == (1900, 2100) and window_reason("actual_start") == "actual_start outside the years 1900-2100"


# -- limits before work -------------------------------------------------------------------------------------------


def _measured(args: list[str], cwd: Path) -> tuple[subprocess.CompletedProcess, float, int]:
    """The CLI run in a small wrapper that reports its child's peak RSS (kB): the children's usage of this test
    process would include every earlier child."""
    wrapper = "import resource, subprocess, sys; r = subprocess.run(sys.argv[1:]); print('RSS', resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss, file=sys.stderr); sys.exit(r.returncode)"
    env = {k: v for k, v in os.environ.items() if k != "ERSATTNING_STORE"} | ENV
    started = time.monotonic()
    done = subprocess.run([sys.executable, "-c", wrapper, *EXE, *args], capture_output=True, text=True, cwd=cwd, env=env, timeout=600)
    seconds = time.monotonic() - started
    rss = int(done.stderr.rsplit("RSS ", 1)[1].split()[0])
    return done, seconds, rss


@pytest.mark.parametrize(
    "vary",
    [
        ["--vary", "models.granted.price_factor=0.7..1.0/100000000"],
        ["--vary", "models.granted.price_factor=0.7..1.0/10000", "--vary", "models.trust.price_factor=0.7..1.0/10000"],
    ],
)
def test_a_sweep_too_big_is_refused_before_any_work(region: Path, vary: list[str]) -> None:
    done, seconds, rss_kb = _measured(["sweep", "--store", f"sqlite:///{region / 'store.db'}", *PERIOD, *vary], region)
    one_line_error(done, "at most 10,000")
    assert seconds < 5, seconds
    assert rss_kb < 1024 * 1024, rss_kb  # it used 9.6 GB


def test_the_api_refuses_too_many_draws_before_drawing() -> None:
    from ersattning.analysis.uncertainty import MAX_DRAWS, uncertainty

    with pytest.raises(ValueError, match="1 to 100,000"):
        uncertainty(None, MAX_DRAWS + 1, 1)  # type: ignore[arg-type]  # refused before the comparison is looked at


# -- one line, not a traceback ------------------------------------------------------------------------------------


def test_a_report_into_a_missing_directory_is_one_line(region: Path, tmp_path: Path) -> None:
    done = run("compare", "--store", f"sqlite:///{region / 'store.db'}", *PERIOD, "--html", str(tmp_path / "no" / "such" / "r.html"), cwd=tmp_path)
    one_line_error(done, "does not exist", "r.html")


def test_a_workbook_into_proc_is_one_line(region: Path, tmp_path: Path) -> None:
    done = run("compare", "--store", f"sqlite:///{region / 'store.db'}", *PERIOD, "--xlsx", "/proc/version", cwd=tmp_path)
    one_line_error(done, "cannot write /proc/version")


def test_a_full_disk_in_the_cache_writer_says_so(region: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    import pyarrow.parquet as pq

    from ersattning import projection
    from ersattning.projection import ProjectionError
    from ersattning.store import open_store

    copy = tmp_path / "store.db"
    shutil.copy(region / "store.db", copy)

    def full(*args: object, **kwargs: object) -> None:
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(pq, "write_table", full)
    with pytest.raises(ProjectionError, match=r"disk full") as caught:
        projection.load(open_store(f"sqlite:///{copy}", create=False))
    assert "store.db.projection" in str(caught.value)


@pytest.mark.skipif(shutil.which("unshare") is None, reason="needs unshare for a read-only mount")
def test_a_store_on_a_read_only_file_system_says_read_only(region: Path, tmp_path: Path) -> None:
    ro = tmp_path / "ro"
    ro.mkdir()
    shutil.copy(region / "store.db", ro / "store.db")  # no -shm beside it: opening must write one
    probe = subprocess.run(["unshare", "-rm", "sh", "-c", f"mount --bind {ro} {ro} && mount -o remount,bind,ro {ro}"], capture_output=True)
    if probe.returncode != 0:
        pytest.skip("no unprivileged mount namespace here")
    wrap = ["unshare", "-rm", "sh", "-c", f'mount --bind {ro} {ro} && mount -o remount,bind,ro {ro} && exec "$@"', "sh"]
    done = run("history", "--store", f"sqlite:///{ro / 'store.db'}", cwd=tmp_path, wrap=wrap)
    line = one_line_error(done, "read-only")
    assert "not an ersattning store" not in line


def test_sweep_steps_are_checked_on_the_text_before_any_number_is_made() -> None:
    from ersattning.analysis.sweep import MAX_POINTS, Axis

    assert Axis.parse("models.granted.price_factor=0.7..1.0/0003").steps == 3
    assert Axis.parse(f"models.granted.price_factor=0.7..1.0/{MAX_POINTS}").steps == 10_000
    for steps in (str(MAX_POINTS + 1), "9" * 5000):  # 5000 digits: int() alone would refuse with another message
        with pytest.raises(ValueError, match="at most 10,000 points"):
            Axis.parse(f"models.granted.price_factor=0.7..1.0/{steps}")


def _namespace_mounts() -> bool:
    """Whether this machine lets an unprivileged user namespace mount (tmpfs, read-only binds)."""
    if shutil.which("unshare") is None:
        return False
    return subprocess.run(["unshare", "-rm", "sh", "-c", "mount -t tmpfs -o size=64k tmpfs /mnt || mount -t tmpfs -o size=64k tmpfs /tmp"], capture_output=True).returncode == 0


@pytest.mark.skipif(not _namespace_mounts(), reason="needs a mount namespace for a small file system")
def test_a_full_disk_under_compare_is_one_line_naming_the_cache(region: Path, tmp_path: Path) -> None:
    """The store fits on a file system about 200 kB bigger than itself; the projection cache does not."""
    small = tmp_path / "small"
    small.mkdir()
    size_k = (region / "store.db").stat().st_size // 1024 + 200
    wrap = ["unshare", "-rm", "sh", "-c", f'mount -t tmpfs -o size={size_k}k tmpfs {small} && cp {region / "store.db"} {small}/ && exec "$@"', "sh"]
    done = run("compare", "--store", f"sqlite:///{small / 'store.db'}", *PERIOD, cwd=tmp_path, wrap=wrap)
    line = one_line_error(done, "disk full", str(small / "store.db.projection"), "the store is unchanged")
    assert "not an ersattning store" not in line
