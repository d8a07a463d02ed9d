"""Shared quality indicators from the service history (docs/indicators.md), vectorized.

They describe what happened, the same under every model, so they sit below the
models (trust_based pays a bonus on continuity). The model-dependent indicators
(what a model pays for and the incentive it sets) need a settlement and live in
compare.py.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

from ersattning.context import SettlementContext
from ersattning.exact import ExactSum, exact_sum

DAY_START, DAY_END = 7 * 60, 22 * 60  # Kolada counts visits 07–22 only
WINDOW_DAYS = 14
ELDERLY_AGE = 65
CONTINUITY_HIGH = 20


def _continuity_windows(ctx: SettlementContext) -> pd.DataFrame:
    """Distinct staff per eligible person and 14-day window (Kolada/Socialstyrelsen definition).

    Eligible: 65 or older, at home (enrolled, no stay) the whole window, and at
    least two visits between 07 and 22 every day of it. Windows are
    consecutive fortnights from the first Monday of the period.
    """
    cached = ctx.cache.get("continuity")
    if isinstance(cached, pd.DataFrame):
        return cached
    period_lo = ctx.month_starts[0]
    period_hi = (ctx.months[-1] + 1).astype("datetime64[D]")
    first_monday = period_lo + np.timedelta64((7 - ((period_lo.astype(np.int64) + 3) % 7)) % 7, "D")
    n_w = int(((period_hi - first_monday).astype(np.int64)) // WINDOW_DAYS)
    empty = pd.DataFrame({"recipient": pd.Series(dtype=np.int64), "window": pd.Series(dtype=np.int64), "distinct_staff": pd.Series(dtype=np.int64), "provider": pd.Series(dtype=np.int64)})
    if n_w <= 0 or not ctx.n_visits:
        ctx.cache["continuity"] = empty
        return empty
    # day of each performed visit, counted from the first Monday (the visit's day code shifted)
    offset = ctx.v_when_code - int((first_monday - ctx.day0).astype(np.int64))
    mod = ctx.minute_of_day
    n_d = n_w * WINDOW_DAYS
    idx = np.flatnonzero(ctx.performed & (mod >= DAY_START) & (mod < DAY_END) & (offset >= 0) & (offset < n_d))
    r = ctx.v_recipient[idx].astype(np.int64)
    d = offset[idx].astype(np.int64)
    n_r = len(ctx.recipient_ids)
    per_day = np.bincount(r * n_d + d, minlength=n_r * n_d).reshape(n_r, n_w, WINDOW_DAYS)
    eligible = (per_day >= 2).all(axis=2)  # n_r × n_w

    # 65+ at the window's start, and at home (enrolled, not in a stay) the whole window
    w_lo = first_monday + np.arange(n_w) * np.timedelta64(WINDOW_DAYS, "D")
    w_hi = w_lo + np.timedelta64(WINDOW_DAYS, "D")
    rec = ctx.projection.recipients
    code = ctx.recipient_ids.get_indexer(rec["recipient"].astype(str))
    birth = np.full(n_r, 9999)
    years = rec["birth_year"].to_numpy()
    birth[code] = np.where(years > 0, years, 9999)  # an unknown birth year (0) is not counted as 65+
    year = w_lo.astype("datetime64[Y]").astype(np.int64) + 1970
    eligible &= (year[None, :] - birth[:, None]) >= ELDERLY_AGE
    enrolled_on = np.full(n_r, np.datetime64("NaT"), dtype="datetime64[D]")
    enrolled_on[code] = rec["enrolled_on"].to_numpy().astype("datetime64[D]")
    departed = np.full(n_r, np.datetime64("NaT"), dtype="datetime64[D]")
    departed[code] = rec["departed_on"].to_numpy().astype("datetime64[D]")
    known = ~np.isnat(enrolled_on)
    eligible &= ~known[:, None] | (enrolled_on[:, None] <= w_lo[None, :])
    eligible &= np.isnat(departed)[:, None] | (departed[:, None] >= w_hi[None, :])
    stays = ctx.projection.stays
    if len(stays):
        s_r = ctx.recipient_ids.get_indexer(stays["recipient"].astype(str))
        s_lo = stays["start"].to_numpy().astype("datetime64[D]")
        s_hi = stays["end"].to_numpy().astype("datetime64[D]")
        s_hi = np.where(np.isnat(s_hi), period_hi, s_hi)
        overlaps = (s_lo[:, None] < w_hi[None, :]) & (s_hi[:, None] > w_lo[None, :])
        rows, wins = np.nonzero(overlaps)
        eligible[s_r[rows], wins] = False

    # distinct staff among the eligible person-windows' visits (both staff of a double-staffed visit count)
    rw = r * n_w + d // WINDOW_DAYS
    keep = eligible.ravel()[rw]
    rw, idx = rw[keep], idx[keep]
    staff1 = ctx.visits["staff1"].cat.codes.to_numpy()[idx]
    staff2 = ctx.visits["staff2"].cat.codes.to_numpy()[idx]
    n_s = max(int(ctx.visits["staff1"].cat.categories.size), 1) + 1
    second = staff2 >= 0
    # (person-window, staff) pairs, sorted so that repeats sit side by side; 32-bit keys sort faster
    dtype = np.uint32 if n_r * n_w * n_s < 2**32 else np.int64
    keys = np.concatenate([rw * n_s + staff1, rw[second] * n_s + staff2[second]]).astype(dtype)
    keys.sort()
    first = np.ones(len(keys), dtype=bool)
    first[1:] = keys[1:] != keys[:-1]
    distinct = np.bincount((keys[first] // n_s).astype(np.int64), minlength=n_r * n_w).reshape(n_r, n_w)
    rr, ww = np.nonzero(eligible)
    out = pd.DataFrame({"recipient": rr, "window": ww, "distinct_staff": distinct[rr, ww]})
    # the provider is the one the person had in the month the window starts
    month = (w_lo.astype("datetime64[M]") - ctx.months[0]).astype(np.int64)[ww]
    lookup = np.full((n_r, len(ctx.months)), -1, dtype=np.int64)
    lookup[ctx.rm["recipient"].to_numpy(), ctx.rm["month"].to_numpy()] = ctx.rm["provider"].to_numpy()
    out["provider"] = lookup[rr, np.clip(month, 0, len(ctx.months) - 1)]
    ctx.cache["continuity"] = out
    return out


@dataclass
class SharedSummary:
    """What the shared indicators need from one partition of recipients: counts, exact sums and the
    continuity windows as (provider, distinct staff) → how many; they add up across partitions
    (``combine_shared``), so a region settled in pieces gets the same indicators (docs/indicators.md)."""

    windows: pd.DataFrame  # provider, distinct_staff, windows
    visits: int
    performed: int
    punctual: int
    cancelled_by_recipient: int
    cancelled_by_provider: int
    performed_minutes: ExactSum
    granted_minutes: ExactSum
    home_days: int
    recipient_months: int
    recipients: int
    double_staffed: int = 0  # performed visits with two staff
    night: int = 0  # performed visits started 22–07 (the plausibility checks, docs/checks.md)


def window_counts(ctx: SettlementContext) -> pd.DataFrame:
    """The eligible person-windows as (provider, distinct staff) → how many (small whatever the region)."""
    w = _continuity_windows(ctx)
    return w.groupby(["provider", "distinct_staff"], sort=True).size().rename("windows").reset_index()


def shared_summary(ctx: SettlementContext, punctuality_tolerance_minutes: float = 15.0) -> SharedSummary:
    performed = ctx.performed
    status = ctx.v_status
    punctual = 0
    if performed.any():
        diff = (ctx.actual_local[performed] - ctx.planned_local[performed]).astype("timedelta64[s]").astype(np.int64) / 60
        punctual = int((np.abs(diff) <= punctuality_tolerance_minutes).sum())
    cancelled = status == 2
    return SharedSummary(
        windows=window_counts(ctx),
        visits=int(ctx.n_visits),
        performed=int(performed.sum()),
        punctual=punctual,
        cancelled_by_recipient=int((cancelled & (ctx.visits["cancelled_by"] == "recipient").to_numpy()).sum()),
        cancelled_by_provider=int((cancelled & (ctx.visits["cancelled_by"] == "provider").to_numpy()).sum()),
        performed_minutes=exact_sum(ctx.rm_sum(ctx.v_minutes)),
        granted_minutes=exact_sum((ctx.rm["granted_full_pc"] + ctx.rm["granted_full_service"]).to_numpy()),
        home_days=int(ctx.rm["days_at_home"].sum()),
        recipient_months=int((ctx.rm["days_enrolled"] > 0).sum()),
        recipients=int(len(np.unique(ctx.rm["recipient"].to_numpy()))),
        double_staffed=int((ctx.v_staff == 2).sum()),
        night=int((performed & ((ctx.minute_of_day >= DAY_END) | (ctx.minute_of_day < DAY_START))).sum()),
    )


def median_of_counts(values: np.ndarray, counts: np.ndarray) -> float:
    """``np.median`` of ``values`` repeated ``counts`` times (values sorted), without repeating them."""
    n = int(counts.sum())
    ends = np.cumsum(counts)
    lo = values[np.searchsorted(ends, (n - 1) // 2, side="right")]
    hi = values[np.searchsorted(ends, n // 2, side="right")]
    return float((float(lo) + float(hi)) / 2)


def continuity_from(windows: pd.DataFrame) -> dict[str, float | int | None]:
    """The continuity indicators from window counts (``window_counts``, summed across partitions)."""
    n = int(windows["windows"].sum()) if len(windows) else 0
    if not n:
        return {"continuity_median": None, "continuity_share_above_20": None, "continuity_person_windows": 0}
    by_value = windows.groupby("distinct_staff", sort=True)["windows"].sum()
    return {
        "continuity_median": median_of_counts(by_value.index.to_numpy(), by_value.to_numpy()),
        "continuity_share_above_20": float(int(by_value[by_value.index > CONTINUITY_HIGH].sum()) / n),
        "continuity_person_windows": n,
    }


def continuity_medians(windows: pd.DataFrame, n_providers: int) -> np.ndarray:
    """Median distinct staff per provider code from window counts (NaN where none is eligible)."""
    out = np.full(n_providers, np.nan)
    w = windows[windows["provider"] >= 0]
    if len(w):
        w = w.groupby(["provider", "distinct_staff"], sort=True)["windows"].sum().reset_index()
        for p, g in w.groupby("provider", sort=True):
            out[int(p)] = median_of_counts(g["distinct_staff"].to_numpy(), g["windows"].to_numpy())
    return out


def continuity(ctx: SettlementContext) -> dict[str, float | int | None]:
    return continuity_from(window_counts(ctx))


def continuity_by_provider(ctx: SettlementContext) -> np.ndarray:
    """Median distinct staff per provider (NaN where no person-window is eligible).

    A region settled partition by partition puts the region's medians in ``ctx.cache["continuity_by_provider"]``.
    """
    given = ctx.cache.get("continuity_by_provider")
    if isinstance(given, np.ndarray):
        return given
    return continuity_medians(window_counts(ctx), len(ctx.provider_ids))


def combine_shared(parts: list[SharedSummary]) -> dict[str, float | int | None]:
    """The shared indicators of the partitions together."""
    windows = pd.concat([p.windows for p in parts], ignore_index=True)
    out: dict[str, float | int | None] = dict(continuity_from(windows))
    n = sum(p.visits for p in parts)
    performed = sum(p.performed for p in parts)
    out["punctuality"] = float(sum(p.punctual for p in parts) / performed) if performed else None
    out["share_planned_performed"] = float(performed / n) if n else None
    out["share_cancelled_by_recipient"] = float(sum(p.cancelled_by_recipient for p in parts) / n) if n else None
    out["share_cancelled_by_provider"] = float(sum(p.cancelled_by_provider for p in parts) / n) if n else None
    minutes = float(sum((p.performed_minutes for p in parts), ExactSum()))
    granted = float(sum((p.granted_minutes for p in parts), ExactSum()))
    out["performed_hours"] = minutes / 60
    out["granted_hours"] = granted / 60
    out["performed_to_granted"] = minutes / granted if granted else None
    home_days = sum(p.home_days for p in parts)
    out["visits_per_recipient_day"] = float(performed / home_days) if home_days else None
    out["recipient_months"] = sum(p.recipient_months for p in parts)
    out["recipients"] = sum(p.recipients for p in parts)
    return out


def shared_indicators(ctx: SettlementContext, punctuality_tolerance_minutes: float = 15.0) -> dict[str, float | int | None]:
    """What happened, the same under every model (the region as one partition)."""
    return combine_shared([shared_summary(ctx, punctuality_tolerance_minutes)])
