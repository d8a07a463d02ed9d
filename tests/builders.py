"""Small service histories built by the aggregates' own command methods, for golden tests."""

from __future__ import annotations

from datetime import date, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from ersattning import projection
from ersattning.context import SettlementContext, build_context
from ersattning.domain import (
    Area,
    CancelledBy,
    CancelReason,
    Category,
    Ownership,
    Per,
    Provider,
    Recipient,
    Registration,
    StayKind,
    Visit,
)
from ersattning.store import Store, open_store

STOCKHOLM = ZoneInfo("Europe/Stockholm")


def local(text: str) -> datetime:
    """'2024-03-04 10:00' as Stockholm time."""
    return datetime.fromisoformat(text).replace(tzinfo=STOCKHOLM)


class History:
    def __init__(self, store: Store | None = None) -> None:
        self.store = store or open_store("memory://")
        self.pending: dict = {}
        self.t0 = local("2023-12-01 09:00")

    def _keep(self, agg: Any) -> Any:
        self.pending[agg.id] = agg
        return agg

    def provider(self, code: str = "P1", ownership: str = "private", teams: tuple[str, ...] = ("T1",)) -> Provider:
        return self._keep(Provider.register(code=code, name=f"Utförare {code}", ownership=Ownership(ownership), teams=teams, recorded_at=self.t0))

    def recipient(self, pseudonym: str, *, provider: str = "P1", enrolled_on: date = date(2023, 6, 1), birth_year: int = 1940, area: str = "urban") -> Recipient:
        r = Recipient.enrol(pseudonym=pseudonym, birth_year=birth_year, area=Area(area), enrolled_on=enrolled_on, recorded_at=datetime.combine(enrolled_on, datetime.min.time(), STOCKHOLM))
        r.choose_provider(provider, enrolled_on, datetime.combine(enrolled_on, datetime.min.time(), STOCKHOLM))
        return self._keep(r)

    def grant(self, r: Recipient, category: str, minutes: int, *, per: str = "month", valid_from: date = date(2023, 6, 1), valid_to: date | None = None, decision_id: str | None = None) -> None:
        r.grant(decision_id=decision_id or f"{r.pseudonym}-{category}", category=Category(category), granted_minutes=minutes, per=Per(per), valid_from=valid_from, valid_to=valid_to, recorded_at=datetime.combine(valid_from, datetime.min.time(), STOCKHOLM))

    def stay(self, r: Recipient, start: date, end: date, kind: str = "hospital") -> None:
        sid = f"{r.pseudonym}-stay-{start}"
        r.start_stay(stay_id=sid, kind=StayKind(kind), start=start, recorded_at=datetime.combine(start, datetime.min.time(), STOCKHOLM))
        r.end_stay(stay_id=sid, end=end, recorded_at=datetime.combine(end, datetime.min.time(), STOCKHOLM))

    def visit(self, r: Recipient, key: str, category: str, start: str, minutes: int, *, provider: str = "P1", team: str = "T1", staff_planned: int = 1) -> Visit:
        when = local(start)
        return self._keep(Visit.plan(key=key, recipient_id=r.id, provider=provider, team=team, category=Category(category), planned_start=when, planned_minutes=minutes, staff_planned=staff_planned, recorded_at=when - timedelta(days=7)))

    def performed(self, r: Recipient, key: str, category: str, start: str, minutes: float, *, staff: tuple[str, ...] = ("s1",), provider: str = "P1", team: str = "T1") -> Visit:
        v = self.visit(r, key, category, start, int(round(minutes)) or 1, provider=provider, team=team, staff_planned=len(staff))
        begin = local(start)
        v.perform(actual_start=begin, actual_end=begin + timedelta(minutes=minutes), staff=staff, registration=Registration.mobile, recorded_at=begin + timedelta(minutes=minutes + 1))
        return v

    def cancelled(self, r: Recipient, key: str, category: str, start: str, minutes: int, *, by: str = "recipient", reason: str = "declined", notice_hours: float = 2) -> Visit:
        v = self.visit(r, key, category, start, minutes)
        at = local(start) - timedelta(hours=notice_hours)
        v.cancel(by=CancelledBy(by), reason=CancelReason(reason), cancelled_at=at, recorded_at=at)
        return v

    def context(self, start: str = "2024-01", end: str = "2024-12") -> SettlementContext:
        if self.pending:
            self.store.app.save(*self.pending.values())
            self.pending = {}
        return build_context(projection.load(self.store), start, end)
