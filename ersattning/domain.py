"""Service-history aggregates and their events (docs/events.md).

Every event carries its *domain* times (when it happened in care) as explicit
fields. Its *recorded* time (when the source system knew it) is the library's
own event ``timestamp``, which every command method here sets explicitly from a
``recorded_at`` argument and every event exposes as ``recorded_at``; nothing
takes the wall clock. Domain datetimes are timezone-aware; ids of people are
pseudonyms (hex strings), never personal identity numbers.
"""

from __future__ import annotations

from datetime import date, datetime
from enum import StrEnum
from typing import Any
from uuid import NAMESPACE_URL, UUID, uuid5

from eventsourcing.domain import Aggregate

#: Namespace for every deterministic id in a store (uuid5 of a source key).
ID_NAMESPACE = uuid5(NAMESPACE_URL, "https://ersattning.se/ids")
#: The longest visit a plan or a registration may have (docs/events.md): longer is a unit mistake (hours
#: read as minutes), and the projection holds planned minutes in 16 bits.
MAX_VISIT_MINUTES = 16 * 60


def stable_id(kind: str, key: str) -> UUID:
    """Deterministic aggregate id from a source key, so re-imports add nothing."""
    return uuid5(ID_NAMESPACE, f"{kind}:{key}")


class Category(StrEnum):
    """Kind of service (insats). ``group`` decides which hourly rate applies."""

    personal_care = "personal_care"
    cleaning = "cleaning"
    laundry = "laundry"
    shopping = "shopping"
    escort = "escort"
    other_service = "other_service"

    @property
    def group(self) -> str:
        return "personal_care" if self is Category.personal_care else "service"


class Ownership(StrEnum):
    municipal = "municipal"
    private = "private"


class Area(StrEnum):
    urban = "urban"
    rural = "rural"


class Per(StrEnum):
    """Unit of a decision's granted time."""

    month = "month"
    week = "week"


class StayKind(StrEnum):
    hospital = "hospital"
    short_term = "short_term"


class Registration(StrEnum):
    """How the performed time was registered."""

    mobile = "mobile"
    nfc = "nfc"
    manual = "manual"


class CancelledBy(StrEnum):
    recipient = "recipient"
    provider = "provider"


class CancelReason(StrEnum):
    declined = "declined"  # recipient did not want the visit
    away = "away"  # recipient away (visiting family, day care ...)
    stay = "stay"  # hospital or short-term stay
    staffing = "staffing"  # provider could not staff the visit
    other = "other"


class DepartureReason(StrEnum):
    deceased = "deceased"
    nursing_home = "nursing_home"
    moved = "moved"
    other = "other"


ENUMS: tuple[type[StrEnum], ...] = (
    Category,
    Ownership,
    Area,
    Per,
    StayKind,
    Registration,
    CancelledBy,
    CancelReason,
    DepartureReason,
)


class DomainError(ValueError):
    """A command that would break an aggregate's rules."""


def _require_aware(name: str, value: datetime) -> None:
    if value.tzinfo is None or value.utcoffset() is None:
        raise DomainError(f"{name} must be timezone-aware, got {value!r}")


class Recorded:
    """Mixin: an event's recorded time is the library's ``timestamp``."""

    timestamp: datetime

    @property
    def recorded_at(self) -> datetime:
        return self.timestamp


class Created(Recorded, Aggregate.Created):
    pass


class Event(Recorded, Aggregate.Event):
    pass


class Provider(Aggregate):
    """A care provider (utförare) in the choice system, with its staff teams."""

    class Registered(Created):
        code: str
        name: str
        ownership: Ownership
        teams: tuple[str, ...]

    @classmethod
    def register(
        cls,
        *,
        code: str,
        name: str,
        ownership: Ownership,
        teams: tuple[str, ...],
        recorded_at: datetime,
    ) -> Provider:
        _require_aware("recorded_at", recorded_at)
        return cls._create(
            cls.Registered,
            id=stable_id("provider", code),
            timestamp=recorded_at,
            code=code,
            name=name,
            ownership=Ownership(ownership),
            teams=tuple(teams),
        )

    def __init__(
        self,
        *,
        code: str,
        name: str,
        ownership: Ownership,
        teams: tuple[str, ...],
    ) -> None:
        self.code = code
        self.name = name
        self.ownership = ownership
        self.teams = teams


class Recipient(Aggregate):
    """A person receiving home care: enrolment, provider choice, decisions, stays."""

    class Enrolled(Created):
        pseudonym: str
        birth_year: int
        area: Area
        enrolled_on: date

    class ProviderChosen(Event):
        provider: str
        chosen_on: date

        def apply(self, aggregate: Recipient) -> None:
            aggregate.provider = self.provider

    class DecisionGranted(Event):
        decision_id: str
        category: Category
        granted_minutes: int
        per: Per
        valid_from: date
        valid_to: date | None

        def apply(self, aggregate: Recipient) -> None:
            aggregate.decisions[self.decision_id] = self.granted_minutes

    class DecisionRevised(Event):
        decision_id: str
        granted_minutes: int
        valid_from: date

        def apply(self, aggregate: Recipient) -> None:
            aggregate.decisions[self.decision_id] = self.granted_minutes

    class DecisionEnded(Event):
        decision_id: str
        ended_on: date

        def apply(self, aggregate: Recipient) -> None:
            del aggregate.decisions[self.decision_id]

    class StayStarted(Event):
        stay_id: str
        kind: StayKind
        start: date

        def apply(self, aggregate: Recipient) -> None:
            aggregate.open_stay = self.stay_id

    class StayEnded(Event):
        stay_id: str
        end: date

        def apply(self, aggregate: Recipient) -> None:
            aggregate.open_stay = None

    class Departed(Event):
        departed_on: date
        reason: DepartureReason

        def apply(self, aggregate: Recipient) -> None:
            aggregate.departed_on = self.departed_on

    def __init__(
        self,
        *,
        pseudonym: str,
        birth_year: int,
        area: Area,
        enrolled_on: date,
    ) -> None:
        self.pseudonym = pseudonym
        self.birth_year = birth_year
        self.area = area
        self.enrolled_on = enrolled_on
        self.provider: str | None = None
        self.decisions: dict[str, int] = {}
        self.open_stay: str | None = None
        self.departed_on: date | None = None

    @classmethod
    def enrol(
        cls,
        *,
        pseudonym: str,
        birth_year: int,
        area: Area,
        enrolled_on: date,
        recorded_at: datetime,
    ) -> Recipient:
        _require_aware("recorded_at", recorded_at)
        return cls._create(
            cls.Enrolled,
            id=stable_id("recipient", pseudonym),
            timestamp=recorded_at,
            pseudonym=pseudonym,
            birth_year=birth_year,
            area=Area(area),
            enrolled_on=enrolled_on,
        )

    def _trigger(self, event_class: type[Event], recorded_at: datetime, **kw: Any) -> None:
        _require_aware("recorded_at", recorded_at)
        if self.departed_on is not None:
            raise DomainError(f"recipient {self.pseudonym} has departed")
        self.trigger_event(event_class, timestamp=recorded_at, **kw)

    def choose_provider(self, provider: str, chosen_on: date, recorded_at: datetime) -> None:
        self._trigger(self.ProviderChosen, recorded_at, provider=provider, chosen_on=chosen_on)

    def grant(
        self,
        *,
        decision_id: str,
        category: Category,
        granted_minutes: int,
        per: Per,
        valid_from: date,
        valid_to: date | None,
        recorded_at: datetime,
    ) -> None:
        if decision_id in self.decisions:
            raise DomainError(f"decision {decision_id} already granted")
        if granted_minutes < 0:
            raise DomainError("granted_minutes must be >= 0")
        if valid_to is not None and valid_to < valid_from:
            raise DomainError("decision ends before it starts")
        self._trigger(
            self.DecisionGranted,
            recorded_at,
            decision_id=decision_id,
            category=Category(category),
            granted_minutes=int(granted_minutes),
            per=Per(per),
            valid_from=valid_from,
            valid_to=valid_to,
        )

    def revise(self, *, decision_id: str, granted_minutes: int, valid_from: date, recorded_at: datetime) -> None:
        if decision_id not in self.decisions:
            raise DomainError(f"no open decision {decision_id}")
        self._trigger(
            self.DecisionRevised,
            recorded_at,
            decision_id=decision_id,
            granted_minutes=int(granted_minutes),
            valid_from=valid_from,
        )

    def end_decision(self, *, decision_id: str, ended_on: date, recorded_at: datetime) -> None:
        if decision_id not in self.decisions:
            raise DomainError(f"no open decision {decision_id}")
        self._trigger(self.DecisionEnded, recorded_at, decision_id=decision_id, ended_on=ended_on)

    def start_stay(self, *, stay_id: str, kind: StayKind, start: date, recorded_at: datetime) -> None:
        if self.open_stay is not None:
            raise DomainError(f"stay {self.open_stay} is still open")
        self._trigger(self.StayStarted, recorded_at, stay_id=stay_id, kind=StayKind(kind), start=start)

    def end_stay(self, *, stay_id: str, end: date, recorded_at: datetime) -> None:
        if self.open_stay != stay_id:
            raise DomainError(f"stay {stay_id} is not open")
        self._trigger(self.StayEnded, recorded_at, stay_id=stay_id, end=end)

    def depart(self, *, departed_on: date, reason: DepartureReason, recorded_at: datetime) -> None:
        self._trigger(self.Departed, recorded_at, departed_on=departed_on, reason=DepartureReason(reason))


class Visit(Aggregate):
    """One planned home-care visit and what became of it."""

    class Planned(Created):
        """Version 2 added ``staff_planned`` (double staffing); v1 meant one staff."""

        class_version = 2

        recipient_id: UUID
        provider: str
        team: str
        category: Category
        planned_start: datetime
        planned_minutes: int
        staff_planned: int

        @staticmethod
        def upcast_v1_v2(state: dict[str, Any]) -> None:
            state["staff_planned"] = 1

    class Performed(Event):
        actual_start: datetime
        actual_end: datetime
        staff: tuple[str, ...]
        registration: Registration

        def apply(self, aggregate: Visit) -> None:
            aggregate.status = "performed"
            aggregate.actual = (self.actual_start, self.actual_end)

    class Cancelled(Event):
        by: CancelledBy
        reason: CancelReason
        cancelled_at: datetime

        def apply(self, aggregate: Visit) -> None:
            aggregate.status = "cancelled"

    class Corrected(Event):
        actual_start: datetime
        actual_end: datetime
        reason: str

        def apply(self, aggregate: Visit) -> None:
            aggregate.actual = (self.actual_start, self.actual_end)

    class PlannedAndPerformed(Created):
        """A visit's plan and its performance in one event, for imports of visits already done.

        It folds exactly like ``Planned`` followed by ``Performed``: the event's
        ``timestamp`` is when the plan was recorded, ``performed_recorded_at``
        when the performance was, so an as-of replay between the two still sees
        a visit only planned. One event per imported row instead of two halves
        the appends (see ``ersattning.ingest.visits``).
        """

        recipient_id: UUID
        provider: str
        team: str
        category: Category
        planned_start: datetime
        planned_minutes: int
        staff_planned: int
        actual_start: datetime
        actual_end: datetime
        staff: tuple[str, ...]
        registration: Registration
        performed_recorded_at: datetime

        def apply(self, aggregate: Visit) -> None:
            aggregate.status = "performed"
            aggregate.actual = (self.actual_start, self.actual_end)

    class PlannedAndCancelled(Created):
        """A visit's plan and its cancellation in one event; folds like ``Planned`` then ``Cancelled``
        (``timestamp`` records the plan, ``cancelled_recorded_at`` the cancellation)."""

        recipient_id: UUID
        provider: str
        team: str
        category: Category
        planned_start: datetime
        planned_minutes: int
        staff_planned: int
        by: CancelledBy
        reason: CancelReason
        cancelled_at: datetime
        cancelled_recorded_at: datetime

        def apply(self, aggregate: Visit) -> None:
            aggregate.status = "cancelled"

    def __init__(
        self,
        *,
        recipient_id: UUID,
        provider: str,
        team: str,
        category: Category,
        planned_start: datetime,
        planned_minutes: int,
        staff_planned: int,
    ) -> None:
        self.recipient_id = recipient_id
        self.provider = provider
        self.team = team
        self.category = category
        self.planned_start = planned_start
        self.planned_minutes = planned_minutes
        self.staff_planned = staff_planned
        self.status = "planned"
        self.actual: tuple[datetime, datetime] | None = None

    @classmethod
    def plan(
        cls,
        *,
        key: str,
        recipient_id: UUID,
        provider: str,
        team: str,
        category: Category,
        planned_start: datetime,
        planned_minutes: int,
        staff_planned: int = 1,
        recorded_at: datetime,
    ) -> Visit:
        fields = cls._plan_fields(recipient_id=recipient_id, provider=provider, team=team, category=category, planned_start=planned_start, planned_minutes=planned_minutes, staff_planned=staff_planned, recorded_at=recorded_at)
        return cls._create(cls.Planned, id=stable_id("visit", key), **fields)

    @classmethod
    def _plan_fields(cls, *, recipient_id: UUID, provider: str, team: str, category: Category, planned_start: datetime, planned_minutes: int, staff_planned: int, recorded_at: datetime) -> dict[str, Any]:
        """The checked fields of a plan, shared by ``plan`` and the combined plan-and-outcome events."""
        _require_aware("recorded_at", recorded_at)
        _require_aware("planned_start", planned_start)
        if planned_minutes <= 0:
            raise DomainError("planned_minutes must be > 0")
        if planned_minutes > MAX_VISIT_MINUTES:
            raise DomainError(f"planned_minutes must be at most {MAX_VISIT_MINUTES} (16 hours); got {planned_minutes}")
        if staff_planned < 1:
            raise DomainError("staff_planned must be >= 1")
        return {
            "timestamp": recorded_at,
            "recipient_id": recipient_id,
            "provider": provider,
            "team": team,
            "category": Category(category),
            "planned_start": planned_start,
            "planned_minutes": int(planned_minutes),
            "staff_planned": int(staff_planned),
        }

    @classmethod
    def plan_performed(
        cls,
        *,
        key: str,
        recipient_id: UUID,
        provider: str,
        team: str,
        category: Category,
        planned_start: datetime,
        planned_minutes: int,
        staff_planned: int = 1,
        recorded_at: datetime,
        actual_start: datetime,
        actual_end: datetime,
        staff: tuple[str, ...],
        registration: Registration,
        performed_recorded_at: datetime,
    ) -> Visit:
        """``plan`` and ``perform`` as one event (``PlannedAndPerformed``), with the same checks."""
        fields = cls._plan_fields(recipient_id=recipient_id, provider=provider, team=team, category=category, planned_start=planned_start, planned_minutes=planned_minutes, staff_planned=staff_planned, recorded_at=recorded_at)
        performed = cls._performed_fields(actual_start=actual_start, actual_end=actual_end, staff=staff, registration=registration)
        _require_aware("performed_recorded_at", performed_recorded_at)
        return cls._create(cls.PlannedAndPerformed, id=stable_id("visit", key), **fields, **performed, performed_recorded_at=performed_recorded_at)

    @classmethod
    def plan_cancelled(
        cls,
        *,
        key: str,
        recipient_id: UUID,
        provider: str,
        team: str,
        category: Category,
        planned_start: datetime,
        planned_minutes: int,
        staff_planned: int = 1,
        recorded_at: datetime,
        by: CancelledBy,
        reason: CancelReason,
        cancelled_at: datetime,
        cancelled_recorded_at: datetime,
    ) -> Visit:
        """``plan`` and ``cancel`` as one event (``PlannedAndCancelled``), with the same checks."""
        fields = cls._plan_fields(recipient_id=recipient_id, provider=provider, team=team, category=category, planned_start=planned_start, planned_minutes=planned_minutes, staff_planned=staff_planned, recorded_at=recorded_at)
        cancelled = cls._cancelled_fields(by=by, reason=reason, cancelled_at=cancelled_at)
        _require_aware("cancelled_recorded_at", cancelled_recorded_at)
        return cls._create(cls.PlannedAndCancelled, id=stable_id("visit", key), **fields, **cancelled, cancelled_recorded_at=cancelled_recorded_at)

    @classmethod
    def _performed_fields(cls, *, actual_start: datetime, actual_end: datetime, staff: tuple[str, ...], registration: Registration) -> dict[str, Any]:
        """The checked fields of a performance, shared by ``perform`` and ``plan_performed``."""
        cls._check_times(actual_start, actual_end)
        if not staff:
            raise DomainError("a performed visit needs at least one staff id")
        return {"actual_start": actual_start, "actual_end": actual_end, "staff": tuple(staff), "registration": Registration(registration)}

    @staticmethod
    def _cancelled_fields(*, by: CancelledBy, reason: CancelReason, cancelled_at: datetime) -> dict[str, Any]:
        """The checked fields of a cancellation, shared by ``cancel`` and ``plan_cancelled``."""
        _require_aware("cancelled_at", cancelled_at)
        return {"by": CancelledBy(by), "reason": CancelReason(reason), "cancelled_at": cancelled_at}

    @staticmethod
    def _check_times(start: datetime, end: datetime) -> None:
        _require_aware("actual_start", start)
        _require_aware("actual_end", end)
        if end < start:
            raise DomainError(f"visit ends ({end}) before it starts ({start})")

    def perform(
        self,
        *,
        actual_start: datetime,
        actual_end: datetime,
        staff: tuple[str, ...],
        registration: Registration,
        recorded_at: datetime,
    ) -> None:
        if self.status != "planned":
            raise DomainError(f"visit is already {self.status}")
        fields = self._performed_fields(actual_start=actual_start, actual_end=actual_end, staff=staff, registration=registration)
        _require_aware("recorded_at", recorded_at)
        self.trigger_event(self.Performed, timestamp=recorded_at, **fields)

    def cancel(self, *, by: CancelledBy, reason: CancelReason, cancelled_at: datetime, recorded_at: datetime) -> None:
        if self.status != "planned":
            raise DomainError(f"visit is already {self.status}")
        fields = self._cancelled_fields(by=by, reason=reason, cancelled_at=cancelled_at)
        _require_aware("recorded_at", recorded_at)
        self.trigger_event(self.Cancelled, timestamp=recorded_at, **fields)

    def correct(self, *, actual_start: datetime, actual_end: datetime, reason: str, recorded_at: datetime) -> None:
        if self.status != "performed":
            raise DomainError("only a performed visit can be corrected")
        self._check_times(actual_start, actual_end)
        _require_aware("recorded_at", recorded_at)
        self.trigger_event(
            self.Corrected,
            timestamp=recorded_at,
            actual_start=actual_start,
            actual_end=actual_end,
            reason=reason,
        )
