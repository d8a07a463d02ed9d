"""``ersattning inspect``: what a municipality's own export holds, and the mapping that imports it.

A sample of the file (its first ``SAMPLE_ROWS`` rows; the encoding from all its bytes) is read as the
importer reads it, and each thing a mapping can say is found from it, with the reason shown:

* encoding (cp1252, UTF-8 with or without BOM), delimiter and decimal mark (``detect.py``, the
  importer's own rule), date and time forms (ISO 8601 or one ``date_format``) and UTC offsets;
* the canonical column of each header ``vocabulary.py`` knows, Swedish or English; the rest listed as
  unmapped (they are not imported);
* value maps for the Swedish terms it knows (``Personlig omvårdnad``, ``Utförd``, ``Kommunal``, …) and
  the values it does not (rows holding them would be quarantined), skip rules for staff breaks;
* units of durations and granted time (from the header, ``timmar per månad`` cells or the values);
* the staff separator (``Lena Ström, Ahmed Hassan``: ``,`` when the names also stand alone);
* identity-number columns, shown masked (``NNNNNNNN-NNNN``), never in clear.

The proposed mapping is checked by reading the sample with it (dates, units, values) before it is
shown or written; every key of the written YAML carries a comment (docs/mapping.md).
"""

from __future__ import annotations

import codecs
import re
from collections import Counter
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path

import numpy as np
import pandas as pd

from ersattning.domain import Area, Category, Ownership, Registration, StayKind
from ersattning.ingest.cells import parse_local_times, parse_minutes
from ersattning.ingest.detect import STAFF_SEPARATORS, file_decimal_found, separators_in
from ersattning.ingest.mapping import KIND_COLUMNS, Mapping
from ersattning.ingest.readers import ReadError, read_rows, sniff_csv
from ersattning.ingest.readers.chunk import check_file
from ersattning.ingest.visits import STATUSES
from ersattning.ingest.vocabulary import BREAKS, HEADERS, HOURS_HINTS, MINUTES_HINTS, PER_UNITS, VALUES, normal
from ersattning.privacy import find_personnummer, mask_numbers
from ersattning.privacy.identity_numbers import plain_form

SAMPLE_ROWS = 100_000
KINDS = tuple(HEADERS)
REQUIRED = {
    "visits": ("recipient", "provider", "category", "planned_start"),
    "decisions": ("recipient", "decision_id", "category", "granted", "valid_from"),
    "stays": ("recipient", "kind", "start"),
    "providers": ("code", "name", "ownership"),
    "events": ("case", "activity", "timestamp"),
}
TIME_COLUMNS = ("planned_start", "planned_end", "actual_start", "actual_end", "cancelled_at", "recorded_at", "timestamp")
DATE_COLUMNS = ("valid_from", "valid_to", "start", "end")
DURATION_COLUMNS = ("planned_duration", "actual_duration", "granted", "duration")
ID_COLUMNS = ("recipient", "visit_id", "decision_id", "stay_id", "case", "code")
PSEUDONYMISED = ("recipient", "staff", "resource", "case")
_ISO = re.compile(r"\d{4}-\d{2}-\d{2}(?:[ T]\d{2}:\d{2}(?::\d{2}(?:\.\d+)?)?)?(?:Z|[+-]\d{2}:?\d{2})?")
_OFFSET = re.compile(r"(?:Z|[+-]\d{2}:?\d{2})$")
_FORMATS = ("%Y-%m-%d %H.%M", "%d/%m/%Y %H:%M", "%d.%m.%Y %H:%M", "%d-%m-%Y %H:%M", "%Y/%m/%d %H:%M", "%Y%m%d %H:%M", "%d/%m/%Y %H:%M:%S",
            "%d.%m.%Y %H:%M:%S", "%d/%m/%Y", "%d.%m.%Y", "%d-%m-%Y", "%Y/%m/%d", "%Y%m%d")  # fmt: skip
_HHMM = re.compile(r"\d+:[0-5]\d")
_FLOAT_ID = re.compile(r"\d+\.0")


@dataclass
class Inspection:
    """What a file holds and the mapping proposed for it (``report()`` to show, ``yaml()`` to write)."""

    path: str
    kind: str
    kind_note: str = ""
    file_type: str = "csv"
    encoding: str | None = None
    encoding_note: str = ""
    delimiter: str | None = None
    decimal: str = "."
    decimal_note: str = ""
    rows_seen: int = 0
    whole_file: bool = True
    headers: list[str] = field(default_factory=list)
    columns: dict[str, list[str]] = field(default_factory=dict)  # source → canonical (and copies)
    unmapped: list[str] = field(default_factory=list)
    values: dict[str, dict[str, str]] = field(default_factory=dict)
    unknown_values: dict[str, list[str]] = field(default_factory=dict)
    units: dict[str, tuple[str, str]] = field(default_factory=dict)  # canonical → (unit, why)
    defaults: dict[str, tuple[str, str]] = field(default_factory=dict)  # canonical → (value, why)
    date_format: str | None = None
    date_note: str = ""
    staff_separator: str | None = None
    staff_note: str = ""
    skip: list[tuple[str, list[str], str]] = field(default_factory=list)  # (column, values, reason)
    identity_numbers: dict[str, str] = field(default_factory=dict)  # column → what was found (masked)
    warnings: list[str] = field(default_factory=list)

    def source_of(self, canonical: str) -> str | None:
        return next((s for s, targets in self.columns.items() if canonical in targets), None)

    def mapping(self) -> Mapping:
        """The proposed mapping as the importer loads it."""
        import yaml

        return Mapping.model_validate(yaml.safe_load(self.yaml()))

    def yaml(self) -> str:
        from ersattning.ingest.inspect_yaml import mapping_yaml

        return mapping_yaml(self)

    def report(self) -> list[str]:
        from ersattning.ingest.inspect_yaml import report_lines

        return report_lines(self)


def inspect_file(path: str | Path, kind: str | None = None, sample_rows: int = SAMPLE_ROWS) -> Inspection:
    """Inspect ``path`` (as ``kind``, else the kind its headers fit best) and propose its mapping."""
    path = str(path)
    check_file(path)  # a missing file or a directory: a ReadError naming it
    found = Inspection(path=path, kind=kind or "visits")
    found.file_type = _file_type(path)
    if found.file_type == "csv":
        _dialect(found)
    frame = _sample(found, sample_rows)
    found.headers = [str(c) for c in frame.columns]
    if kind is None:
        found.kind, found.kind_note = _guess_kind(found.headers)
    _map_headers(found)
    cells = {c: _text(frame[s]) for s, targets in found.columns.items() for c in targets}
    _values(found, cells)
    _units(found, cells)
    _dates(found, cells)
    _staff(found, cells)
    _identity_numbers(found, frame)
    _float_ids(found, cells)
    _completeness(found)
    _check_sample(found, cells)
    return found


# -- the file --------------------------------------------------------------------------------------------


def _file_type(path: str) -> str:
    name = path.lower()
    return "parquet" if name.endswith((".parquet", ".pq")) else "xes" if name.endswith((".xes", ".xes.gz")) else "csv"


def _dialect(found: Inspection) -> None:
    """Encoding (all of the file's bytes looked at), delimiter and decimal mark."""
    with open(found.path, "rb") as f:
        head = f.read(4)
    if head.startswith(codecs.BOM_UTF8):
        found.encoding, found.encoding_note = "utf-8-sig", "UTF-8 with a byte order mark"
    elif head.startswith((codecs.BOM_UTF16_LE, codecs.BOM_UTF16_BE)):
        found.encoding, found.encoding_note = "utf-16", "UTF-16 (Excel's Unicode text)"
    else:
        line = _first_non_utf8_line(found.path)
        if line is None:
            found.encoding, found.encoding_note = "utf-8-sig", "UTF-8 without a byte order mark (every byte of the file decodes)"
        else:
            found.encoding, found.encoding_note = "cp1252", f"Windows-1252 (Excel on Swedish Windows): line {line} is not UTF-8"
    dialect = sniff_csv(found.path, encoding=found.encoding)
    found.delimiter = dialect.delimiter
    found.decimal, shown = file_decimal_found(found.path, found.encoding, found.delimiter)
    found.decimal_note = (
        "numbers in the file are written with it" if shown else f"no number with a decimal part in the first 64 KiB; the default for a {_delimiter_name(found.delimiter)}-separated file"
    )


def _first_non_utf8_line(path: str) -> int | None:
    """The first line holding bytes that are not UTF-8 (None: the whole file is UTF-8)."""
    decoder = codecs.getincrementaldecoder("utf-8")()
    lines = 0
    with open(path, "rb") as f:
        while True:
            block = f.read(1 << 20)
            try:
                text = decoder.decode(block, final=not block)
            except UnicodeDecodeError as e:
                return lines + block[: e.start].count(b"\n") + 1
            lines += text.count("\n")
            if not block:
                return None


def _delimiter_name(d: str | None) -> str:
    return {";": "semicolon", ",": "comma", "\t": "tab"}.get(d or "", repr(d))


def _sample(found: Inspection, sample_rows: int) -> pd.DataFrame:
    """The file's first rows as the importer reads them (text cells, None for empty)."""
    chunks = read_rows(found.path, chunk_rows=sample_rows, encoding=found.encoding, delimiter=found.delimiter)
    first = next(iter(chunks), None)
    if first is None:
        raise ReadError(f"{found.path}: no rows to inspect", path=found.path)
    found.rows_seen = len(first)
    found.whole_file = (first.fraction is not None and first.fraction >= 1.0) or len(first) < sample_rows
    return first.frame.reset_index(drop=True)


def _text(column: pd.Series) -> pd.Series:
    """Stripped cells, None for empty ones."""
    text = column.astype("string").str.strip()
    return text.astype(object).where(text.notna() & (text != ""), None)


# -- columns ---------------------------------------------------------------------------------------------


def _guess_kind(headers: list[str]) -> tuple[str, str]:
    """The kind whose required columns the headers name most of (ties: more headers recognised)."""
    def score(kind: str) -> tuple[int, int]:
        known = {HEADERS[kind].get(normal(h)) for h in headers} - {None}
        if kind == "providers" and "name" in known:
            known.add("code")  # one name column is the code too (_map_headers)
        return sum(c in known for c in REQUIRED[kind]), len(known)

    best = max(KINDS, key=score)
    return best, f"guessed from the headers ({score(best)[0]} of its {len(REQUIRED[best])} required columns); give --kind to choose"


def _map_headers(found: Inspection) -> None:
    names = HEADERS[found.kind]
    for header in found.headers:
        canonical = names.get(normal(header)) or _per_unit_header(found, header)
        if canonical is None:
            found.unmapped.append(header)
        elif found.source_of(canonical) is not None:
            found.unmapped.append(header)
            found.warnings.append(f"{header!r} also reads as {canonical}, which {found.source_of(canonical)!r} gives: left unmapped")
        else:
            found.columns[header] = [canonical]
    if found.kind == "providers" and found.source_of("code") is None and found.source_of("name") is not None:
        name = found.source_of("name")
        assert name is not None
        found.columns[name] = ["code", "name"]  # one column: the name is the code visits and decisions give


def _per_unit_header(found: Inspection, header: str) -> str | None:
    """``Beviljade timmar per månad``: a granted-time header that names its unit."""
    if found.kind != "decisions":
        return None
    text = normal(header)
    return "granted" if any(text.endswith(" " + unit) or text == unit for unit in PER_UNITS) and ("beviljad" in text or "beviljade" in text) else None


# -- values ----------------------------------------------------------------------------------------------


def _values(found: Inspection, cells: dict[str, pd.Series]) -> None:
    """Value maps for the terms ``vocabulary.VALUES`` knows; skip rules for staff breaks; the rest listed."""
    for column, table in VALUES.items():
        if column not in cells or column not in _allowed(found.kind):
            continue
        allowed = _allowed(found.kind)[column]
        mapped: dict[str, str] = {}
        breaks, unknown = [], []
        for value in sorted(set(cells[column].dropna())):
            if value in allowed:
                continue
            if normal(value) in table:
                mapped[value] = table[normal(value)]
            elif column == "category" and normal(value) in BREAKS:
                breaks.append(value)
            else:
                unknown.append(value)
        if mapped:
            found.values[column] = mapped
        if breaks:
            found.skip.append((found.source_of(column) or column, breaks, "staff time, not a visit (breaks, meetings, travel)"))
        if unknown:
            found.unknown_values[column] = unknown
    if found.kind == "decisions" and "per" in cells:
        _per_values(found, cells["per"])


def _allowed(kind: str) -> dict[str, set[str]]:
    """Canonical values of the columns of ``kind`` that take a fixed set."""
    sets = {"category": {c.value for c in Category}, "status": set(STATUSES), "ownership": {o.value for o in Ownership},
            "registration": {r.value for r in Registration}, "kind": {k.value for k in StayKind}, "area": {a.value for a in Area}}  # fmt: skip
    return {c: v for c, v in sets.items() if c in KIND_COLUMNS[kind]}


def _per_values(found: Inspection, per: pd.Series) -> None:
    """A decision's unit column (``timmar per månad``): ``per`` mapped, and the granted time's unit from it."""
    seen = sorted(set(per.dropna()))
    known = {v: PER_UNITS[normal(v)] for v in seen if normal(v) in PER_UNITS}
    plain = {"month", "week"}
    unknown = [v for v in seen if v not in known and v not in plain]
    if unknown:
        found.unknown_values["per"] = unknown
    if known:
        found.values["per"] = {v: p for v, (_, p) in known.items()}
        units = {u for u, _ in known.values()}
        if len(units) == 1:
            found.units["granted"] = (units.pop(), f"the unit column {found.source_of('per')!r} says {', '.join(known)}")
        else:
            found.warnings.append(
                f"{found.source_of('per')!r} mixes hours and minutes ({', '.join(known)}): one unit applies to the whole file; split it by unit and import each part with its own mapping"
            )


# -- units, dates, staff -------------------------------------------------------------------------------


def _units(found: Inspection, cells: dict[str, pd.Series]) -> None:
    """The unit of each duration column: h:mm by its cells, else by its header, else by the size of its values."""
    for column in DURATION_COLUMNS:
        if column not in cells or column in found.units:
            continue
        values = cells[column].dropna()
        header = (found.source_of(column) or column).lower()
        said = _header_unit(header)
        if said is not None and column == "granted" and "per" not in cells:
            found.defaults["per"] = (said[1], f"the header {found.source_of(column)!r} says per {said[1]}")
        if len(values) and values.map(lambda v: bool(_HHMM.fullmatch(v))).all():
            found.units[column] = ("h:mm", "its cells are written h:mm")
        elif said is not None:
            found.units[column] = (said[0], f"the header {found.source_of(column)!r} says {'hours' if said[0] == 'decimal_hours' else 'minutes'} per {said[1]}")
        elif any(h in header for h in HOURS_HINTS):
            found.units[column] = ("decimal_hours", f"the header {found.source_of(column)!r} says hours")
        elif any(h in header for h in MINUTES_HINTS):
            found.units[column] = ("minutes", f"the header {found.source_of(column)!r} says minutes")
        else:
            numbers = pd.to_numeric(values.str.replace(",", ".", regex=False), errors="coerce").dropna()
            hours = len(numbers) > 0 and float(numbers.median()) <= (200 if column == "granted" else 12)
            unit = "decimal_hours" if hours else "minutes"
            found.units[column] = (unit, f"GUESSED from the size of its values (median {float(numbers.median()) if len(numbers) else float('nan'):g}): check it")
            found.warnings.append(f"the unit of {found.source_of(column)!r} is a guess ({unit}); the header does not say: check units: in the mapping")


def _header_unit(header: str) -> tuple[str, str] | None:
    """``Beviljad tid (timmar per vecka)``, ``Beviljade timmar per månad``: the unit and per a header names."""
    text = " " + normal(header.replace("(", " ").replace(")", " ")) + " "
    return next((unit for said, unit in PER_UNITS.items() if f" {said} " in text), None)


def _dates(found: Inspection, cells: dict[str, pd.Series]) -> None:
    """ISO 8601 (no ``date_format`` needed) or the one strptime form every date and time column is written in."""
    columns = [c for c in (*TIME_COLUMNS, *DATE_COLUMNS) if c in cells and cells[c].notna().any()]
    if not columns:
        return
    forms: dict[str, str | None] = {}
    offsets = 0
    for c in columns:
        values = cells[c].dropna()
        offsets += int(values.map(lambda v: bool(_OFFSET.search(v)) and ":" in v).sum())
        if values.map(lambda v: bool(_ISO.fullmatch(v))).all():
            forms[c] = None
            continue
        sample = values.iloc[:500].tolist()
        forms[c] = next((f for f in _FORMATS if all(_parses(v, f) for v in sample)), "?")
    shown = ", ".join(found.source_of(c) or c for c in columns)
    written = set(forms.values())
    if "?" in written:
        bad = [found.source_of(c) or c for c, f in forms.items() if f == "?"]
        found.warnings.append(f"dates in {', '.join(map(repr, bad))} are in no form known here: set date_format: (a strptime format, e.g. '%d/%m/%Y %H:%M')")
    elif len(written) > 1:
        found.warnings.append(f"the date columns are written in different forms ({', '.join(sorted(str(f or 'ISO 8601') for f in written))}); one date_format applies to the whole file")
    elif written == {None}:
        found.date_note = f"ISO 8601 in {shown}: no date_format needed"
    else:
        found.date_format = written.pop()
        found.date_note = f"{shown} are written {found.date_format}"
    if offsets:
        found.date_note += f"; {offsets:,} times carry a UTC offset and are read as given (timezone: applies to the others)"


def _parses(value: str, form: str) -> bool:
    try:
        datetime.strptime(value, form)
    except ValueError:
        return False
    return True


def _staff(found: Inspection, cells: dict[str, pd.Series]) -> None:
    """The separator of two staff in one cell: proposed when the names it separates also stand alone in the column."""
    column = "resource" if found.kind == "events" else "staff"
    if column not in cells:
        return
    distinct = set(cells[column].dropna())
    seps = separators_in(distinct)
    source = found.source_of(column)
    if not seps:
        found.staff_note = "no cell names two staff (with , ; / & + or 'och'); the import stops if a later one does"
        return
    best = next(iter(seps))
    pattern = STAFF_SEPARATORS[best]
    joined = [v for v in distinct if pattern.search(v) and "|" not in v]
    parts = [p.strip() for v in joined for p in v.split(best)]
    alone = sum(p in distinct for p in parts)
    others = f" (also {', '.join(repr(s) for s in list(seps)[1:])} in {sum(list(seps.values())[1:])} value(s): only one separator applies)" if len(seps) > 1 else ""
    if alone:
        found.staff_separator = best  # as the key takes it: ' och ' keeps its spaces (a name may hold 'och')
        found.staff_note = f"{seps[best]} distinct value(s) of {source!r} hold two names separated by {best!r}, and {alone} of their {len(parts)} names also stand alone{others}"
    else:
        found.staff_note = f"{seps[best]} distinct value(s) of {source!r} hold {best!r} between words that never stand alone: one person written 'Surname, First name', or two staff?"
        found.warnings.append(
            f"{source!r}: decide what {best!r} means (staff_separator: {best!r} for two staff, staff_separator: '|' for one person); without it the import stops"
        )


# -- personal data, ids, completeness -------------------------------------------------------------------


def _identity_numbers(found: Inspection, frame: pd.DataFrame) -> None:
    """Columns holding identity numbers, how many cells and in which written forms (masked: digits as N)."""
    for header in frame.columns:
        values = _text(frame[header])
        hit = find_personnummer(values)
        if not hit.any():
            continue
        forms = Counter(re.sub(r"\d", "N", v.strip()) if mask_numbers(v) != v and plain_form(v) is not None else "in text" for v in values[hit])
        targets = found.columns.get(str(header), [])
        fate = (
            "pseudonymised at import (every written form of one number is one person)" if set(targets) & set(PSEUDONYMISED)
            else "not imported (unmapped)" if not targets
            else "rows with one are REJECTED: never stored in clear"
        )  # fmt: skip
        found.identity_numbers[str(header)] = f"{int(hit.sum()):,} of {int(values.notna().sum()):,} cells, written {', '.join(f'{f} ({n})' for f, n in forms.most_common())}; {fate}"


def _float_ids(found: Inspection, cells: dict[str, pd.Series]) -> None:
    for column in ID_COLUMNS:
        if column in cells:
            values = cells[column].dropna()
            if len(values) and values.map(lambda v: bool(_FLOAT_ID.fullmatch(v))).all():
                found.warnings.append(
                    f"{found.source_of(column)!r} holds whole numbers written as decimals (1661.0): ids are compared as written, so a file writing them 1661 names other {column}s"
                )


def _completeness(found: Inspection) -> None:
    """Required columns the file lacks, and what a visit needs besides (a length; registered times for performed)."""
    have = {c for targets in found.columns.values() for c in targets}
    for column in REQUIRED[found.kind]:
        if column not in have and not (column == "provider" and found.kind == "visits"):
            found.warnings.append(f"no column recognised as {column} (required): map the file's column under columns:")
    if found.kind != "visits":
        return
    if "planned_start" not in have and any(normal(h) in ("datum", "date", "besöksdatum") for h in found.headers):
        found.warnings.append("the date and the time seem to be in separate columns: the import reads a start as one cell (2024-09-02 08:00); join them in the export")
    if "provider" not in have:
        found.warnings.append("no provider column: set default_provider: (the provider of every row) or map the column under columns:")
    if not have & {"planned_end", "planned_duration"}:
        found.warnings.append("no planned end or length (planned_end, planned_duration): a visit's planned length is then taken from its registered times; planned-only rows are quarantined")
    if "actual_start" in have and not have & {"actual_end", "actual_duration"}:
        found.warnings.append("registered starts without a registered end or length (actual_end, actual_duration): performed rows would be quarantined")
    if not have & {"actual_start", "actual_end", "actual_duration"}:
        found.warnings.append("no registered times: rows import as planned; if this export is what was performed, add performed_as_planned: true")


def _check_sample(found: Inspection, cells: dict[str, pd.Series]) -> None:
    """Read the sample's dates, times and durations with the proposed mapping; say how many cells it cannot read."""
    try:
        mapping = found.mapping()
    except Exception as e:  # noqa: BLE001 - a proposal that does not load is a bug here, said plainly
        found.warnings.append(f"the proposed mapping does not load: {e}")
        return
    for column in (*TIME_COLUMNS, *DATE_COLUMNS):
        if column in cells and cells[column].notna().any():
            _, bad, _ = parse_local_times(cells[column], mapping)
            _count_bad(found, column, bad, "dates or times")
    for column, (unit, _) in found.units.items():
        if column in cells and cells[column].notna().any():
            _, bad = parse_minutes(cells[column], unit, mapping.decimal or found.decimal)
            _count_bad(found, column, bad, f"durations in {unit}")


def _count_bad(found: Inspection, column: str, bad: np.ndarray, what: str) -> None:
    if bad.any():
        found.warnings.append(f"{int(bad.sum()):,} cells of {found.source_of(column)!r} cannot be read as {what} with this mapping (first at data row {int(np.flatnonzero(bad)[0]) + 1}): their rows would be quarantined")
