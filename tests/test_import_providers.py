"""Providers as data: ``import --kind providers`` and ``ownership`` in a visits mapping (idempotent, screened)."""

from __future__ import annotations

import csv
from pathlib import Path

from ersattning import projection
from ersattning.ingest.mapping import Mapping
from ersattning.ingest.options import ImportOptions
from ersattning.ingest.providers import import_providers
from ersattning.ingest.visits import import_visits
from ersattning.privacy import MASK, Pseudonymiser
from ersattning.store import Store, open_store
from tests.test_cli import run

P = Pseudonymiser(b"p" * 32)
ENV = {"ERSATTNING_PSEUDONYM_KEY": "a-key-for-the-tests-0123456789"}


def _store(tmp_path: Path, name: str = "s.db") -> Store:
    return open_store(f"sqlite:///{tmp_path / name}")


def _providers(store: Store) -> list[tuple[str, str, str, int]]:
    p = projection.load(store).providers.sort_values("provider")
    return [(r.provider, r.name, str(r.ownership), int(r.teams)) for r in p.itertuples()]


def test_providers_import_is_idempotent_and_never_changes_a_provider(tmp_path: Path) -> None:
    src = tmp_path / "providers.csv"
    src.write_text(
        "Kod;Namn;Regi;Grupper;Område\n"
        "HS;Hemtjänst Söder;Kommunal;HS-1|HS-2;urban\n"
        "ON;Omsorg Norr AB;Privat;;rural\n"
        "ON;Omsorg Norr AB;Privat;;rural\n",  # the same row twice: one provider
        encoding="utf-8",
    )
    mapping = Mapping.model_validate(
        {
            "columns": {"Kod": "code", "Namn": "name", "Regi": "ownership", "Grupper": "teams", "Område": "area"},
            "values": {"ownership": {"Kommunal": "municipal", "Privat": "private"}},
        }
    )
    store = _store(tmp_path)
    first = import_providers(store, [src], mapping, P)
    assert (first.rows_imported, first.rows_unchanged, first.events_written) == (2, 1, 2)
    assert _providers(store) == [("HS", "Hemtjänst Söder", "municipal", 2), ("ON", "Omsorg Norr AB", "private", 0)]
    again = import_providers(store, [src], mapping, P)
    assert (again.rows_imported, again.rows_unchanged, again.events_written) == (0, 3, 0)
    # a row that would change a provider is quarantined: the store has no event for it
    src.write_text("Kod;Namn;Regi;Grupper;Område\nHS;Hemtjänst Söder;Privat;HS-1|HS-2;urban\nXX;;Kommunal;;\nYY;Y;ägd;;\n", encoding="utf-8")
    q = tmp_path / "q.csv"
    changed = import_providers(store, [src], mapping, P, ImportOptions(quarantine=q))
    assert changed.events_written == 0
    assert dict(changed.quarantined) == {
        "ownership differs from the provider's registered ownership (an import cannot change a provider)": 1,
        "name missing": 1,
        "ownership not one of municipal, private": 1,
    }
    assert _providers(store)[0] == ("HS", "Hemtjänst Söder", "municipal", 2)


def test_every_provider_column_is_screened(tmp_path: Path) -> None:
    src = tmp_path / "providers.csv"
    src.write_text(
        "code,name,ownership,teams\n"
        "EF,Enskild firma 19430514-1139,private,\n"
        "E2,Firma,private,T1|4305141139\n"
        "194305141139,Firma 3,private,\n"
        "OK,Fine AB,private,T1\n",
        encoding="utf-8",
    )
    q = tmp_path / "q.csv"
    store = _store(tmp_path)
    report = import_providers(store, [src], Mapping(), P, ImportOptions(quarantine=q))
    assert report.rows_imported == 1
    assert dict(report.quarantined) == {"a personal identity number in name": 1, "a personal identity number in teams": 1, "a personal identity number in code": 1}
    assert {"code", "name", "teams"} <= report.columns_with_personnummer
    text = q.read_text(encoding="utf-8")
    assert "1139" not in text and text.count(MASK) == 3
    assert (q.stat().st_mode & 0o777) == 0o600
    assert _providers(store) == [("OK", "Fine AB", "private", 1)]


VISITS = "recipient,provider,team,visit_id,category,planned_start,planned_end,actual_start,actual_end,staff,status,regi\n"


def test_a_visits_mapping_registers_providers_by_ownership(tmp_path: Path) -> None:
    src = tmp_path / "v.csv"
    src.write_text(
        VISITS
        + "R1,HS,HS-1,V1,personal_care,2024-03-04 08:00,2024-03-04 08:30,,,,planned,Kommunal\n"
        + "R2,HS,HS-2,V2,personal_care,2024-03-04 09:00,2024-03-04 09:30,,,,planned,Kommunal\n"
        + "R3,ON,,V3,cleaning,2024-03-04 10:00,2024-03-04 11:00,,,,planned,Privat\n"
        + "R4,ON,,V4,cleaning,2024-03-05 10:00,2024-03-05 11:00,,,,planned,Kommunal\n"  # contradicts the row before
        + "R5,XY,,V5,cleaning,2024-03-05 10:00,2024-03-05 11:00,,,,planned,okänd\n",
        encoding="utf-8",
    )
    mapping = Mapping.model_validate({"columns": {"regi": "ownership"}, "values": {"ownership": {"Kommunal": "municipal", "Privat": "private"}}})
    store = _store(tmp_path)
    report = import_visits(store, [src], mapping, P)
    assert report.rows_imported == 3
    assert dict(report.quarantined) == {
        "ownership differs from the provider's registered ownership (an import cannot change a provider)": 1,
        "ownership not one of municipal, private (map the source's values under values: ownership)": 1,
    }
    assert _providers(store) == [("HS", "HS", "municipal", 2), ("ON", "ON", "private", 0)]
    again = import_visits(store, [src], mapping, P)
    assert again.rows_imported == 0 and len(projection.load(store).providers) == 2
    # a default ownership registers the providers of a file without the column
    other = tmp_path / "w.csv"
    other.write_text(VISITS + "R6,NY,,V6,cleaning,2024-03-06 10:00,2024-03-06 11:00,,,,planned,\n", encoding="utf-8")
    defaulted = import_visits(store, [other], Mapping.model_validate({"defaults": {"ownership": "municipal"}}), P)
    assert defaulted.rows_imported == 1
    assert ("NY", "NY", "municipal", 0) in _providers(store)


def test_the_providers_command(tmp_path: Path) -> None:
    src = tmp_path / "providers.csv"
    src.write_text("code,name,ownership,teams\nHS,Hemtjänst Söder,municipal,HS-1\nEF,Enskild firma 19430514-1139,private,\n", encoding="utf-8")
    store = f"sqlite:///{tmp_path / 'cli.db'}"
    q = tmp_path / "q.csv"
    done = run("import", str(src), "--kind", "providers", "--store", store, "--quarantine", str(q), env=ENV)
    assert done.returncode == 3, done.stderr  # imported, a row rejected
    assert "imported 1" in done.stdout and "quarantined 1" in done.stdout
    assert "1139" not in done.stdout + done.stderr
    rows = list(csv.DictReader(q.open(encoding="utf-8")))
    assert rows[0]["name"] == f"Enskild firma {MASK}" and rows[0]["reason"] == "a personal identity number in name"
    again = run("import", str(src), "--kind", "providers", "--store", store, env=ENV)
    assert "imported 0" in again.stdout and "0 events written" in again.stdout
