"""What is checked before figures are trusted: the period against the history, the scenario's dated
parameters against the period, and the history's key ratios against documented ranges (docs/checks.md).

``compare`` and ``validate`` run the same checks, so a scenario that validates settles. A check either
stops (``PeriodNotCovered``, ``ParameterError``) or leaves a ``Finding``: a warning with a stable code
that the table, the JSON (``warnings[]``) and the report all show.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import TYPE_CHECKING, Any

import numpy as np

from ersattning.context import ContextError, month_range
from ersattning.exact import ExactSum
from ersattning.indicators import SharedSummary, combine_shared
from ersattning.parameters import ParameterError, iter_params

if TYPE_CHECKING:
    from ersattning.projection import Projection
    from ersattning.scenario import Scenario


@dataclass(frozen=True)
class Finding:
    """A warning about the data or the scenario: ``code`` is stable for scripts, ``message`` for people."""

    code: str
    message: str
    value: float | str | None = None
    expected: str | None = None
    source: str | None = None

    def to_json(self) -> dict[str, Any]:
        return asdict(self)


#: every output of a comparison on a synthetic region (ersattning synth, or compare's demo) says so
DEMO_DATA = Finding("demo_data", "the figures come from a synthetic demo region, not from real data (ersattning synth); import your own history to compare on it")


class PeriodNotCovered(ContextError):
    """The history does not cover the months a comparison would settle."""

    code = "period_not_covered"


# -- coverage: which months the history describes ----------------------------------------------


@dataclass(frozen=True)
class Coverage:
    """Which months a history describes: visits planned per month, the months some decision is in force and
    the providers registered. Small and JSON-able: a partitioned projection keeps it in its ``meta.json``."""

    visit_months: dict[str, int]  # YYYY-MM → visits planned that month (any status)
    decision_months: list[str]  # months some decision with an end date is in force
    decisions_open_from: str | None  # first month of a decision without an end date (in force from then on)
    providers_registered: int

    @classmethod
    def of(cls, proj: Projection) -> Coverage:
        # visits per day (a cheap integer conversion and a count), then the few distinct days to months
        days = proj.visits["planned_start"].to_numpy().astype("datetime64[D]")
        index = days[~np.isnat(days)].astype(np.int64)
        per_day = np.bincount(index - index.min()) if len(index) else np.zeros(0, dtype=np.int64)
        on = np.flatnonzero(per_day)
        day_months = (on + (index.min() if len(index) else 0)).astype("datetime64[D]").astype("datetime64[M]")
        months, first = np.unique(day_months, return_inverse=True)
        counts = np.bincount(first, weights=per_day[on], minlength=len(months)).astype(np.int64)
        d = proj.decisions
        lo = d["valid_from"].to_numpy().astype("datetime64[D]")
        hi = d["valid_to"].to_numpy().astype("datetime64[D]")  # exclusive: the first day not in force
        open_ = np.isnat(hi)
        open_from = str(lo[open_].min().astype("datetime64[M]")) if open_.any() else None
        finite = ~open_ & ~np.isnat(lo) & (hi > lo)
        covered: list[str] = []
        if finite.any():
            first = lo[finite].astype("datetime64[M]")
            last = (hi[finite] - np.timedelta64(1, "D")).astype("datetime64[M]")
            base = first.min()
            span = int((last.max() - base).astype(np.int64)) + 2
            diff = np.zeros(span, dtype=np.int64)
            np.add.at(diff, (first - base).astype(np.int64), 1)
            np.add.at(diff, (last - base).astype(np.int64) + 1, -1)
            on = np.flatnonzero(np.cumsum(diff)[:-1] > 0)
            covered = [str(base + np.timedelta64(int(i), "M")) for i in on]
        return cls(
            visit_months={str(m): int(n) for m, n in zip(months, counts, strict=True)},
            decision_months=covered,
            decisions_open_from=open_from,
            providers_registered=int(proj.providers["provider"].nunique()) if len(proj.providers) else 0,
        )

    def to_json(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> Coverage:
        return cls(
            visit_months={str(k): int(v) for k, v in data["visit_months"].items()},
            decision_months=[str(m) for m in data["decision_months"]],
            decisions_open_from=data.get("decisions_open_from"),
            providers_registered=int(data["providers_registered"]),
        )

    def describe_decisions(self) -> str:
        """``2023-01 … 2023-06, and every month from 2024-01 on`` (``no month`` without decisions)."""
        open_from = self.decisions_open_from
        spans = month_spans([m for m in self.decision_months if open_from is None or m < open_from])
        if open_from is None:
            return spans if self.decision_months else "no month"
        return f"every month from {open_from} on" if spans == "none" else f"{spans}, and every month from {open_from} on"

    def has_decision(self, month: str) -> bool:
        return month in self.decision_months or (self.decisions_open_from is not None and month >= self.decisions_open_from)


def month_spans(months: list[str]) -> str:
    """``2024-01 … 2024-03, 2024-06`` for sorted months (consecutive ones joined)."""
    if not months:
        return "none"
    values = np.array(months, dtype="datetime64[M]").astype(np.int64)
    breaks = np.flatnonzero(np.diff(values) != 1) + 1
    spans = []
    for run in np.split(np.arange(len(values)), breaks):
        a, b = months[run[0]], months[run[-1]]
        spans.append(a if a == b else f"{a} … {b}")
    return ", ".join(spans)


def longest_run(months: list[str]) -> tuple[str, str] | None:
    """The first and last month of the longest run of consecutive months (the latest of equal ones)."""
    if not months:
        return None
    values = np.array(sorted(months), dtype="datetime64[M]").astype(np.int64)
    runs = np.split(np.arange(len(values)), np.flatnonzero(np.diff(values) != 1) + 1)
    best = max(runs, key=lambda r: (len(r), r[-1]))
    ordered = sorted(months)
    return ordered[best[0]], ordered[best[-1]]


def check_coverage(cov: Coverage, start: str, end: str, where: str) -> list[Finding]:
    """Stop when a month of the period has no visits at all; warn of months with visits but no decision in force.

    A month without visits would be settled as nothing happened: every model pays 0 there, and a year's
    scenario on two months of data compares two months' cost with a year's granted time.
    """
    period = [str(m) for m in month_range(start, end)]
    with_visits = sorted(cov.visit_months)
    if not with_visits:
        return _decisions_only(cov, start, end, period, where)
    missing = [m for m in period if m not in cov.visit_months]
    if missing:
        run = longest_run(with_visits)
        way_out = (
            f"settle the months the data covers: --period {run[0]}..{run[1]}, or period: {{start: {run[0]}, end: {run[1]}}} in the scenario"
            if run
            else "import visits first (ersattning import --kind visits …), or name another store with --store"
        )
        raise PeriodNotCovered(
            f"the period {start} … {end} is not covered by the history in {where}: "
            f"{len(missing)} of its {len(period)} months have no visits ({month_spans(missing)}). "
            f"The history has visits in {month_spans(with_visits)}; decisions in force in {cov.describe_decisions()}; "
            f"{cov.providers_registered} provider(s) registered. Either {way_out}. [{PeriodNotCovered.code}]"
        )
    undecided = [m for m in period if not cov.has_decision(m)]
    if not undecided:
        return []
    return [
        Finding(
            "decisions_not_covered",
            f"{len(undecided)} of the period's {len(period)} months have visits but no decision in force ({month_spans(undecided)}): "
            "models that pay granted time pay nothing for them (import decisions: ersattning import --kind decisions)",
            value=month_spans(undecided),
            expected="a decision in force in every month of the period",
        )
    ]


def _decisions_only(cov: Coverage, start: str, end: str, period: list[str], where: str) -> list[Finding]:
    """A history of decisions without visits (an assessment register): it covers the months a decision is in force,
    and only models that pay by decision have anything to settle there."""
    undecided = [m for m in period if not cov.has_decision(m)]
    if undecided:
        raise PeriodNotCovered(
            f"the period {start} … {end} is not covered by the history in {where}: it holds no visits, and "
            f"{len(undecided)} of the period's {len(period)} months have no decision in force ({month_spans(undecided)}); "
            f"decisions are in force in {cov.describe_decisions()}. Import the visits (ersattning import --kind visits …), "
            f"or settle months the decisions cover (--period, or period: in the scenario). [{PeriodNotCovered.code}]"
        )
    return [
        Finding(
            "no_visits",
            "the history holds decisions but no visits: models that pay performed time pay nothing (import visits: ersattning import --kind visits)",
            expected="visits in every month of the period",
        )
    ]


# -- the scenario's dated parameters against the period ----------------------------------------------


def check_parameters(sc: Scenario) -> None:
    """Every parameter has a value on the period's first day (and so on every day of it): a parameter dated
    later stops here, naming it, rather than when the model reaches it."""
    first = np.datetime64(f"{sc.spec.period.start}-01", "D")
    problems = []
    sections: list[tuple[str, object]] = [(f"models.{entry.name}", model) for entry, model in sc.models]
    sections.append(("admin", sc.spec.admin))
    for prefix, obj in sections:
        for path, p in iter_params(obj):
            since = min(p.values)
            if np.datetime64(since, "D") > first:
                problems.append(f"{prefix}.{path} has no value on {first} (its first value is from {since}); the period starts {sc.spec.period.start}")
    if problems:
        raise ParameterError("; ".join(problems) + ": give it a value from the period's first day, or settle a later period (--period)")


def preflight(scenario: Scenario, coverage: Coverage, where: str) -> list[Finding]:
    """The checks made before anything is settled: every parameter has a value in the period, and the history
    covers it (``PeriodNotCovered`` or ``ParameterError`` stop; the rest are findings)."""
    check_parameters(scenario)
    return check_coverage(coverage, scenario.spec.period.start, scenario.spec.period.end, where)


# -- plausibility of the history ---------------------------------------------------------------------


@dataclass(frozen=True)
class Range:
    """A documented plausible range of one of the history's key ratios (docs/checks.md)."""

    code: str
    figure: str
    low: float
    high: float
    source: str
    digits: int = 3

    def expected(self) -> str:
        return f"{self.low:.{self.digits}g}–{self.high:.{self.digits}g}"


RANGES: dict[str, Range] = {
    r.figure: r
    for r in [
        Range(
            "performed_to_granted_out_of_range",
            "performed_to_granted",
            0.5,
            1.1,
            "Stockholm's providers were paid for 79–86 % of granted time (2014; municipal 0.79, private 0.86); "
            "the range around it is an assumption (docs/checks.md)",
        ),
        Range(
            "visits_per_recipient_day_out_of_range",
            "visits_per_recipient_day",
            0.3,
            6.0,
            "Stockholm's registrations: about a million visits a month for some 20,000 people, 1.6 a recipient-day; "
            "the range is an assumption (docs/checks.md)",
        ),
        Range(
            "minutes_per_visit_out_of_range",
            "minutes_per_visit",
            5.0,
            120.0,
            "about 24 granted hours a recipient-month nationally at 0.8 performed over 1.6 visits a day gives about 24 minutes "
            "a visit; the range is an assumption (docs/checks.md)",
        ),
        Range("share_double_staffed_out_of_range", "share_double_staffed", 0.0, 0.2, "about 4 % of visits have two staff (Stockholm); the range is an assumption (docs/checks.md)"),
        Range("share_night_out_of_range", "share_night", 0.0, 0.15, "assumption: night visits (22–07) are a small share of home care (docs/checks.md)"),
        Range(
            "share_cancelled_out_of_range",
            "share_cancelled",
            0.0,
            0.25,
            "assumption: a few per cent of planned visits are cancelled by recipients or providers (docs/calibration.md); the range is an assumption",
        ),
    ]
}

LABELS = {
    "performed_to_granted": "performed time / granted time",
    "visits_per_recipient_day": "performed visits per recipient-day at home",
    "minutes_per_visit": "performed minutes per performed visit",
    "share_double_staffed": "share of performed visits with two staff",
    "share_night": "share of performed visits started 22–07",
    "share_cancelled": "share of planned visits cancelled",
}


def plausibility(figures: dict[str, Any], *, hidden: bool = False) -> list[Finding]:
    """Each key ratio of the history outside its documented range, as a warning (nothing is changed).

    ``hidden``: the region's figures are not shown (fewer than 5 recipients), so the warning names the
    figure and the range but not the value.
    """
    out = []
    for figure, r in RANGES.items():
        value = figures.get(figure)
        if value is None or not np.isfinite(value) or r.low <= value <= r.high:
            continue
        shown = "" if hidden else f" is {value:.{r.digits}g},"
        out.append(
            Finding(
                r.code,
                f"{LABELS[figure]}{shown} outside the plausible range {r.expected()} ({r.source}); check the import's units and mapping",
                value=None if hidden else float(value),
                expected=r.expected(),
                source=r.source,
            )
        )
    return out


def history_figures(parts: list[SharedSummary], shared: dict[str, Any] | None = None) -> dict[str, float | None]:
    """The ratios ``plausibility`` checks, from the replayed history's summaries (one per partition); the shared
    indicators' own ratios (``indicators.combine_shared``, passed as ``shared`` when the caller has them) where they are one."""
    shared = combine_shared(parts) if shared is None else shared
    performed = sum(p.performed for p in parts)

    def per_visit(n: float) -> float | None:
        return n / performed if performed else None

    by_recipient, by_provider = shared["share_cancelled_by_recipient"], shared["share_cancelled_by_provider"]
    return {
        "performed_to_granted": shared["performed_to_granted"],
        "visits_per_recipient_day": shared["visits_per_recipient_day"],
        "minutes_per_visit": per_visit(float(sum((p.performed_minutes for p in parts), ExactSum()))),
        "share_double_staffed": per_visit(sum(p.double_staffed for p in parts)),
        "share_night": per_visit(sum(p.night for p in parts)),
        "share_cancelled": None if by_recipient is None or by_provider is None else by_recipient + by_provider,
    }
