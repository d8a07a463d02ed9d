"""A municipality's own export, right the first time (issue 24): ``inspect`` proposes the mapping, the unedited
mapping imports, and ``compare`` settles to hand-computed amounts; the traps that lost data silently stop.

The files are written as a Swedish planning system exports them: visits in Windows-1252 with ``;`` and CRLF,
identity numbers in two written forms, a double-staffed visit written ``Lena Ström, Ahmed Hassan``, a staff
break without a client, cancellations by the recipient and by the provider; decisions in UTF-8 with a BOM,
granted hours ``78,0`` with a unit column ``timmar per månad`` and decision ids written as floats (``5501.0``);
a provider register saying ``Kommunal`` / ``Privat``.
"""

from __future__ import annotations

import json
import re
from pathlib import Path

import jsonschema
import pandas as pd
import pytest
import yaml

from ersattning.ingest.inspect import inspect_file
from ersattning.ingest.mapping import Mapping, load_mapping, mapping_schema
from ersattning.privacy import find_personnummer
from ersattning.yamlconf import ConfigError
from tests.test_cli import run

ENV = {"ERSATTNING_PSEUDONYM_KEY": "a-key-for-the-tests-0123456789"}

# Valid identity numbers (date and Luhn check digit); A is written 12 digits with a dash, 10 digits and 12 without
VISITS = """Personnummer;Utförare;Insats;Planerad start;Planerad tid (min);Utförd start;Utförd tid (min);Personal;Status
19450312-1230;Hemtjänst Söder;Personlig omvårdnad;2024-09-02 08:00;30;2024-09-02 08:05;24;Lena Ström;Utförd
4503121230;Hemtjänst Söder;Städning;2024-09-03 13:00;60;2024-09-03 13:10;48;Ahmed Hassan;Utförd
19450312-1230;Hemtjänst Söder;Personlig omvårdnad;2024-09-04 07:30;45;2024-09-04 07:30;36;Lena Ström, Ahmed Hassan;Utförd
;Hemtjänst Söder;Rast;2024-09-04 12:00;30;2024-09-04 12:00;30;Lena Ström;Utförd
19380704-2563;Hemtjänst Söder;Inköp;2024-09-05 10:00;40;;;Ahmed Hassan;Avbokad av brukare
19380704-2563;Hemtjänst Söder;Tvätt;2024-10-07 14:00;30;2024-10-07 14:02;36;Ahmed Hassan;Utförd
19511120-9879;Omsorg Norr AB;Personlig omvårdnad;2024-10-08 09:00;30;2024-10-08 09:00;30;Sara Lind;Utförd
19511120-9879;Omsorg Norr AB;Ledsagning;2024-10-09 15:00;90;2024-10-09 15:05;85;Sara Lind;Utförd
19450312-1230;Hemtjänst Söder;Personlig omvårdnad;2024-10-10 08:00;30;;;Lena Ström;Avbokad av utförare
19511120-9879;Omsorg Norr AB;Personlig omvårdnad;2024-10-11 07:00;60;2024-10-11 07:00;60;Sara Lind, Omar Ali;Utförd
"""
DECISIONS = """Personnummer;Beslut;Utförare;Insats;Beviljad tid;Enhet;Giltig from;Giltig tom
194503121230;5501.0;Hemtjänst Söder;Personlig omvårdnad;18,5;timmar per månad;2024-09-01;
194503121230;5502.0;Hemtjänst Söder;Städning;2,0;timmar per månad;2024-09-01;
19380704-2563;5601.0;Hemtjänst Söder;Inköp;3,5;timmar per månad;2024-09-01;
19511120-9879;5701.0;Omsorg Norr AB;Personlig omvårdnad;78,0;timmar per månad;2024-09-01;
"""
PROVIDERS = """Utförare;Driftsform;Avtal
Hemtjänst Söder;Kommunal;Egen regi
Omsorg Norr AB;Privat;LOV 2021
"""
RATES = "{personal_care: 485, service: 485, private_personal_care: 516, private_service: 516}"
SCENARIO = f"""name: eget uttag
period: {{start: 2024-09, end: 2024-10}}
baseline: per_minute
models:
  - {{kind: performed_time, name: per_minute, params: {{rates: {RATES}}}}}
  - {{kind: granted_time, name: granted, params: {{rates: {RATES}}}}}
admin:
  hourly_cost: 420
  minutes_per_act: {{registration: 0.5, correction: 10, invoice_line: 0.5, reconciliation: 15, decision_follow_up: 60, dialogue_meeting: 480}}
"""


def _excel(path: Path, text: str) -> str:
    """As Excel on Swedish Windows saves CSV: Windows-1252, CRLF."""
    path.write_bytes(text.replace("\n", "\r\n").encode("cp1252"))
    return str(path)


def _utf8_bom(path: Path, text: str) -> str:
    path.write_bytes(b"\xef\xbb\xbf" + text.replace("\n", "\r\n").encode("utf-8"))
    return str(path)


def _export(tmp_path: Path) -> dict[str, str]:
    return {
        "visits": _excel(tmp_path / "besok.csv", VISITS),
        "decisions": _utf8_bom(tmp_path / "beslut.csv", DECISIONS),
        "providers": _excel(tmp_path / "utforare.csv", PROVIDERS),
    }


def _import(kind: str, path: str, mapping: str, store: str) -> str:
    done = run("import", path, "--kind", kind, "--mapping", mapping, "--store", store, env=ENV)
    assert done.returncode == 0, done.stderr
    return done.stdout


def _compare(scenario: str, store: str) -> dict:
    done = run("compare", scenario, "--store", store, "--format", "json", "--no-suppress", env=ENV)
    assert done.returncode == 0, done.stderr
    return json.loads(done.stdout)


def _model(doc: dict, name: str) -> dict:
    return next(m for m in doc["models"] if m["name"] == name)


def _no_identity_number(text: str) -> bool:
    return not find_personnummer(pd.Series(text.splitlines(), dtype=object)).any()


# -- the end-to-end path: inspect → import (mappings unedited) → compare ------------------------------------


def test_own_export_inspected_imported_unedited_and_settled_by_hand(tmp_path):
    files = _export(tmp_path)
    mappings = {}
    for kind, path in files.items():
        mappings[kind] = str(tmp_path / f"{kind}.mapping.yaml")
        done = run("inspect", path, "--kind", kind, "--write-mapping", mappings[kind])
        assert done.returncode == 0, done.stderr
        assert _no_identity_number(done.stdout) and _no_identity_number(Path(mappings[kind]).read_text(encoding="utf-8"))
    visits_report = run("inspect", files["visits"]).stdout  # the kind guessed from the headers
    assert "visits (guessed from the headers" in visits_report
    assert "encoding   cp1252" in visits_report and "delimiter  ';'" in visits_report
    assert "staff      ','" in visits_report  # Lena Ström, Ahmed Hassan: both names also stand alone
    assert "Personnummer: 9 of 9 cells, written NNNNNNNN-NNNN (8), NNNNNNNNNN (1)" in visits_report  # masked
    v = load_mapping(mappings["visits"])
    assert (v.encoding, v.delimiter, v.staff_separator, v.units) == ("cp1252", ";", ",", {"planned_duration": "minutes", "actual_duration": "minutes"})
    assert v.values["status"] == {"Avbokad av brukare": "cancelled_by_recipient", "Avbokad av utförare": "cancelled_by_provider", "Utförd": "performed"}
    assert [(r.column, r.one_of) for r in v.skip] == [("Insats", ["Rast"])]
    d = load_mapping(mappings["decisions"])
    assert (d.encoding, d.decimal, d.units, d.values["per"]) == ("utf-8-sig", ",", {"granted": "decimal_hours"}, {"timmar per månad": "month"})
    p = load_mapping(mappings["providers"])
    assert p.columns == {"Utförare": "code", "Driftsform": "ownership"} and p.copies == {"code": ["name"]}
    assert p.values == {"ownership": {"Kommunal": "municipal", "Privat": "private"}}
    for kind in files:  # every key is commented, on its line or the line above; every column on its line
        lines = Path(mappings[kind]).read_text(encoding="utf-8").splitlines()
        keys = [i for i, line in enumerate(lines) if re.match(r"^[a-z_]+:", line)]
        assert len(keys) >= 5 and all("#" in lines[i] or lines[i - 1].startswith("#") for i in keys), kind
        start = lines.index("columns:")
        entries = [line for line in lines[start + 1 :] if line.startswith("  ")][: len(load_mapping(mappings[kind]).columns)]
        assert entries and all(" # " in line for line in entries), kind

    store = f"sqlite:///{tmp_path / 'eget.db'}"
    _import("providers", files["providers"], mappings["providers"], store)
    _import("decisions", files["decisions"], mappings["decisions"], store)
    out = _import("visits", files["visits"], mappings["visits"], store)
    # ten rows: nine visits, one staff break skipped, nothing quarantined
    assert "rows read 10, imported 9, already in the store 0, skipped 1, quarantined 0" in out
    scenario = tmp_path / "eget.yaml"
    scenario.write_text(SCENARIO, encoding="utf-8")
    doc = _compare(str(scenario), store)

    # per minute, registered minutes × rate: Hemtjänst Söder municipal 485 SEK/h, Omsorg Norr AB private 516 SEK/h
    # September: 24 min × 485/60 = 194.00; 48 × 485/60 = 388.00; the double-staffed 36 min: 291.00 + 291.00 for the
    #   second staff (Ahmed Hassan); the cancellation by the recipient pays nothing (no cancellation rule) → 1,164.00
    # October: 36 × 485/60 = 291.00; 30 × 516/60 = 258.00; 85 × 516/60 = 731.00; double-staffed 60 min: 516.00 + 516.00;
    #   the cancellation by the provider pays nothing → 2,312.00
    # total 1,164.00 + 2,312.00 = 3,476.00, of which the second staff 291.00 + 516.00 = 807.00
    per_minute = _model(doc, "per_minute")
    assert per_minute["cost_sek"] == pytest.approx(3476.00, abs=0.005)
    assert per_minute["components"]["double_staffing"] == pytest.approx(807.00, abs=0.005)
    # granted hours per month (read 18,5 / 2,0 / 3,5 / 78,0 with the decimal comma, hours per month):
    #   A 18.5 h + 2.0 h at 485 = 9,942.50; B 3.5 h at 485 = 1,697.50; C 78.0 h at 516 (private) = 40,248.00
    #   → 51,888.00 a month, two months 103,776.00
    assert _model(doc, "granted")["cost_sek"] == pytest.approx(103_776.00, abs=0.005)

    # the same scenario over a calendar year, as the bundled ones are: the two months of data stop it, with the way out
    year = tmp_path / "year.yaml"
    year.write_text(SCENARIO.replace("{start: 2024-09, end: 2024-10}", "{start: 2024-01, end: 2024-12}"), encoding="utf-8")
    stopped = run("compare", str(year), "--store", store, env=ENV)
    assert stopped.returncode == 2 and "--period 2024-09..2024-10" in stopped.stderr
    assert run("validate", str(year), "--store", store, env=ENV).returncode == 2
    settled = run("compare", str(year), "--store", store, "--period", "2024-09..2024-10", "--format", "json", "--no-suppress", env=ENV)
    assert settled.returncode == 0, settled.stderr
    doc = json.loads(settled.stdout)
    assert _model(doc, "per_minute")["cost_sek"] == pytest.approx(3476.00, abs=0.005)  # as above
    assert _model(doc, "granted")["cost_sek"] == pytest.approx(103_776.00, abs=0.005)


def test_inspect_proposes_what_the_values_say(tmp_path):
    """Units in h:mm, dates in a day-first form with an offset-free local time, an unknown category listed."""
    path = _excel(
        tmp_path / "v.csv",
        "Brukare;Utförare;Insats;Planerad start;Planerad tid;Utförd start;Utförd tid;Personal;Status\n"
        "B1;Hemtjänst Söder;Omvårdnad;02/09/2024 08:00;0:30;02/09/2024 08:05;0:25;Åsa K;Utförd\n"
        "B2;Hemtjänst Söder;Fotvård;03/09/2024 09:00;1:00;03/09/2024 09:00;0:55;Åsa K/Örjan L;Utförd\n",
    )
    found = inspect_file(path, "visits")
    assert found.date_format == "%d/%m/%Y %H:%M"
    assert found.units == {"planned_duration": ("h:mm", "its cells are written h:mm"), "actual_duration": ("h:mm", "its cells are written h:mm")}
    assert found.unknown_values == {"category": ["Fotvård"]} and found.values["category"] == {"Omvårdnad": "personal_care"}
    # 'Åsa K/Örjan L': the names never stand alone but one of them does ('Åsa K'): a separator
    assert found.staff_separator == "/"
    assert isinstance(found.mapping(), Mapping)  # the proposal loads
    assert any("NOT RECOGNISED Fotvård" in line for line in found.report())


def test_inspect_does_not_split_a_surname_first_name(tmp_path):
    """'Lind, Anna' whose parts never stand alone: no separator proposed, the user is asked to decide."""
    path = _excel(tmp_path / "v.csv", "Brukare;Utförare;Insats;Planerad start;Planerad tid (min);Personal\nB1;S;Städ;2024-09-02 08:00;30;Lind, Anna\n")
    found = inspect_file(path, "visits")
    assert found.staff_separator is None
    assert any("decide what ','" in w for w in found.warnings)
    assert "staff_separator" not in found.mapping().model_fields_set  # the import will stop and ask (trap 2)


def test_inspect_write_mapping_refuses_to_overwrite(tmp_path):
    files = _export(tmp_path)
    target = tmp_path / "m.yaml"
    target.write_text("# mine\n", encoding="utf-8")
    done = run("inspect", files["providers"], "--write-mapping", str(target))
    assert done.returncode == 2 and "exists" in done.stderr and target.read_text(encoding="utf-8") == "# mine\n"
    assert run("inspect", files["providers"], "--write-mapping", str(target), "--force").returncode == 0


# -- trap 2: two staff in one cell ------------------------------------------------------------------


def _hand_mapping(tmp_path: Path, extra: str = "") -> str:
    """The mapping a user wrote by hand before inspect existed: no staff_separator."""
    text = (
        "columns: {Personnummer: recipient, Utförare: provider, Insats: category, Planerad start: planned_start,\n"
        "          Planerad tid (min): planned_duration, Utförd start: actual_start, Utförd tid (min): actual_duration, Personal: staff, Status: status}\n"
        "values:\n"
        "  category: {Personlig omvårdnad: personal_care, Städning: cleaning, Inköp: shopping, Tvätt: laundry, Ledsagning: escort}\n"
        "  status: {Utförd: performed, Avbokad av brukare: cancelled_by_recipient, Avbokad av utförare: cancelled_by_provider}\n"
        "units: {planned_duration: minutes, actual_duration: minutes}\n"
        "skip: [{column: Insats, equals: Rast, reason: rast}]\n" + extra
    )
    path = tmp_path / "hand.yaml"
    path.write_text(text, encoding="utf-8")
    return str(path)


def test_trap2_two_staff_in_one_cell_stop_the_import_and_the_declared_separator_pays_both(tmp_path):
    files = _export(tmp_path)
    mappings = {}
    for kind in ("providers", "decisions"):
        mappings[kind] = str(tmp_path / f"{kind}.yaml")
        assert run("inspect", files[kind], "--kind", kind, "--write-mapping", mappings[kind]).returncode == 0
    store = f"sqlite:///{tmp_path / 's.db'}"
    _import("providers", files["providers"], mappings["providers"], store)
    _import("decisions", files["decisions"], mappings["decisions"], store)

    silent = run("import", files["visits"], "--mapping", _hand_mapping(tmp_path), "--store", store, env=ENV)
    assert silent.returncode == 2, silent.stdout
    # the file, the first line with two names (line 4: the header is line 1), the column, the candidate, the key
    assert "besok.csv, line 4: column 'Personal' (staff)" in silent.stderr
    assert "with ',' between names" in silent.stderr and "staff_separator: ','" in silent.stderr
    assert "Traceback" not in silent.stderr and "Lena" not in silent.stderr  # names are not quoted
    history = json.loads(run("history", "--store", store, "--format", "json", "--no-suppress", env=ENV).stdout)
    assert history["visits"] == 0  # nothing of the file was written

    fixed = _hand_mapping(tmp_path, 'staff_separator: ","\n')
    _import("visits", files["visits"], fixed, store)
    scenario = tmp_path / "s.yaml"
    scenario.write_text(SCENARIO, encoding="utf-8")
    doc = _compare(str(scenario), store)
    # as in the end-to-end test: 3,476.00, the two second staff 291.00 (36 min × 485/60) + 516.00 (60 min × 516/60)
    assert _model(doc, "per_minute")["components"]["double_staffing"] == pytest.approx(807.00, abs=0.005)
    assert _model(doc, "per_minute")["cost_sek"] == pytest.approx(3476.00, abs=0.005)


@pytest.mark.parametrize("cell", ["Lena Ström; Ahmed Hassan", "Lena Ström/Ahmed Hassan", "Lena Ström & Ahmed Hassan", "Lena Ström och Ahmed Hassan"])
def test_trap2_every_written_separator_is_caught(tmp_path, cell):
    sep = {";": ";", "/": "/", "&": "&", "och": " och "}[next(s for s in (";", "/", "&", "och") if s in cell)]
    rows = "Brukare,Utförare,Insats,Planerad start,Planerad tid (min),Personal\n" + f'B1,S,Städning,2024-09-02 08:00,30,"{cell}"\nB2,S,Städning,2024-09-02 09:00,30,Lena Ström\n'
    path = tmp_path / "v.csv"
    path.write_text(rows, encoding="utf-8")
    mapping = tmp_path / "m.yaml"
    mapping.write_text(
        "columns: {Brukare: recipient, Utförare: provider, Insats: category, Planerad start: planned_start, Planerad tid (min): planned_duration, Personal: staff}\n"
        "values: {category: {Städning: cleaning}}\nunits: {planned_duration: minutes}\n",
        encoding="utf-8",
    )
    done = run("import", str(path), "--mapping", str(mapping), "--store", f"sqlite:///{tmp_path / 's.db'}", env=ENV)
    assert done.returncode == 2 and f"with {sep!r} between names" in done.stderr and "staff_separator" in done.stderr
    assert inspect_file(str(path), "visits").staff_separator == sep  # 'Lena Ström' also stands alone


# -- trap 3: decimal comma in decisions ---------------------------------------------------------------


def test_trap3_decimal_comma_in_decisions_is_read_and_said(tmp_path):
    """A hand-written decisions mapping without decimal: (30 of 30 rows were quarantined): the file's comma is
    used and named in the summary; a declared point still wins (and quarantines the rows, with the reason)."""
    files = _export(tmp_path)
    store = f"sqlite:///{tmp_path / 's.db'}"
    base = (
        "columns: {Personnummer: recipient, Beslut: decision_id, Utförare: provider, Insats: category, Beviljad tid: granted,\n"
        "          Giltig from: valid_from, Giltig tom: valid_to}\n"
        "values: {category: {Personlig omvårdnad: personal_care, Städning: cleaning, Inköp: shopping}}\n"
        "units: {granted: decimal_hours}\n"
    )
    declared_point = tmp_path / "point.yaml"
    declared_point.write_text(base + 'decimal: "."\n', encoding="utf-8")
    wrong = run("import", files["decisions"], "--kind", "decisions", "--mapping", str(declared_point), "--store", f"sqlite:///{tmp_path / 'w.db'}", env=ENV)
    assert "quarantined (granted missing or not in the declared unit): 4" in wrong.stdout  # 18,5 / 2,0 / 3,5 / 78,0

    undeclared = tmp_path / "hand.yaml"
    undeclared.write_text(base, encoding="utf-8")
    done = run("import", files["decisions"], "--kind", "decisions", "--mapping", str(undeclared), "--store", store, env=ENV)
    assert done.returncode == 0, done.stderr
    assert "quarantined 0" in done.stdout
    assert "numbers read with the decimal mark ',' found in beslut.csv (declare decimal: in the mapping to change it): 4" in done.stdout
    providers = str(tmp_path / "p.yaml")
    assert run("inspect", files["providers"], "--kind", "providers", "--write-mapping", providers).returncode == 0
    _import("providers", files["providers"], providers, store)
    scenario = tmp_path / "s.yaml"
    scenario.write_text(SCENARIO, encoding="utf-8")
    # granted (no visits needed): 18.5 h + 2.0 h at 485 = 9,942.50; 3.5 h at 485 = 1,697.50; 78.0 h at 516 = 40,248.00
    # → 51,888.00 a month, 103,776.00 for September and October
    assert _model(_compare(str(scenario), store), "granted")["cost_sek"] == pytest.approx(103_776.00, abs=0.005)


def test_decimal_point_in_a_comma_separated_file(tmp_path):
    from ersattning.ingest.detect import file_decimal_found

    p = tmp_path / "d.csv"
    p.write_text('recipient,decision_id,granted\nB1,D1,"7,5"\nB2,D2,12.5\n', encoding="utf-8")
    assert file_decimal_found(str(p), None, None) == (".", True)  # a quoted "7,5" in a comma file is not taken as the mark
    p.write_text("recipient;granted\nB1;12\n", encoding="utf-8")
    assert file_decimal_found(str(p), None, None) == (",", False)  # no decimal in the sample: ';' means a Swedish export
    p.write_text("recipient;granted;id\nB1;12.5;1661.0\n", encoding="utf-8")
    assert file_decimal_found(str(p), None, None) == (".", True)


# -- the mapping reference ---------------------------------------------------------------------------


def test_schema_mapping_lists_every_key_and_validates_written_mappings(tmp_path):
    done = run("schema", "--mapping")
    assert done.returncode == 0, done.stderr
    schema = json.loads(done.stdout)
    assert set(schema["properties"]) == set(Mapping.model_fields)
    assert schema["additionalProperties"] is False
    for key, prop in schema["properties"].items():
        assert prop.get("description") or prop.get("$ref") or prop.get("allOf"), key  # every key says what it does
    assert schema["properties"]["staff_separator"]["default"] == "|"
    files = _export(tmp_path)
    for kind, path in files.items():
        written = tmp_path / f"{kind}.yaml"
        assert run("inspect", path, "--kind", kind, "--write-mapping", str(written)).returncode == 0
        jsonschema.validate(yaml.safe_load(written.read_text(encoding="utf-8")), schema)
    with pytest.raises(jsonschema.ValidationError):
        jsonschema.validate({"staff_seperator": ","}, schema)
    assert json.loads(run("schema").stdout) != schema  # without the flag: scenarios, as before
    assert mapping_schema()["title"] == "ersattning import mapping"


def test_an_unknown_mapping_key_lists_the_valid_ones(tmp_path):
    path = tmp_path / "m.yaml"
    path.write_text("columns: {Brukare: recipient}\nstaff_seperator: ','\nevents: {cas: visit}\n", encoding="utf-8")
    with pytest.raises(ConfigError) as e:
        load_mapping(path)
    lines = str(e.value).splitlines()
    assert lines[0].startswith(f"{path}:2: staff_seperator: unknown key; did you mean staff_separator? valid keys: columns, copies,")
    assert "staff_separator" in lines[0] and "decimal" in lines[0] and "performed_as_planned" in lines[0]
    assert lines[1] == f"{path}:3: events.cas: unknown key; did you mean case? valid keys: case, transitions, outcomes, instant_minutes (docs/mapping.md)"
    done = run("import", str(tmp_path / "x.csv"), "--mapping", str(path), env=ENV)
    assert done.returncode == 2 and "valid keys:" in done.stderr and "Traceback" not in done.stderr


def test_the_mapping_reference_names_every_key():
    from ersattning.ingest.mapping import EventOptions, SkipRule

    text = (Path(__file__).parent.parent / "docs" / "mapping.md").read_text(encoding="utf-8")
    for key in [*Mapping.model_fields, *EventOptions.model_fields, *SkipRule.model_fields]:
        assert f"`{key}`" in text, key
    for key in Mapping.model_fields:  # each top-level key has its row in the table
        assert re.search(rf"^\| `{key}` \|", text, re.MULTILINE), key


def test_an_export_with_start_times_only_is_told_what_it_lacks(tmp_path):
    """The issue's header exactly: no planned or registered length or end; the import would quarantine every
    performed row, so inspect says what to export besides."""
    path = _excel(
        tmp_path / "v.csv",
        "Personnummer;Utförare;Insats;Planerad start;Utförd start;Personal;Status\n"
        "19450312-1230;Hemtjänst Söder;Personlig omvårdnad;2024-09-02 08:00;2024-09-02 08:05;Lena Ström;Utförd\n",
    )
    warnings = "\n".join(inspect_file(path).warnings)
    assert "no planned end or length" in warnings and "registered starts without a registered end or length" in warnings


def test_encoding_from_every_byte_not_the_first_64_kib(tmp_path):
    """An export whose first 64 KiB are plain ASCII and whose 'ö' comes later: the reader's sniff says UTF-8,
    inspect looks at all of it and writes cp1252 into the mapping."""
    rows = "".join(f"B{i};Hemtjanst;Stadning;2024-09-02 08:00;30;Anna K\n" for i in range(2000))
    path = _excel(tmp_path / "v.csv", "Brukare;Utförare;Insats;Planerad start;Planerad tid (min);Personal\n".replace("ö", "o") + rows + "B9;Hemtjänst Söder;Städning;2024-09-03 08:00;30;Åsa K\n")
    found = inspect_file(path, "visits")
    assert found.encoding == "cp1252" and "line 2002 is not UTF-8" in found.encoding_note
    assert found.mapping().encoding == "cp1252"


def test_a_granted_header_naming_hours_per_week(tmp_path):
    """'Beviljad tid (timmar per vecka)' with 1,5: hours, per week (a default: the file has no unit column)."""
    path = tmp_path / "b.csv"
    path.write_text("Brukare;Beslut;Insats;Beviljad tid (timmar per vecka);Giltig fr.o.m.\nB1;D1;Städning;1,5;2024-09-01\n", encoding="utf-8")
    found = inspect_file(str(path))
    assert found.kind == "decisions" and found.source_of("valid_from") == "Giltig fr.o.m."
    m = found.mapping()
    assert (m.units, m.defaults, m.decimal) == ({"granted": "decimal_hours"}, {"per": "week"}, ",")


def test_stays_with_swedish_kinds(tmp_path):
    path = _excel(tmp_path / "vistelser.csv", "Personnummer;Typ;Inskriven;Utskriven\n19450312-1230;Sjukhusvistelse;2024-09-10;2024-09-14\n19380704-2563;Korttid;2024-10-01;\n")
    found = inspect_file(path)
    assert found.kind == "stays"
    assert found.columns == {"Personnummer": ["recipient"], "Typ": ["kind"], "Inskriven": ["start"], "Utskriven": ["end"]}
    assert found.values == {"kind": {"Korttid": "short_term", "Sjukhusvistelse": "hospital"}}
    assert _no_identity_number("\n".join(found.report()) + found.yaml())
