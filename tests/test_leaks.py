"""No identity number leaves the tool: every file it writes and every line it prints, searched for every written form.

Import files hold valid personnummer and samordningsnummer in every column and every written form
(12 and 10 digits, with ``-``, ``+`` or nothing; and, in the later tests, with blanks, no-break spaces,
every kind of dash, `` - ``, dashes between the date's parts and fullwidth digits, on each backend; in free text, in a provider's name, in rows that get
quarantined); then the command line runs as a user would: import (each kind, with --quarantine),
compare (every --format, --output, --html, --xlsx), report, explain and history. The store file, the
projection cache, the quarantine files, the reports (the XLSX unzipped) and stdout/stderr are searched
for every form of every number (docs/personal-data.md).
"""

from __future__ import annotations

import json
import zipfile
from pathlib import Path
from uuid import UUID

from ersattning.privacy import MASK
from ersattning.privacy.identity_numbers import _luhn_ok
from tests.test_cli import run

ENV = {"ERSATTNING_PSEUDONYM_KEY": "a-key-for-the-leak-test-0123456789"}


def _number(yyyymmdd: str, serial: str) -> str:
    """A valid 12-digit number: the check digit completed."""
    nine = yyyymmdd[2:] + serial
    return yyyymmdd[:2] + nine + next(c for c in "0123456789" if _luhn_ok(nine + c))


PEOPLE = {
    "anna": _number("19430514", "113"),  # 19430514-1139
    "bo": _number("19701063", "239"),  # a samordningsnummer (day 3 + 60)
    "cecilia": _number("19121212", "121"),  # over 100 in 2024: written with + in the 10-digit form
    "dag": _number("20030514", "113"),  # born this century
    "staff": _number("19810312", "457"),  # staff ids are numbers too
    "firm": _number("19550101", "222"),  # in a sole trader's name
    "note": _number("19600229", "888"),  # in free text only
}


def forms(twelve: str) -> list[str]:
    """Every way to write a number (the 10-digit ones both with - and +: the search does not know the age)."""
    ten = twelve[2:]
    return [twelve, f"{twelve[:8]}-{twelve[8:]}", f"{twelve[:8]}+{twelve[8:]}", ten, f"{ten[:6]}-{ten[6:]}", f"{ten[:6]}+{ten[6:]}"]


def written(twelve: str, i: int, age_100: bool = False) -> str:
    """The i-th written form (cycling), as a source file might hold it."""
    ten = twelve[2:]
    choices = [f"{twelve[:8]}-{twelve[8:]}", twelve, f"{ten[:6]}{'+' if age_100 else '-'}{ten[6:]}"] + ([] if age_100 else [ten])
    return choices[i % len(choices)]


def _files(src: Path) -> dict[str, Path]:
    a, b, c, d, s, f, n = (PEOPLE[k] for k in ("anna", "bo", "cecilia", "dag", "staff", "firm", "note"))
    out = {}
    out["providers"] = src / "providers.csv"
    out["providers"].write_text(
        "code,name,ownership,teams,area,notes\n"
        "P1,Hemtjänst Söder,municipal,P1-T1,urban,\n"
        "P2,Omsorg Norr AB,private,,urban," + f"ring {written(n, 0)}\n"
        f"P3,Enskild firma {written(f, 0)},private,,rural,\n"
        f"P4,Firma,private,T|{written(f, 1)},urban,\n",
        encoding="utf-8",
    )
    out["decisions"] = src / "decisions.csv"
    out["decisions"].write_text(
        "recipient,decision_id,provider,category,granted,per,valid_from,area,birth_year,notes\n"
        f"{written(a, 0)},D1,P1,personal_care,600,month,2024-01-01,urban,1943,anhörig {written(n, 1)}\n"
        f"{written(b, 1)},D2,P2,cleaning,120,month,2024-01-01,urban,1970,\n"
        f"{written(c, 0, True)},D3,P1,personal_care,900,month,2024-01-01,urban,1912,\n"
        f"{written(d, 3)},D4,P1,shopping,60,month,2024-01-01,rural,2003,\n"
        f"{written(a, 2)},D5,Enskild firma {written(f, 2)},cleaning,60,month,2024-01-01,urban,1943,\n"  # quarantined: provider
        f"{written(b, 0)},{written(b, 2)},P2,cleaning,60,month,2024-01-01,urban,1970,\n",  # quarantined: decision_id
        encoding="utf-8",
    )
    out["stays"] = src / "stays.csv"
    out["stays"].write_text(
        f"recipient,kind,start,end,notes\n{written(c, 2, True)},hospital,2024-03-10,2024-03-12,{written(n, 2)}\n{written(PEOPLE['note'], 0)},hospital,2024-03-10,,\n",
        encoding="utf-8",
    )
    visits = ["recipient,provider,team,visit_id,category,planned_start,planned_end,actual_start,actual_end,staff,status,notes"]
    people = [(a, False), (b, False), (c, True), (d, False)]
    for i in range(16):
        who, old = people[i % 4]
        day = f"2024-03-{i + 1:02d}"
        visits.append(
            f"{written(who, i, old)},P1,P1-T1,V{i},personal_care,{day} 08:00,{day} 08:30,{day} 08:01,{day} 08:31,"
            f"{written(s, i)}|{written(a, i + 1)},performed,ring {written(n, i)}"
        )
    visits.append(f"{written(a, 0)},P1,team {written(f, 0)},V90,cleaning,2024-03-20 10:00,2024-03-20 11:00,,,,planned,")  # quarantined: team
    visits.append(f"{written(a, 1)},P3 {written(f, 3)},,V91,cleaning,2024-03-21 10:00,2024-03-21 11:00,,,,planned,")  # quarantined: provider
    visits.append(f"{written(a, 2)},P1,,{written(a, 3)},bad-category,2024-03-22 10:00,2024-03-22 11:00,,,,planned,")  # quarantined
    out["visits"] = src / "visits.csv"
    out["visits"].write_text("\n".join(visits) + "\n", encoding="utf-8")
    out["events"] = src / "events.csv"
    out["events"].write_text(
        "case,activity,timestamp,lifecycle,resource,provider,notes\n"
        f"{written(d, 0)},personal_care,2024-04-02 08:00,start,{written(s, 2)},P1,{written(n, 3)}\n"
        f"{written(d, 1)},personal_care,2024-04-02 08:30,complete,{written(s, 2)},P1,\n"
        f"{written(d, 2)},personal_care,2024-04-03 08:00,{written(d, 3)},{written(s, 1)},P1,\n"  # quarantined, its reason quotes the cell
        f"{written(a, 0)},personal_care,2024-04-04 08:00,start,{written(s, 0)},Firma {written(f, 1)},\n"
        f"{written(a, 0)},personal_care,2024-04-04 08:30,complete,{written(s, 0)},Firma {written(f, 1)},\n",  # quarantined: provider
        encoding="utf-8",
    )
    return out


def _search(texts: dict[str, bytes]) -> list[tuple[str, str]]:
    found = []
    for where, blob in texts.items():
        for who, twelve in PEOPLE.items():
            for form in forms(twelve):
                if form.encode() in blob:
                    found.append((where, f"{who}: {form}"))
    return found


def test_no_identity_number_in_anything_the_tool_writes(tmp_path: Path) -> None:
    src, out = tmp_path / "src", tmp_path / "out"
    src.mkdir()
    out.mkdir()
    files = _files(src)
    store = f"sqlite:///{out / 'store.db'}"
    printed: dict[str, bytes] = {}

    def cli(name: str, *args: str, ok: bool = True, status: int | None = None) -> str:
        done = run(*args, cwd=out, env=ENV)
        if status is not None:  # e.g. 3: imported, some rows rejected
            assert done.returncode == status, (name, done.stdout, done.stderr)
        else:
            assert (done.returncode == 0) == ok, (name, done.stdout, done.stderr)
        printed[f"{name} stdout"] = done.stdout.encode()
        printed[f"{name} stderr"] = done.stderr.encode()
        return done.stdout

    for kind in ("providers", "decisions", "stays", "visits", "events"):
        said = cli(f"import {kind}", "import", str(files[kind]), "--kind", kind, "--store", store, "--quarantine", str(out / f"q-{kind}.csv"), status=3)
        assert "quarantined 0" not in said, (kind, said)  # every kind has rejected rows, so every quarantine file is written
        assert "imported 0" not in said, (kind, said)  # and imports others (events: a visit paired from two written forms)
    # the same numbers again, in another written form, name the same people: nothing is new and nothing unknown
    said = cli("import visits again", "import", str(files["visits"]), "--store", store, status=3)  # the same rows rejected again
    # without --quarantine they go to a new file beside the store (searched below with everything written)
    default_quarantine = said.rsplit("rejected rows written to ", 1)[1].split(" (exit status 3)")[0]
    assert default_quarantine.startswith(str(out / "store.db.quarantine-")) and Path(default_quarantine).stat().st_mode & 0o777 == 0o600
    cli("strict", "import", str(files["visits"]), "--store", store, "--strict", ok=False)  # stops at a row, quoting its reason
    period = ("--period", "2024-03..2024-04")  # the visits are in March, the events in April: settle those months
    for fmt in ("table", "json", "csv"):
        cli(f"compare {fmt}", "compare", "--store", store, *period, "--format", fmt)
        cli(f"compare {fmt} output", "compare", "--store", store, *period, "--format", fmt, "--output", str(out / f"compare.{fmt}"), "--no-suppress")
    cli("compare reports", "compare", "--store", store, *period, "--html", str(out / "r.html"), "--xlsx", str(out / "r.xlsx"))
    cli("report", "report", "--store", store, *period, "--html", str(out / "report.html"), "--xlsx", str(out / "report.xlsx"), "--lang", "en")
    summary = json.loads(cli("history json", "history", "--store", store, "--format", "json", "--no-suppress"))
    assert summary["providers"] == 2 and summary["recipients"] == 4
    cli("history", "history", "--store", store)
    from ersattning import projection
    from ersattning.store import open_store

    proj = projection.load(open_store(store, create=False))
    pseudonym = str(proj.recipients["pseudonym"].iloc[0])
    key = proj.visit_keys.iloc[0]
    visit = str(UUID(bytes=int(key["key_hi"]).to_bytes(8, "big") + int(key["key_lo"]).to_bytes(8, "big")))
    cli("explain recipient", "explain", "--store", store, *period, "--recipient", pseudonym, "--month", "2024-03")
    cli("explain recipient json", "explain", "--store", store, *period, "--recipient", pseudonym, "--month", "2024-03", "--format", "json")
    cli("explain visit", "explain", "--store", store, *period, "--visit", visit)
    # a user who types a number (any written form) finds the person, and nothing prints it back
    said = cli("explain by number", "explain", "--store", store, *period, "--recipient", written(PEOPLE["anna"], 2), "--month", "2024-03")
    assert cli("explain by other form", "explain", "--store", store, *period, "--recipient", written(PEOPLE["anna"], 1), "--month", "2024-03") == said
    cli("explain by unknown number", "explain", "--store", store, *period, "--recipient", written(PEOPLE["note"], 0), "--month", "2024-03", ok=False)
    assert b"no such recipient" in printed["explain by unknown number stderr"]

    written_files: dict[str, bytes] = {}
    for path in out.rglob("*"):
        if path.is_file():
            written_files[str(path.relative_to(out))] = path.read_bytes()
            if path.suffix == ".xlsx":
                with zipfile.ZipFile(path) as z:
                    for name in z.namelist():
                        written_files[f"{path.name}:{name}"] = z.read(name)
    assert any(".projection" in name for name in written_files), sorted(written_files)  # the cache was written and searched
    assert {"store.db", "q-providers.csv", "q-decisions.csv", "q-stays.csv", "q-visits.csv", "q-events.csv", "r.html", "r.xlsx", "compare.json"} <= set(written_files)
    for q in ("providers", "decisions", "stays", "visits", "events"):
        assert ((out / f"q-{q}.csv").stat().st_mode & 0o777) == 0o600
        assert MASK in (out / f"q-{q}.csv").read_text(encoding="utf-8")
    # the search finds what it looks for: the source files hold every person
    assert {who for _, who in _search({p.name: p.read_bytes() for p in src.iterdir()})} >= {f"{k}: {v[:8]}-{v[8:]}" for k, v in PEOPLE.items() if k not in ("cecilia", "dag", "note")}
    assert _search(written_files | printed) == []


def test_an_existing_quarantine_file_becomes_owner_only_and_errors_are_masked(tmp_path: Path) -> None:
    import os

    import pytest

    from ersattning.ingest.mapping import Mapping
    from ersattning.ingest.options import ImportOptions
    from ersattning.ingest.recipients import import_decisions
    from ersattning.ingest.report import ImportError_
    from ersattning.privacy import Pseudonymiser
    from ersattning.store import open_store

    a = PEOPLE["anna"]
    src = tmp_path / f"export {a[:8]}-{a[8:]}.csv"  # a file named after a person: its name is quoted in messages
    src.write_text(f"recipient,decision_id,provider,category,granted,valid_from\n{a},D1,Firma {a[2:]},personal_care,60,2024-01-01\n", encoding="utf-8")
    q = tmp_path / "q.csv"
    q.write_text("old content\n", encoding="utf-8")
    os.chmod(q, 0o644)
    store = open_store(f"sqlite:///{tmp_path / 's.db'}")
    p = Pseudonymiser(b"x" * 32)
    report = import_decisions(store, [src], Mapping(), p, ImportOptions(quarantine=q))
    assert dict(report.quarantined) == {"a personal identity number in provider": 1}  # the decisions' provider is screened
    assert (q.stat().st_mode & 0o777) == 0o600
    assert "old content" not in q.read_text(encoding="utf-8") and _search({"q": q.read_bytes()}) == []
    with pytest.raises(ImportError_) as stopped:
        import_decisions(store, [src], Mapping(), p, ImportOptions(strict=True))
    assert _search({"error": str(stopped.value).encode()}) == [] and MASK in str(stopped.value)
    assert _search({"summary": "\n".join(report.summary()).encode()}) == []


# --- every written form (issue 25): blanks, no-break spaces, every dash, ' - ', dashes in the date, fullwidth digits

_FULLWIDTH = str.maketrans("0123456789-", "０１２３４５６７８９－")

NEW = {  # born 1950-2005: under 100 at every event, so their 10-digit forms are written with '-' or nothing
    "eva": "195805057774",  # 580505 7774, as the tester wrote it
    "frans": "197205162014",  # 19720516 - 2014
    "greta": _number("19890228", "412"),
    "hugo": _number("20050704", "338"),
    "ines": _number("19661274", "150"),  # a samordningsnummer (day 14 + 60)
    "jon": _number("19510909", "246"),
}


def new_forms(twelve: str) -> list[str]:
    """Every way of writing one number the issue lists (10 and 12 digits), before the plain ones."""
    ten, date8, serial = twelve[2:], twelve[:8], twelve[8:]
    y, m, d = twelve[:4], twelve[4:6], twelve[6:8]
    seps = [" ", " - ", "\u00a0", "\u202f", "\u2013", "\u2014", "\u2010", "\u2011", "\u2212", "\uff0d", "\ufe63", "\u00a0\u2013\u00a0"]
    out = [f"{date8}{s}{serial}" for s in seps] + [f"{ten[:6]}{s}{ten[6:]}" for s in seps]
    out += [f"{y}-{m}-{d}-{serial}", f"{y}\u2013{m}\u2013{d} {serial}", f"{ten[:2]}-{m}-{d}-{serial}", f"{ten[:2]}\u2011{m}\u2011{d}\u2011{serial}"]
    out += [twelve.translate(_FULLWIDTH), f"{date8}-{serial}".translate(_FULLWIDTH), f"{ten[:6]}-{serial}".translate(_FULLWIDTH)]
    return out


def all_forms(twelve: str) -> list[str]:
    """What the search looks for: every new form, the plain ones (:func:`forms`) and the digits alone."""
    return [*new_forms(twelve), *forms(twelve)]


def _w(twelve: str, i: int) -> str:
    """The i-th new written form (cycling)."""
    choices = new_forms(twelve)
    return choices[(i * 7) % len(choices)]


def _new_files(src: Path) -> dict[str, Path]:
    e, f, g, h, i, j = NEW.values()
    files: dict[str, Path] = {}
    files["providers"] = src / "providers.csv"
    files["providers"].write_text(
        "code,name,ownership,teams,area,notes\n"
        "P1,Hemtjänst Söder,municipal,P1-T1,urban,\n"
        f"P2,Omsorg Norr AB,private,,urban,ring {_w(j, 0)}\n"
        f"P3,Enskild firma {_w(j, 1)},private,,rural,\n"  # quarantined: a number in the name
        f"P4,Firma,private,T|{_w(j, 2)},urban,\n",  # quarantined: a number in a team
        encoding="utf-8",
    )
    files["decisions"] = src / "decisions.csv"
    files["decisions"].write_text(
        "recipient,decision_id,provider,category,granted,per,valid_from,area,birth_year,notes\n"
        f"{_w(e, 0)},D1,P1,personal_care,600,month,2024-01-01,urban,1958,anhörig {_w(j, 3)}\n"
        f"{_w(f, 1)},D2,P2,cleaning,120,month,2024-01-01,urban,1972,\n"
        f"{_w(g, 2)},D3,P1,personal_care,900,month,2024-01-01,urban,1989,\n"
        f"{_w(h, 3)},D4,P1,shopping,60,month,2024-01-01,rural,2005,\n"
        f"{_w(e, 4)},D5,Enskild firma {_w(j, 4)},cleaning,60,month,2024-01-01,urban,1958,\n"  # quarantined: provider
        f"{_w(f, 5)},{_w(i, 5)},P2,cleaning,60,month,2024-01-01,urban,1972,\n",  # quarantined: decision_id
        encoding="utf-8",
    )
    files["stays"] = src / "stays.csv"
    files["stays"].write_text(f"recipient,kind,start,end,notes\n{_w(g, 6)},hospital,2024-03-10,2024-03-12,{_w(j, 6)}\n{_w(i, 7)},hospital,2024-03-10,,\n", encoding="utf-8")
    visits = ["recipient,provider,team,visit_id,category,planned_start,planned_end,actual_start,actual_end,staff,status,notes"]
    for k in range(24):
        who = (e, f, g, h)[k % 4]
        day = f"2024-03-{k + 1:02d}"
        visits.append(f"{_w(who, k)},P1,P1-T1,V{k},personal_care,{day} 08:00,{day} 08:30,{day} 08:01,{day} 08:31,{_w(j, k)}|{_w(i, k + 1)},performed,ring {_w(j, k + 2)}")
    visits.append(f"{_w(e, 1)},P1,team {_w(i, 8)},V90,cleaning,2024-03-20 10:00,2024-03-20 11:00,,,,planned,")  # quarantined: team
    visits.append(f"{_w(e, 2)},P3 {_w(j, 9)},,V91,cleaning,2024-03-21 10:00,2024-03-21 11:00,,,,planned,")  # quarantined: provider
    visits.append(f"{_w(e, 3)},P1,,{_w(e, 10)},cleaning,2024-03-22 10:00,2024-03-22 11:00,,,,planned,")  # a visit id is only stored keyed (hashed)
    files["visits"] = src / f"besök {_w(i, 11)}.csv"  # a file named after a person: quoted in the summary and the quarantine
    files["visits"].write_text("\n".join(visits) + "\n", encoding="utf-8")
    files["events"] = src / "events.csv"
    files["events"].write_text(
        "case,activity,timestamp,lifecycle,resource,provider,notes\n"
        f"{_w(h, 0)},personal_care,2024-04-02 08:00,start,{_w(j, 2)},P1,{_w(i, 3)}\n"
        f"{_w(h, 1)},personal_care,2024-04-02 08:30,complete,{_w(j, 3)},P1,\n"
        f"{_w(h, 2)},personal_care,2024-04-03 08:00,{_w(h, 3)},{_w(j, 1)},P1,\n"  # quarantined: its reason quotes the cell
        f"{_w(e, 0)},personal_care,2024-04-04 08:00,start,{_w(j, 0)},Firma {_w(i, 1)},\n"
        f"{_w(e, 5)},personal_care,2024-04-04 08:30,complete,{_w(j, 0)},Firma {_w(i, 1)},\n",  # quarantined: provider
        encoding="utf-8",
    )
    files["defaulted"] = src / "defaulted.csv"  # no team column: the mapping's default gives one, and it is a number
    files["defaulted"].write_text(
        "recipient,provider,visit_id,category,planned_start,planned_end,status\n"
        f"{_w(f, 7)},P1,W1,cleaning,2024-03-25 10:00,2024-03-25 11:00,planned\n"
        f"{_w(f, 8)},P9,W2,cleaning,2024-03-26 10:00,2024-03-26 11:00,planned\n",
        encoding="utf-8",
    )
    files["mapping"] = src / "mapping.yaml"
    files["mapping"].write_text(f'defaults:\n  team: "{_w(i, 12)}"\nvalues:\n  provider:\n    P9: "Firma {_w(j, 13)}"\n', encoding="utf-8")  # a value map's target too
    return files


def _new_search(texts: dict[str, bytes]) -> list[tuple[str, str]]:
    found = []
    for where, blob in texts.items():
        for who, twelve in NEW.items():
            for form in all_forms(twelve):
                if form.encode() in blob or form.encode("utf-16-le") in blob:
                    found.append((where, f"{who}: {form!r}"))
    return found


def _store_bytes(url: str, out: Path) -> dict[str, bytes]:
    """The store as bytes: the SQLite file, or every row of every table of the PostgreSQL database as text."""
    if url.startswith("sqlite"):
        return {"store": (out / "store.db").read_bytes()}
    import psycopg

    def cell(v: object) -> bytes:  # bytea as its bytes (a payload as stored), the rest as text
        return bytes(v) if isinstance(v, (bytes, bytearray, memoryview)) else str(v).encode()

    with psycopg.connect(url) as conn:
        tables = [r[0] for r in conn.execute("SELECT quote_ident(table_schema) || '.' || quote_ident(table_name) FROM information_schema.tables WHERE table_schema NOT IN ('pg_catalog', 'information_schema')")]
        return {f"store {t}": b"\n".join(b"\t".join(cell(v) for v in row) for row in conn.execute(f"SELECT * FROM {t}")) for t in tables}


def test_every_written_form_in_every_import_kind_stays_hidden(tmp_path: Path, store_url: str) -> None:
    src, out = tmp_path / "src", tmp_path / "out"
    src.mkdir()
    out.mkdir()
    files = _new_files(src)
    store = store_url if not store_url.startswith("sqlite") else f"sqlite:///{out / 'store.db'}"
    printed: dict[str, bytes] = {}

    env = ENV | {"ERSATTNING_CACHE_DIR": str(out / "server.projection")}  # a server store's cache: searched too

    def cli(name: str, *args: str, status: int = 0) -> str:
        done = run(*args, cwd=out, env=env)
        assert done.returncode == status, (name, done.stdout, done.stderr)
        printed[f"{name} stdout"], printed[f"{name} stderr"] = done.stdout.encode(), done.stderr.encode()
        return done.stdout

    for kind in ("providers", "decisions", "stays", "visits", "events"):
        said = cli(f"import {kind}", "import", str(files[kind]), "--kind", kind, "--store", store, "--quarantine", str(out / f"q-{kind}.csv"), status=3)
        assert "quarantined 0" not in said and "imported 0" not in said, (kind, said)
    said = cli("import defaulted", "import", str(files["defaulted"]), "--kind", "visits", "--mapping", str(files["mapping"]), "--store", store, "--quarantine", str(out / "q-defaulted.csv"), status=3)
    assert "imported 0" in said and (out / "q-defaulted.csv").read_text(encoding="utf-8").count("a personal identity number in") == 2, said
    cli("strict", "import", str(files["visits"]), "--kind", "visits", "--store", store, "--strict", status=2)
    assert MASK.encode() in printed["strict stderr"]  # the file's name is quoted, masked
    period = ("--period", "2024-03..2024-04")
    cli("compare", "compare", "--store", store, *period, "--format", "json", "--output", str(out / "compare.json"), "--no-suppress")
    summary = json.loads(cli("history json", "history", "--store", store, "--format", "json", "--no-suppress"))
    # eva, frans, greta and hugo, each written in 3 or more forms across the files, are 4 recipients; ines only in a
    # stay without an end and quarantined rows: none of them makes a recipient
    assert summary["recipients"] == 4, summary
    assert summary["providers"] == 2, summary  # P3 and P4 were quarantined for the numbers in their name and team
    written: dict[str, bytes] = {}
    for path in out.rglob("*"):
        if path.is_file() and path.name != "store.db":
            written[str(path.relative_to(out))] = path.read_bytes()
    assert any(".projection" in name for name in written), sorted(written)
    for q in ("providers", "decisions", "stays", "visits", "events", "defaulted"):
        assert MASK in (out / f"q-{q}.csv").read_text(encoding="utf-8"), q
    assert "besök <identity number>.csv" in (out / "q-visits.csv").read_text(encoding="utf-8")  # the file's name, masked
    # the search finds what it looks for: every person's forms are in the source files
    source = {p.name: p.read_bytes() for p in src.iterdir()} | {"file names": "\n".join(p.name for p in src.iterdir()).encode()}
    assert {who.split(":")[0] for _, who in _new_search(source)} == set(NEW)
    stored = _store_bytes(store, out)
    assert b"Omsorg Norr AB" in b"".join(stored.values())  # the store is searched as it holds text (a name kept in clear is found)
    assert _new_search(stored | written | printed) == []


def test_one_person_in_three_written_forms_is_one_recipient(tmp_path: Path, store_url: str) -> None:
    from ersattning import projection
    from ersattning.ingest.mapping import Mapping
    from ersattning.ingest.options import ImportOptions
    from ersattning.ingest.recipients import import_decisions
    from ersattning.privacy import Pseudonymiser
    from ersattning.store import open_store

    e, f = NEW["eva"], NEW["frans"]
    three = ["580505 7774", "1958-05-05\u20137774", "１９５８０５０５\u00a0－\u00a0７７７４"]  # eva, as three exports wrote her
    src = tmp_path / "decisions.csv"
    src.write_text(
        "recipient,decision_id,provider,category,granted,valid_from\n"
        + "".join(f"{who},D{k},P1,personal_care,60,2024-0{k + 1}-01\n" for k, who in enumerate(three))
        + f"{f[:8]} - {f[8:]},D9,P1,cleaning,60,2024-01-01\n",
        encoding="utf-8",
    )
    assert e == "195805057774"
    store = open_store(store_url)
    report = import_decisions(store, [src], Mapping(), Pseudonymiser(b"k" * 32), ImportOptions())
    assert not report.quarantined, dict(report.quarantined)
    recipients = projection.load(store).recipients
    assert len(recipients) == 2, recipients  # eva (three decisions) and frans, not four
