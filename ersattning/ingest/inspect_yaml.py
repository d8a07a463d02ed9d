"""An :class:`~ersattning.ingest.inspect.Inspection` as text: the report ``ersattning inspect`` prints and
the mapping YAML it writes, every key with a comment saying what it does and why it has its value.

Strings are written as JSON strings (valid YAML, any character); values a user's file supplies pass
through ``mask_numbers``, so no identity number reaches the screen or the mapping file in clear.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import TYPE_CHECKING

from ersattning.ingest.mapping import KIND_COLUMNS
from ersattning.privacy import mask_numbers

if TYPE_CHECKING:
    from ersattning.ingest.inspect import Inspection


def _q(text: str) -> str:
    """A YAML scalar for any text (a JSON string), identity numbers masked."""
    return json.dumps(mask_numbers(str(text)), ensure_ascii=False)


def _comment(text: str) -> str:
    return mask_numbers(text).replace("\n", " ")


def _sample_said(found: Inspection) -> str:
    return f"{found.rows_seen:,} rows (the whole file)" if found.whole_file else f"its first {found.rows_seen:,} rows"


def mapping_yaml(found: Inspection) -> str:
    """The proposed mapping, every key commented (docs/mapping.md)."""
    name = Path(found.path).name
    out = [
        f"# Mapping for {name} (--kind {found.kind}), proposed by `ersattning inspect` from {_sample_said(found)}.",
        "# Every key is described in docs/mapping.md; `ersattning schema --mapping` prints them as JSON Schema.",
        f"# Import with: ersattning import {name} --kind {found.kind} --mapping THIS_FILE",
        "",
    ]
    out += _file_keys(found)
    out += _column_keys(found)
    out += _value_keys(found)
    out += _unit_keys(found)
    out += _staff_keys(found)
    out += _skip_keys(found)
    if found.defaults:
        out.append("# values for rows (or a whole file) without them")
        out.append("defaults:")
        out += [f"  {c}: {_q(v)}  # {_comment(why)}" for c, (v, why) in found.defaults.items()]
    return "\n".join(out) + "\n"


def _file_keys(found: Inspection) -> list[str]:
    out = []
    if found.file_type == "csv":
        out += [f"# the file's text encoding: {found.encoding_note}", f"encoding: {found.encoding}"]
        out += ["# the column separator, found in the file's first lines", f"delimiter: {_q(found.delimiter or ',')}"]
    out += [f"# the decimal mark of durations and granted time: {_comment(found.decimal_note or 'numbers in this file type use a point')}", f"decimal: {_q(found.decimal)}"]
    out += ["# local times without a UTC offset are in this zone (summer time included)", "timezone: Europe/Stockholm"]
    if found.date_format:
        out += [f"# dates and times: {_comment(found.date_note)}", f"date_format: {_q(found.date_format)}"]
    elif found.date_note:
        out.append(f"# date_format: not set: {_comment(found.date_note)}")
    return [*out, ""]


def _column_keys(found: Inspection) -> list[str]:
    described = KIND_COLUMNS[found.kind]
    out = ["# the file's column → the canonical column it is imported as (a list: the same cells in each)", "columns:"]
    for source, targets in found.columns.items():
        target = targets[0] if len(targets) == 1 else "[" + ", ".join(targets) + "]"
        said = described.get(targets[0], "")
        if targets[0] in ("staff", "resource"):
            said = "staff ids (pseudonymised at import); two in one cell are split by staff_separator"
        out.append(f"  {_q(source)}: {target}  # {_comment(said)}")
    if not found.columns:
        out[-1] = "columns: {}  # no header recognised: map the columns by hand"
    if found.unmapped:
        out.append(f"# not imported (no canonical column known for them): {', '.join(_q(u) for u in found.unmapped)}")
    return [*out, ""]


def _value_keys(found: Inspection) -> list[str]:
    out = []
    if found.values:
        out += ["# the file's values → canonical values", "values:"]
        for column, table in found.values.items():
            out.append(f"  {column}:  # {_comment(KIND_COLUMNS[found.kind].get(column, ''))}")
            out += [f"    {_q(v)}: {c}" for v, c in table.items()]
    for column, unknown in found.unknown_values.items():
        out.append(f"# {column}: values not recognised, rows holding them are quarantined until they are mapped under values: {column}: {', '.join(_q(v) for v in unknown)}")
    return [*out, ""] if out else []


def _unit_keys(found: Inspection) -> list[str]:
    if not found.units:
        return []
    out = ["# the unit of each duration: minutes | decimal_hours | h:mm", "units:"]
    out += [f"  {column}: {unit}  # {_comment(why)}" for column, (unit, why) in found.units.items()]
    return [*out, ""]


def _staff_keys(found: Inspection) -> list[str]:
    if not found.staff_note:
        return []
    if found.staff_separator is None:
        return [f"# staff_separator: not set: {_comment(found.staff_note)}", ""]
    return [f"# two staff in one cell: {_comment(found.staff_note)}", f"staff_separator: {_q(found.staff_separator)}", ""]


def _skip_keys(found: Inspection) -> list[str]:
    if not found.skip:
        return []
    out = ["# rows that are not visits: skipped and counted by reason in the import's summary", "skip:"]
    for column, values, reason in found.skip:
        out.append(f"  - {{column: {_q(column)}, one_of: [{', '.join(_q(v) for v in values)}], reason: {_q(reason)}}}")
    return [*out, ""]


def report_lines(found: Inspection) -> list[str]:
    """What ``ersattning inspect`` prints: the file, each column's fate, values, units, identity numbers (masked), warnings."""
    head = f"{found.path}: {found.kind}" + (f" ({found.kind_note})" if found.kind_note else "") + f", {_sample_said(found)} read"
    out = [head]
    if found.file_type == "csv":
        out += [f"  encoding   {found.encoding} — {found.encoding_note}", f"  delimiter  {found.delimiter!r}"]
    out.append(f"  decimal    {found.decimal!r} — {found.decimal_note or 'numbers in this file type use a point'}")
    if found.date_note or found.date_format:
        out.append(f"  dates      {found.date_format or 'ISO 8601'} — {found.date_note}")
    if found.staff_note:
        out.append(f"  staff      {found.staff_separator!r} — {found.staff_note}" if found.staff_separator else f"  staff      (no separator) — {found.staff_note}")
    width = max((len(h) for h in found.headers), default=0)
    out.append("columns")
    for header in found.headers:
        targets = found.columns.get(header)
        out.append(f"  {header:<{width}}  → {', '.join(targets)}" if targets else f"  {header:<{width}}    (not imported: no canonical column known)")
    if found.values or found.unknown_values:
        out.append("values")
        out += [f"  {c}: " + ", ".join(f"{v} → {t}" for v, t in table.items()) for c, table in found.values.items()]
        out += [f"  {c}: NOT RECOGNISED {', '.join(vs)} (rows holding them would be quarantined: map them under values: {c})" for c, vs in found.unknown_values.items()]
    if found.units:
        out.append("units")
        out += [f"  {c}: {u} — {why}" for c, (u, why) in found.units.items()]
    if found.defaults:
        out.append("defaults")
        out += [f"  {c}: {v} — {why}" for c, (v, why) in found.defaults.items()]
    if found.skip:
        out.append("skip")
        out += [f"  {col} one of {', '.join(vs)} — {why}" for col, vs, why in found.skip]
    if found.identity_numbers:
        out.append("identity numbers (shown masked: N is a digit)")
        out += [f"  {c}: {what}" for c, what in found.identity_numbers.items()]
    if found.warnings:
        out.append("check")
        out += [f"  ! {w}" for w in found.warnings]
    return [mask_numbers(line) for line in out]
