"""The naive baseline: aggregates built by method calls, one save each, read back event by event.

This is how the library is used out of the box; the benchmarks measure the
bulk paths against it on a sample in the same run.
"""

from __future__ import annotations

from typing import Any

from ersattning.domain import Provider, Recipient, Visit
from ersattning.store.application import ServiceHistory


def rebuild_by_method_calls(events_by_aggregate: dict[Any, list[Any]]) -> list[Any]:
    """Re-create every aggregate from its recorded events by calling its command methods."""
    aggregates = []
    for events in events_by_aggregate.values():
        first = events[0]
        if isinstance(first, Provider.Registered):
            agg = Provider.register(code=first.code, name=first.name, ownership=first.ownership, teams=first.teams, recorded_at=first.recorded_at)
        elif isinstance(first, Recipient.Enrolled):
            agg = Recipient.enrol(pseudonym=first.pseudonym, birth_year=first.birth_year, area=first.area, enrolled_on=first.enrolled_on, recorded_at=first.recorded_at)
        else:
            # synthetic visit ids are seeded random UUIDs, so create with the given id; an imported
            # visit may start with its plan and outcome in one event (PlannedAndPerformed/-Cancelled)
            fields = {k: v for k, v in first.__dict__.items() if k not in ("originator_id", "originator_version", "timestamp", "originator_topic")}
            agg = Visit._create(type(first), id=first.originator_id, timestamp=first.recorded_at, **fields)
        assert agg.id == first.originator_id
        for e in events[1:]:
            _call(agg, e)
        aggregates.append(agg)
    return aggregates


def _call(agg: Any, e: Any) -> None:
    t = e.recorded_at
    match type(e).__qualname__:
        case "Recipient.ProviderChosen":
            agg.choose_provider(e.provider, e.chosen_on, t)
        case "Recipient.DecisionGranted":
            agg.grant(decision_id=e.decision_id, category=e.category, granted_minutes=e.granted_minutes, per=e.per, valid_from=e.valid_from, valid_to=e.valid_to, recorded_at=t)
        case "Recipient.DecisionRevised":
            agg.revise(decision_id=e.decision_id, granted_minutes=e.granted_minutes, valid_from=e.valid_from, recorded_at=t)
        case "Recipient.DecisionEnded":
            agg.end_decision(decision_id=e.decision_id, ended_on=e.ended_on, recorded_at=t)
        case "Recipient.StayStarted":
            agg.start_stay(stay_id=e.stay_id, kind=e.kind, start=e.start, recorded_at=t)
        case "Recipient.StayEnded":
            agg.end_stay(stay_id=e.stay_id, end=e.end, recorded_at=t)
        case "Recipient.Departed":
            agg.depart(departed_on=e.departed_on, reason=e.reason, recorded_at=t)
        case "Visit.Performed":
            agg.perform(actual_start=e.actual_start, actual_end=e.actual_end, staff=e.staff, registration=e.registration, recorded_at=t)
        case "Visit.Cancelled":
            agg.cancel(by=e.by, reason=e.reason, cancelled_at=e.cancelled_at, recorded_at=t)
        case "Visit.Corrected":
            agg.correct(actual_start=e.actual_start, actual_end=e.actual_end, reason=e.reason, recorded_at=t)
        case other:
            raise ValueError(f"no command for {other}")


def save_one_by_one(app: ServiceHistory, aggregates: list[Any]) -> int:
    n = 0
    for agg in aggregates:
        n += len(agg.pending_events)
        app.save(agg)
    return n


def read_event_by_event(app: ServiceHistory, page: int = 1000) -> int:
    n, start = 0, 1
    while True:
        notes = app.recorder.select_notifications(start, page)
        for note in notes:
            app.mapper.to_domain_event(note)
            n += 1
        if len(notes) < page:
            return n
        start = notes[-1].id + 1
