"""What every model settles on: the projection cut to a period, as aligned arrays.

Built once per comparison and shared by all models, so each model is a few
vectorized expressions over the same arrays:

- one entry per visit planned in the period (``v_*`` arrays);
- one row per recipient-month (``rm``): days enrolled and at home, days with a
  decision in force (and of those at home), granted minutes (full and for days
  at home) by rate group, the monthly granted minutes of the decisions in force,
  the provider that month, urban/rural and private/municipal.

A provider's ownership is never guessed: providers without a registered
ownership are listed in ``unknown_ownership`` and settled as the scenario's
``providers.default_ownership`` says (docs/models.md).
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from functools import cached_property
from typing import Any

import numpy as np
import pandas as pd

from ersattning.calendar import day_kinds
from ersattning.domain import Category
from ersattning.parameters import Param, raise_before
from ersattning.projection import Projection

WEEKS_PER_MONTH = 52 / 12
GROUPS = ("personal_care", "service")


OWNERSHIPS = ("municipal", "private")


class ContextError(ValueError):
    """The data cannot be settled as asked (e.g. an empty period)."""


class OwnershipError(ContextError):
    """Models that pay private providers other rates, on providers of unknown ownership, with no stated default."""


def month_range(start: str, end: str) -> np.ndarray:
    """Months from ``start`` to ``end`` inclusive ('YYYY-MM')."""
    a, b = np.datetime64(start, "M"), np.datetime64(end, "M")
    if b < a:
        raise ContextError(f"the period ends ({end}) before it starts ({start})")
    return np.arange(a, b + 1)


def _overlap_days(lo: np.ndarray, hi: np.ndarray, m_lo: np.ndarray, m_hi: np.ndarray) -> np.ndarray:
    """Days in [lo, hi) ∩ [m_lo, m_hi), broadcasting (rows × months)."""
    start = np.maximum(lo[:, None], m_lo[None, :])
    stop = np.minimum(hi[:, None], m_hi[None, :])
    return np.maximum((stop - start).astype(np.int64), 0)


@dataclass
class SettlementContext:
    projection: Projection
    months: np.ndarray  # datetime64[M]
    visits: pd.DataFrame
    recipient_ids: pd.Index
    provider_ids: pd.Index
    rm: pd.DataFrame
    v_month: np.ndarray
    v_rm: np.ndarray
    v_recipient: np.ndarray
    v_provider: np.ndarray
    v_team: np.ndarray
    v_category: np.ndarray  # int8 codes of Category
    v_personal_care: np.ndarray
    v_status: np.ndarray  # 0 planned, 1 performed, 2 cancelled
    v_staff: np.ndarray  # staff on a performed visit (1 or 2)
    v_minutes: np.ndarray  # performed minutes (0 when not performed)
    v_day: np.ndarray  # planned local day, datetime64[D]
    v_private: np.ndarray
    v_rural: np.ndarray
    #: codes of providers in the period whose ownership is not registered (settled at ``default_ownership``)
    unknown_ownership: list[str] = field(default_factory=list)
    default_ownership: str | None = None
    cache: dict[str, object] = field(default_factory=dict)
    #: a counterfactual context (docs/models.md, "Behaviour assumptions"): performed visits still
    #: registered with start and stop (None: all of them), the static context it was derived from,
    #: each visit's row there, and the transformations applied, in order
    v_registered: np.ndarray | None = None
    static: SettlementContext | None = None
    origin: np.ndarray | None = None
    transformations: list[dict[str, Any]] = field(default_factory=list)

    @property
    def n_visits(self) -> int:
        return len(self.v_rm)

    @property
    def registered(self) -> np.ndarray:
        """Performed visits registered with start and stop (all performed ones, unless a behaviour assumption says otherwise)."""
        return self.performed if self.v_registered is None else self.v_registered

    def derive(self, visits: pd.DataFrame, keep: np.ndarray | None, *, timing_changed: bool, **arrays: np.ndarray) -> SettlementContext:
        """A counterfactual context: ``visits`` and the per-visit ``arrays`` given (already of the kept
        visits), every other per-visit array cut to ``keep`` (a mask over this context's visits; None
        keeps all). Recipient-months are shared. Derived per-visit arrays that do not depend on status or
        times are carried over unless ``timing_changed``; the indicator cache starts empty. ``keep`` may
        also be the kept rows (an integer index, faster for many arrays)."""
        static = self.static if self.static is not None else self
        base_origin = self.origin if self.origin is not None else np.arange(self.n_visits)
        per_visit = {name: getattr(self, name) for name in _PER_VISIT if name not in arrays and getattr(self, name) is not None}
        if keep is not None:
            per_visit = {k: v[keep] for k, v in per_visit.items()}
        changes: dict[str, Any] = {**per_visit, **arrays, "visits": visits, "cache": {}, "static": static, "origin": base_origin if keep is None else base_origin[keep]}
        out = replace(self, **changes)
        carry = _CARRY_ALWAYS + (() if timing_changed else _CARRY_TIMING)
        for name in carry:
            if name in self.__dict__:
                value = self.__dict__[name]
                out.__dict__[name] = value[keep] if keep is not None and isinstance(value, np.ndarray) and name not in _NOT_PER_VISIT else value
        return out

    @property
    def month_starts(self) -> np.ndarray:
        return self.months.astype("datetime64[D]")

    @cached_property
    def performed(self) -> np.ndarray:
        return self.v_status == 1

    @cached_property
    def actual_local(self) -> np.ndarray:
        return self.visits["actual_start"].to_numpy()

    @cached_property
    def planned_local(self) -> np.ndarray:
        return self.visits["planned_start"].to_numpy()

    # Rules look at days and times of many visits but few distinct days: each
    # visit carries a small day code into a table of the period's days (with a
    # margin for visits performed past midnight), so per-day facts are computed
    # once per day and gathered.

    @cached_property
    def day0(self) -> np.datetime64:
        return self.month_starts[0] - np.timedelta64(2, "D")

    @cached_property
    def days_table(self) -> np.ndarray:
        end = (self.months[-1] + 1).astype("datetime64[D]") + np.timedelta64(2, "D")
        return np.arange(self.day0, end)

    @cached_property
    def v_day_code(self) -> np.ndarray:
        """Planned day of each visit, as an index into ``days_table`` (parameters are dated by it)."""
        return (self.v_day - self.day0).astype(np.int32)

    @cached_property
    def _when(self) -> np.ndarray:
        return np.where(self.performed, self.actual_local, self.planned_local).astype("datetime64[m]")

    @cached_property
    def v_when_code(self) -> np.ndarray:
        """Day the visit took place (performed, else planned), as an index into ``days_table``."""
        code = (self._when.astype("datetime64[D]") - self.day0).astype(np.int32)
        return np.clip(code, 0, len(self.days_table) - 1)

    @cached_property
    def day_kinds(self) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """(weekend, holiday, major holiday) of the day each visit took place."""
        bits = self.v_day_kind_bits
        return (bits & 1).astype(bool), (bits & 2).astype(bool), (bits & 4).astype(bool)

    @cached_property
    def day_kind_table(self) -> np.ndarray:
        """Per day of ``days_table``: bit 1 weekend, 2 holiday, 4 major holiday."""
        weekend, holiday, major = day_kinds(self.days_table)
        return (weekend * 1 + holiday * 2 + major * 4).astype(np.int8)

    @cached_property
    def v_day_kind_bits(self) -> np.ndarray:
        return self.day_kind_table[self.v_when_code]

    @cached_property
    def v_double_idx(self) -> np.ndarray:
        """Performed visits with two staff."""
        return np.flatnonzero(self.v_staff == 2)

    @cached_property
    def v_day_rate_index(self) -> np.ndarray:
        """Index into a (day × rate key) table flattened: day code × 4 + rate key."""
        return self.v_day_code * 4 + self.v_rate_key

    @cached_property
    def v_rate_key(self) -> np.ndarray:
        """0 service/municipal, 1 service/private, 2 personal care/municipal, 3 personal care/private."""
        return (self.v_personal_care.astype(np.int8) * 2 + self.v_private.astype(np.int8)).astype(np.int8)

    @cached_property
    def minute_of_day(self) -> np.ndarray:
        when = self._when
        return (when - when.astype("datetime64[D]")).astype(np.int16)

    @cached_property
    def v_cancelled_by_recipient(self) -> np.ndarray:
        return (self.v_status == 2) & (self.visits["cancelled_by"].cat.codes.to_numpy() == 0)

    @cached_property
    def v_cancel_reason(self) -> np.ndarray:
        """Codes of CancelReason (-1 when not cancelled)."""
        return self.visits["cancel_reason"].cat.codes.to_numpy()

    @cached_property
    def v_planned_minutes(self) -> np.ndarray:
        return self.visits["planned_minutes"].to_numpy(np.float64)

    def stay_day_numbers(self, idx: np.ndarray, kinds: list[str]) -> np.ndarray:
        """Day of a stay (of one of ``kinds``) that each visit ``idx`` is planned on: 1 on the stay's
        first day, 0 when the planned day is no stay day.

        A stay's days run from ``start`` up to, not including, ``end``: the end is the
        day home (docs/models.md); a stay with no end yet lasts past the period.
        """
        stays = self.projection.stays
        stays = stays[stays["kind"].astype(str).isin(kinds)]
        out = np.zeros(len(idx), dtype=np.int64)
        if not len(idx) or not len(stays):
            return out
        s_r = self.recipient_ids.get_indexer(stays["recipient"].astype(str)).astype(np.int64)
        s_start = stays["start"].to_numpy().astype("datetime64[D]")
        s_end = stays["end"].to_numpy().astype("datetime64[D]")
        order = np.lexsort((s_start, s_r))
        s_r, s_start, s_end = s_r[order], s_start[order], s_end[order]
        epoch = np.datetime64("1970-01-01")
        # the latest stay of the same recipient that started on or before the visit's day
        key_s = s_r * 100_000 + (s_start - epoch).astype(np.int64)
        day = self.v_day[idx]
        key_v = self.v_recipient[idx].astype(np.int64) * 100_000 + (day - epoch).astype(np.int64)
        j = np.maximum(np.searchsorted(key_s, key_v, side="right") - 1, 0)
        ok = (s_r[j] == self.v_recipient[idx]) & (s_start[j] <= day) & (np.isnat(s_end[j]) | (day < s_end[j]))
        out[ok] = (day[ok] - s_start[j][ok]).astype(np.int64) + 1
        return out

    def without_decision(self) -> np.ndarray:
        """Recipient-months with no decision in force on any day (a model that prices decisions cannot price them)."""
        return self.rm["decision_days"].to_numpy() == 0

    def ownership_problem(self, models: list[str]) -> str | None:
        """Why ``models`` (those that pay private providers other rates) cannot be settled, or None."""
        return ownership_problem(self.unknown_ownership, self.default_ownership, models)

    def per_visit(self, p: Param, name: str) -> np.ndarray | float:
        """A parameter on each visit's planned day: a plain number when it never changes."""
        if not p.dated:
            return p.value_at(self.day0, name)
        table = p.at(self.days_table, name, strict=False)
        out = table[self.v_day_code]
        if np.isnan(table).any() and np.isnan(out).any():
            raise_before(name, self.v_day[np.isnan(out)].min(), min(p.values))
        return out

    def rm_sum(self, values: np.ndarray, mask: np.ndarray | None = None) -> np.ndarray:
        """Sum per-visit values into recipient-months (vectorized bincount)."""
        if mask is not None:
            values = np.where(mask, values, 0.0)
        return np.bincount(self.v_rm, weights=values, minlength=len(self.rm))


#: per-visit fields of the context (cut together when a counterfactual drops visits)
_PER_VISIT = ("v_month", "v_rm", "v_recipient", "v_provider", "v_team", "v_category", "v_personal_care", "v_status", "v_staff", "v_minutes", "v_day", "v_private", "v_rural", "v_registered")
#: cached arrays a counterfactual can carry over: always (tables, and arrays of the planned visit) …
_CARRY_ALWAYS = ("day0", "days_table", "day_kind_table", "planned_local", "v_day_code", "v_day_rate_index", "v_rate_key", "v_planned_minutes")
#: … and those that depend on status and times, when these did not change
_CARRY_TIMING = ("performed", "actual_local", "_when", "v_when_code", "v_day_kind_bits", "minute_of_day", "v_cancelled_by_recipient", "v_cancel_reason")
_NOT_PER_VISIT = ("day0", "days_table", "day_kind_table")


def ownership_problem(unknown_ownership: list[str], default_ownership: str | None, models: list[str]) -> str | None:
    """Why ``models`` cannot be settled with providers of ``unknown_ownership`` and no default, or None."""
    if not models or not unknown_ownership or default_ownership is not None:
        return None
    shown = ", ".join(unknown_ownership[:10]) + (f" and {len(unknown_ownership) - 10} more" if len(unknown_ownership) > 10 else "")
    return (
        f"the ownership of {len(unknown_ownership)} provider(s) is not known: {shown}; models {', '.join(models)} pay private providers other rates. "
        "Either import the providers with their ownership (ersattning import --kind providers FILE: code, name, ownership municipal|private, teams), "
        "or state the assumption in the scenario: providers: {default_ownership: municipal} (or private)"
    )


def _merged(r: np.ndarray, lo: np.ndarray, hi: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Intervals [lo, hi) of each ``r`` merged where they overlap or touch (the days any of them covers)."""
    if not len(r):
        return r, lo, hi
    order = np.lexsort((lo, r))
    r, lo, hi = r[order], lo[order], hi[order]
    frame = pd.DataFrame({"r": r, "hi": hi.astype("datetime64[ns]")})
    reach = frame.groupby("r", sort=False)["hi"].cummax().to_numpy().astype("datetime64[D]")
    new = np.ones(len(r), dtype=bool)
    new[1:] = (r[1:] != r[:-1]) | (lo[1:] > reach[:-1])
    block = np.cumsum(new) - 1
    first = np.flatnonzero(new)
    block_hi = pd.Series(hi.astype("datetime64[ns]")).groupby(block).max().to_numpy().astype("datetime64[D]")
    return r[first], lo[first], block_hi


def provider_order(named: list[pd.Series]) -> list[str]:
    """The providers named in ``named``, once each, sorted by code: the order of every provider table, whatever
    order they were imported in (a partitioned run's dataset numbers them alike: partitioned/dataset.py)."""
    return sorted({str(p) for p in pd.concat(named, ignore_index=True)})


def build_context(proj: Projection, start: str, end: str, default_ownership: str | None = None) -> SettlementContext:
    """The settlement arrays of ``proj`` for the months ``start`` … ``end``; providers of unknown
    ownership are settled at ``default_ownership`` (municipal when None: compare refuses
    that for models that pay ownership-dependent rates, see ``ownership_problem``)."""
    if default_ownership is not None and default_ownership not in OWNERSHIPS:
        raise ContextError(f"default_ownership must be one of {', '.join(OWNERSHIPS)}, not {default_ownership!r}")
    months = month_range(start, end)
    m_lo = months.astype("datetime64[D]")
    m_hi = (months + 1).astype("datetime64[D]")
    period_lo, period_hi = m_lo[0], m_hi[-1]

    v = proj.visits
    day = v["planned_start"].to_numpy().astype("datetime64[D]")
    in_period = (day >= period_lo) & (day < period_hi)
    visits = v[in_period].reset_index(drop=True)
    day = day[in_period]
    if not len(proj.recipients) and not len(visits):
        raise ContextError(f"no recipients or visits in {start} … {end}")

    recipient_ids = pd.Index(pd.unique(pd.concat([proj.recipients["recipient"].astype(str), pd.Series(visits["recipient"].cat.categories, dtype=str)], ignore_index=True)))
    # providers registered, named by visits, or chosen by recipients (decisions imported with a provider column),
    # by code: every table and the complementary suppression's tie-break follow this order, never the import's
    named = [proj.providers["provider"].astype(str), pd.Series(visits["provider"].cat.categories, dtype=str), proj.provider_choices["provider"].astype(str)]
    provider_ids = pd.Index(provider_order(named))
    n_r, n_m = len(recipient_ids), len(months)

    # -- enrolment, stays and granted time per recipient-month -----------------------
    rec = proj.recipients
    r_code = recipient_ids.get_indexer(rec["recipient"].astype(str))
    enrol_lo = np.full(n_r, period_lo, dtype="datetime64[D]")
    enrol_hi = np.full(n_r, period_hi, dtype="datetime64[D]")
    enrol_lo[r_code] = rec["enrolled_on"].to_numpy().astype("datetime64[D]")
    departed = rec["departed_on"].to_numpy().astype("datetime64[D]")
    enrol_hi[r_code] = np.where(np.isnat(departed), period_hi, departed)
    enrolled = _overlap_days(enrol_lo, enrol_hi, m_lo, m_hi)  # n_r × n_m

    stays = proj.stays
    stay_days = np.zeros((n_r, n_m), dtype=np.int64)
    if len(stays):
        s_r = recipient_ids.get_indexer(stays["recipient"].astype(str))
        s_lo = stays["start"].to_numpy().astype("datetime64[D]")
        s_hi = stays["end"].to_numpy().astype("datetime64[D]")
        s_hi = np.where(np.isnat(s_hi), period_hi, s_hi)
        # only the part of a stay while enrolled counts
        s_lo, s_hi = np.maximum(s_lo, enrol_lo[s_r]), np.minimum(s_hi, enrol_hi[s_r])
        np.add.at(stay_days, s_r, _overlap_days(s_lo, np.maximum(s_hi, s_lo), m_lo, m_hi))
    at_home = np.maximum(enrolled - stay_days, 0)
    days_in_month = (m_hi - m_lo).astype(np.int64)

    granted_full = {g: np.zeros((n_r, n_m)) for g in GROUPS}
    granted_home = {g: np.zeros((n_r, n_m)) for g in GROUPS}
    decision_days = np.zeros((n_r, n_m), dtype=np.int64)  # days with any decision in force (while enrolled)
    decision_home = np.zeros((n_r, n_m), dtype=np.int64)  # of those, days at home
    d = proj.decisions
    if len(d):
        d_r = recipient_ids.get_indexer(d["recipient"].astype(str))
        monthly = d["granted_minutes"].to_numpy(np.float64) * np.where(d["per"].astype(str).to_numpy() == "week", WEEKS_PER_MONTH, 1.0)
        d_lo = np.maximum(d["valid_from"].to_numpy().astype("datetime64[D]"), enrol_lo[d_r])
        d_hi_raw = d["valid_to"].to_numpy().astype("datetime64[D]")
        d_hi = np.minimum(np.where(np.isnat(d_hi_raw), period_hi, d_hi_raw), enrol_hi[d_r])
        d_hi = np.maximum(d_hi, d_lo)
        overlap = _overlap_days(d_lo, d_hi, m_lo, m_hi)
        stay_overlap = np.zeros_like(overlap)
        if len(stays):
            seg = pd.DataFrame({"seg": np.arange(len(d)), "r": d_r})
            st = pd.DataFrame({"r": s_r, "s_lo": s_lo, "s_hi": np.maximum(s_hi, s_lo)})
            pairs = seg.merge(st, on="r")
            if len(pairs):
                i = pairs["seg"].to_numpy()
                lo = np.maximum(d_lo[i], pairs["s_lo"].to_numpy().astype("datetime64[D]"))
                hi = np.minimum(d_hi[i], pairs["s_hi"].to_numpy().astype("datetime64[D]"))
                np.add.at(stay_overlap, i, _overlap_days(lo, np.maximum(hi, lo), m_lo, m_hi))
        b_r, b_lo, b_hi = _merged(d_r.astype(np.int64), d_lo, d_hi)
        np.add.at(decision_days, b_r, _overlap_days(b_lo, b_hi, m_lo, m_hi))
        decision_home += decision_days
        if len(stays):
            blocks = pd.DataFrame({"b": np.arange(len(b_r)), "r": b_r})
            pairs = blocks.merge(pd.DataFrame({"r": s_r, "s_lo": s_lo, "s_hi": np.maximum(s_hi, s_lo)}), on="r")
            if len(pairs):
                i = pairs["b"].to_numpy()
                lo = np.maximum(b_lo[i], pairs["s_lo"].to_numpy().astype("datetime64[D]"))
                hi = np.minimum(b_hi[i], pairs["s_hi"].to_numpy().astype("datetime64[D]"))
                np.subtract.at(decision_home, b_r[i], _overlap_days(lo, np.maximum(hi, lo), m_lo, m_hi))
        group = np.where(d["category"].astype(str).to_numpy() == Category.personal_care.value, 0, 1)
        for gi, g in enumerate(GROUPS):
            sel = group == gi
            np.add.at(granted_full[g], d_r[sel], monthly[sel, None] * overlap[sel] / days_in_month[None, :])
            np.add.at(granted_home[g], d_r[sel], monthly[sel, None] * (overlap[sel] - stay_overlap[sel]) / days_in_month[None, :])

    # -- per-visit arrays -------------------------------------------------------------
    v_recipient = recipient_ids.get_indexer(visits["recipient"].cat.categories.astype(str))[visits["recipient"].cat.codes.to_numpy()]
    v_provider = provider_ids.get_indexer(visits["provider"].cat.categories.astype(str))[visits["provider"].cat.codes.to_numpy()]
    v_month = (day.astype("datetime64[M]") - months[0]).astype(np.int64)

    has_visits = np.zeros((n_r, n_m), dtype=bool)
    has_visits[v_recipient, v_month] = True
    keep = (enrolled > 0) | has_visits
    rr, mm = np.nonzero(keep)
    rm_index = np.full((n_r, n_m), -1, dtype=np.int64)
    rm_index[rr, mm] = np.arange(len(rr))
    v_rm = rm_index[v_recipient, v_month]

    # provider of each recipient-month: the one chosen as of the month's last day; for
    # recipients with no provider choice recorded, the provider of their latest visit that month
    provider = np.full(len(rr), -1, dtype=np.int64)
    if len(proj.provider_choices):
        ch = proj.provider_choices
        choices = pd.DataFrame({"r": recipient_ids.get_indexer(ch["recipient"].astype(str)), "p": provider_ids.get_indexer(ch["provider"].astype(str)), "on": ch["chosen_on"].to_numpy().astype("datetime64[ns]")}).sort_values("on", kind="stable")
        ask = pd.DataFrame({"i": np.arange(len(rr)), "r": rr, "on": (m_hi[mm] - 1).astype("datetime64[ns]")}).sort_values("on", kind="stable")
        got = pd.merge_asof(ask, choices, on="on", by="r", direction="backward")
        ok = got["p"].notna().to_numpy()
        provider[got["i"].to_numpy()[ok]] = got["p"].to_numpy()[ok].astype(np.int64)
    missing = provider < 0
    if missing.any() and len(visits):
        latest = np.full(len(rr), -1, dtype=np.int64)
        order = np.argsort(visits["planned_start"].to_numpy(), kind="stable")
        latest[v_rm[order]] = v_provider[order]  # later visits overwrite earlier ones
        provider[missing] = latest[missing]

    ownership = proj.providers.drop_duplicates("provider", keep="last").set_index("provider")["ownership"].astype(object).reindex(provider_ids).to_numpy()
    known = pd.notna(ownership)
    private_by_provider = np.where(known, ownership == "private", default_ownership == "private").astype(bool)
    used = np.zeros(len(provider_ids), dtype=bool)
    used[v_provider] = True
    used[provider[provider >= 0]] = True
    unknown_ownership = [str(p) for p in provider_ids[used & ~known]]
    rural_by_recipient = np.zeros(n_r, dtype=bool)
    rural_by_recipient[r_code] = rec["area"].astype(str).to_numpy() == "rural"
    birth_year = np.full(n_r, -1, dtype=np.int64)
    birth_year[r_code] = rec["birth_year"].to_numpy()

    rm = pd.DataFrame(
        {
            "recipient": rr,
            "month": mm,
            "provider": provider,
            "days_in_month": days_in_month[mm],
            "days_enrolled": enrolled[rr, mm],
            "days_at_home": at_home[rr, mm],
            "granted_pc": granted_home["personal_care"][rr, mm],
            "granted_service": granted_home["service"][rr, mm],
            "granted_full_pc": granted_full["personal_care"][rr, mm],
            "granted_full_service": granted_full["service"][rr, mm],
            "decision_days": decision_days[rr, mm],
            "decision_days_at_home": np.maximum(decision_home[rr, mm], 0),
            # the decisions' monthly granted minutes while in force (not pro rata: trust tiers are chosen by it)
            "granted_monthly": np.where(decision_days[rr, mm] > 0, (granted_full["personal_care"][rr, mm] + granted_full["service"][rr, mm]) * days_in_month[mm] / np.maximum(decision_days[rr, mm], 1), 0.0),
            "rural": rural_by_recipient[rr],
            "private": np.where(provider >= 0, private_by_provider[np.maximum(provider, 0)], False),
            "birth_year": birth_year[rr],
            "new_client": (enrol_lo[rr] >= period_lo) & (enrol_lo[rr].astype("datetime64[M]") == months[mm]),
        }
    )
    status = visits["status"].cat.codes.to_numpy().astype(np.int8)
    performed = status == 1
    staff = np.where(performed, 1 + visits["staff2"].notna().to_numpy(), 0).astype(np.int8)
    return SettlementContext(
        projection=proj,
        months=months,
        visits=visits,
        recipient_ids=recipient_ids,
        provider_ids=provider_ids,
        rm=rm,
        v_month=v_month,
        v_rm=v_rm,
        v_recipient=v_recipient,
        v_provider=v_provider,
        v_team=visits["team"].cat.codes.to_numpy(),
        v_category=visits["category"].cat.codes.to_numpy().astype(np.int8),
        v_personal_care=(visits["category"] == Category.personal_care.value).to_numpy(),
        v_status=status,
        v_staff=staff,
        v_minutes=np.where(performed, visits["actual_minutes"].to_numpy(np.float64), 0.0),
        v_day=day,
        v_private=private_by_provider[v_provider] if len(visits) else np.zeros(0, dtype=bool),
        v_rural=rural_by_recipient[v_recipient] if len(visits) else np.zeros(0, dtype=bool),
        unknown_ownership=unknown_ownership,
        default_ownership=default_ownership,
    )
