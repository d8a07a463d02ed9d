"""Importing providers (``--kind providers``), and providers a visits file registers with ``ownership``.

A provider is its code, name, ownership (``municipal`` | ``private``: which rates apply) and
teams. A provider file has one row per provider (columns: ``mapping.PROVIDER_COLUMNS``); a
visits mapping may give ``ownership`` (a column, or ``defaults: {ownership: municipal}``),
which registers each provider the first time its visits name it (name: its code; teams: the
teams its first rows name). Imports are idempotent: a provider already in the store is left
as it is, and a row that would change it (another name, ownership or teams) is quarantined —
the store has no event that changes a provider. Every column is screened: a code, name, team
or area holding an identity number is rejected, never stored (docs/personal-data.md).

A provider row without ``recorded_at`` is taken as known from the start of every history
(``KNOWN_FROM``), so an ``--as-of`` replay of an earlier date still sees its ownership.
"""

from __future__ import annotations

import json
from dataclasses import dataclass

import numpy as np
import pandas as pd

from ersattning import projection
from ersattning.domain import Area, Ownership, Provider, stable_id
from ersattning.ingest.cells import mapped_values, outside_window, parse_times, text_column, window_reason
from ersattning.ingest.mapping import PROVIDER_REQUIRED, Mapping
from ersattning.ingest.options import DEFAULT_OPTIONS, ImportOptions
from ersattning.ingest.readers import Chunk
from ersattning.ingest.report import ImportReport, Quarantine
from ersattning.ingest.rows import append_chunks, finish_rows, first_reasons, reject_numbers, start_frame
from ersattning.ingest.strict import Paths, checked_first
from ersattning.privacy import Pseudonymiser
from ersattning.store import Store
from ersattning.store.bulk import EventBatch, encoder_for

KNOWN_FROM = np.datetime64("1970-01-01T00:00:00", "s")
"""When a provider without ``recorded_at`` is recorded: before every history, so as-of replays see it."""
TEAM_SEPARATOR = "|"
OWNERSHIPS = tuple(o.value for o in Ownership)


@dataclass(frozen=True)
class ProviderFacts:
    """What the store holds about one provider."""

    name: str
    ownership: str
    teams: tuple[str, ...]


class ProviderRegistry:
    """The providers the store holds, and those this import registers (each once)."""

    def __init__(self, known: dict[str, ProviderFacts]) -> None:
        self.known = known
        self._new: list[tuple[str, ProviderFacts, np.datetime64]] = []

    @classmethod
    def from_store(cls, store: Store) -> ProviderRegistry:
        ev = projection.update(store).entity_events
        part = ev[ev["event"] == "Provider.Registered"] if len(ev) else ev
        known: dict[str, ProviderFacts] = {}
        for text in part["fields"].tolist() if len(part) else []:
            f = json.loads(text)
            known[str(f["code"])] = ProviderFacts(str(f["name"]), str(f["ownership"]), tuple(str(t) for t in f.get("teams") or ()))
        return cls(known)

    def add(self, code: str, facts: ProviderFacts, recorded: np.datetime64, *, compare_all: bool = True) -> str | None:
        """Register ``code`` unless it is known; the reason a row is rejected (it would change a known provider), else None.

        ``compare_all``: name and teams must match too (a providers file); else ownership only (a visits file).
        """
        was = self.known.get(code)
        if was is None:
            self.known[code] = facts
            self._new.append((code, facts, KNOWN_FROM if np.isnat(recorded) else recorded))
            return None
        if was.ownership != facts.ownership:
            return "ownership differs from the provider's registered ownership (an import cannot change a provider)"
        if compare_all and (was.name, was.teams) != (facts.name, facts.teams):
            return "name or teams differ from the provider already registered (an import cannot change a provider)"
        return None

    def take(self, batch: EventBatch) -> int:
        """Add the providers registered since the last call to ``batch``; how many."""
        new, self._new = self._new, []
        if not new:
            return 0
        batch.add(
            encoder_for(Provider.Registered),
            np.array([stable_id("provider", code).hex for code, _, _ in new], dtype="S32"),
            1,
            {
                "timestamp": np.array([at for _, _, at in new], dtype="datetime64[s]"),
                "code": np.array([code for code, _, _ in new], dtype=object),
                "name": np.array([f.name for _, f, _ in new], dtype=object),
                "ownership": np.array([f.ownership for _, f, _ in new], dtype=object),
                "teams": pd.Series([f.teams for _, f, _ in new], dtype=object),
            },
        )
        return len(new)

    def from_visits(self, ownership: pd.Series, provider: pd.Series, team: pd.Series, rows: np.ndarray) -> np.ndarray:
        """Register the providers of visit ``rows`` by their ownership (mapped values); each row's reason to be
        rejected (None where it is fine). Per distinct (provider, ownership), never per row."""
        reason = np.full(len(ownership), None, dtype=object)
        given = rows & ownership.notna().to_numpy() & provider.notna().to_numpy()
        bad = given & ~ownership.isin(OWNERSHIPS).to_numpy()
        reason[bad] = f"ownership not one of {', '.join(OWNERSHIPS)} (map the source's values under values: ownership)"
        ok = np.flatnonzero(given & ~bad)
        if not len(ok):
            return reason
        pairs = pd.DataFrame({"provider": provider.to_numpy(dtype=object)[ok], "ownership": ownership.to_numpy(dtype=object)[ok], "team": team.to_numpy(dtype=object)[ok]})
        teams = pairs.dropna(subset=["team"]).groupby("provider", sort=False)["team"].unique()
        verdict: dict[tuple[str, str], str | None] = {}
        for code, own in pairs[["provider", "ownership"]].drop_duplicates().itertuples(index=False):
            if code in teams.index:
                found = tuple(sorted(str(t) for t in teams[code]))
            else:
                found = ()
            verdict[(code, own)] = self.add(code, ProviderFacts(code, own, found), KNOWN_FROM, compare_all=False)
        keys = list(zip(pairs["provider"], pairs["ownership"], strict=True))
        reason[ok] = np.array([verdict[k] for k in keys], dtype=object)
        return reason


def import_providers(store: Store, paths: Paths, mapping: Mapping, pseudonymiser: Pseudonymiser, options: ImportOptions = DEFAULT_OPTIONS) -> ImportReport:
    """Import provider rows; see the module docstring (``pseudonymiser`` is not used: providers are not people)."""
    return checked_first(_providers, store, paths, mapping, pseudonymiser, options)


def _providers(store: Store, paths: list[str], mapping: Mapping, pseudonymiser: Pseudonymiser, options: ImportOptions) -> ImportReport:
    report = ImportReport()
    registry = ProviderRegistry.from_store(store)
    q = Quarantine(options.quarantine)

    def batch_of(chunk: Chunk) -> EventBatch:
        frame = start_frame(chunk, mapping, PROVIDER_REQUIRED, report)
        reason, reject = first_reasons(len(frame))

        cells = {c: text_column(frame, c) for c in ("code", "name", "ownership", "teams", "area")}
        for column, table in mapping.values.items():
            if column in cells:
                cells[column] = mapped_values(cells[column], table)
        for c in PROVIDER_REQUIRED:
            reject(cells[c].isna().to_numpy(), f"{c} missing")
        reject(cells["ownership"].notna().to_numpy() & ~cells["ownership"].isin(OWNERSHIPS).to_numpy(), f"ownership not one of {', '.join(OWNERSHIPS)}")
        areas = [a.value for a in Area]
        reject(cells["area"].notna().to_numpy() & ~cells["area"].isin(areas).to_numpy(), f"area not one of {', '.join(areas)}")
        reject_numbers(cells, ("code", "name", "teams", "area"), reject)
        recorded, bad = parse_times(text_column(frame, "recorded_at"), mapping)
        reject(outside_window(recorded), window_reason("recorded_at"))
        reject(bad, "recorded_at is not a date and time")
        for i in np.flatnonzero(reason == None).tolist():  # noqa: E711  (a providers file is short)
            team_text = cells["teams"].iloc[i]
            teams = tuple(dict.fromkeys(t.strip() for t in team_text.split(TEAM_SEPARATOR) if t.strip())) if team_text else ()
            facts = ProviderFacts(cells["name"].iloc[i], cells["ownership"].iloc[i], teams)
            before = len(registry.known)
            reason[i] = registry.add(cells["code"].iloc[i], facts, recorded[i])
            if reason[i] is None:
                if len(registry.known) > before:
                    report.rows_imported += 1
                else:
                    report.rows_unchanged += 1
        finish_rows(chunk, reason, q, report, options.strict)
        batch = EventBatch.empty()
        registry.take(batch)
        return batch

    return append_chunks(store, paths, mapping, options, report, q, batch_of)

