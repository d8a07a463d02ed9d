"""Synthetic home-care regions: realistic, seeded, written in whole batches.

Calibration defaults follow docs/calibration.md (national statistics and Stockholm
figures); each is a field of :class:`RegionSpec` with its source or marked as an
assumption, and every one can be overridden.

A region is generated per chunk of recipients, each chunk from its own seeded
random stream, all vectorized with numpy. Each chunk is appended in one
transaction, so a killed run leaves whole chunks only; a rerun with the same
spec skips the chunks already stored and completes the rest.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd
from pydantic import BaseModel, ConfigDict, Field, field_validator

from ersattning.calendar import TZ
from ersattning.domain import (
    CancelledBy,
    CancelReason,
    Category,
    Provider,
    Recipient,
    Registration,
    Visit,
    stable_id,
)
from ersattning.store import Store, StoreError
from ersattning.store.base import SYNTH_META_KEY
from ersattning.store.bulk import EventBatch, append_batch, encoder_for, random_uuids
from ersattning.uuids import uuid_hex

META_KEY = SYNTH_META_KEY


class RegionSpec(BaseModel):
    """Every figure of a synthetic region. Defaults carry their source in the description."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    recipients: int = Field(default=1000, ge=1, description="assumption: default size")
    months: int = Field(default=12, ge=1, le=120, description="assumption: one year")
    start: str = Field(default="2024-01", description="first month of service, YYYY-MM")
    providers: int | None = Field(default=None, ge=1, description="default: one per ~108 recipients (Stockholm ~14k recipients, ~130 providers; docs/calibration.md)")
    seed: int = Field(default=1, description="random seed; same spec and seed give the same store")
    chunk_recipients: int = Field(default=100, ge=1, description="recipients per append transaction")

    share_low_hours: float = Field(default=0.35, ge=0, le=1, description="share with 1–9 granted h/month (docs/calibration.md, national)")
    share_high_hours: float = Field(default=0.12, ge=0, le=1, description="share with > 80 granted h/month (docs/calibration.md, national)")
    mean_mid_hours: float = Field(default=22.0, gt=9, lt=80, description="assumption: mean of the 9–80 h band, calibrated so the overall mean is ~24–25 h (docs/calibration.md)")
    mean_high_hours: float = Field(default=100.0, gt=80, description="assumption: mean above 80 h")
    share_municipal_providers: float = Field(default=0.25, ge=0, le=1, description="assumption")
    share_rural: float = Field(default=0.15, ge=0, le=1, description="assumption")
    share_65_plus: float = Field(default=0.9, ge=0, le=1, description="assumption: most recipients are old")
    share_enrolled_during: float = Field(default=0.15, ge=0, le=1, description="assumption: new clients during the period")
    departure_rate_per_year: float = Field(default=0.15, ge=0, description="assumption: deaths and moves to nursing homes")
    provider_switch_rate_per_year: float = Field(default=0.03, ge=0, description="assumption")
    revision_rate_per_year: float = Field(default=0.10, ge=0, description="assumption: decisions revised upwards")
    stay_rate_per_year: float = Field(default=0.3, ge=0, description="assumption: hospital and short-term stays per recipient-year")
    mean_stay_days: float = Field(default=6.0, gt=0, description="assumption")
    share_double_staffed: float = Field(default=0.04, ge=0, le=1, description="share of visits with two staff (docs/calibration.md)")
    performed_ratio_private: float = Field(default=0.86, gt=0, le=1.5, description="performed/granted, private providers (docs/calibration.md)")
    performed_ratio_municipal: float = Field(default=0.79, gt=0, le=1.5, description="performed/granted, municipal providers (docs/calibration.md)")
    share_cancelled_by_recipient: float = Field(default=0.04, ge=0, le=1, description="assumption")
    share_short_notice: float = Field(default=0.4, ge=0, le=1, description="assumption: share of recipient cancellations with < 24 h notice")
    share_cancelled_by_provider: float = Field(default=0.01, ge=0, le=1, description="assumption")
    share_not_registered: float = Field(default=0.005, ge=0, le=1, description="assumption: planned visits with no registration at all")
    share_late_registration: float = Field(default=0.03, ge=0, le=1, description="assumption: registered manually 1–10 days later")
    share_corrected: float = Field(default=0.02, ge=0, le=1, description="assumption: end time corrected 1–20 days later")
    staff_per_recipient: float = Field(default=0.3, gt=0, description="docs/calibration.md")
    team_size: int = Field(default=10, ge=2, description="assumption: staff per team; with the shares below continuity is ~10–20 staff per 14 days")
    share_core_staff: float = Field(default=0.55, ge=0, le=1, description="assumption: visits made by the recipient's 3 regular staff")
    share_substitute: float = Field(default=0.12, ge=0, le=1, description="assumption: visits made by staff outside the team")

    @field_validator("start")
    @classmethod
    def _month(cls, v: str) -> str:
        try:
            pd.Period(v, freq="M")
        except Exception:
            raise ValueError("start must be a month, YYYY-MM") from None
        if len(v) != 7:
            raise ValueError("start must be a month, YYYY-MM")
        return v

    @property
    def n_providers(self) -> int:
        return self.providers or max(3, round(self.recipients / 108))

    @property
    def first_day(self) -> np.datetime64:
        return np.datetime64(self.start + "-01", "D")

    @property
    def end_day(self) -> np.datetime64:
        """Exclusive."""
        return (np.datetime64(self.start, "M") + self.months).astype("datetime64[D]")

    @property
    def years(self) -> float:
        return self.months / 12

    def fingerprint(self) -> str:
        return json.dumps(self.model_dump(), sort_keys=True)


@dataclass
class ProviderTable:
    code: np.ndarray  # object
    name: np.ndarray
    municipal: np.ndarray  # bool
    share: np.ndarray  # float, sums to 1
    n_staff: np.ndarray  # int
    staff_offset: np.ndarray  # index of first staff in the global staff table
    staff_ids: np.ndarray  # object: all staff pseudonyms
    team_size: int

    def n_teams(self) -> np.ndarray:
        return np.ceil(self.n_staff / self.team_size).astype(np.int64)


_PRIVATE_NAMES = ["Omsorgshuset", "Trygga Händer", "Vardagsstöd", "Hemma Bäst", "Nära Omsorg", "Livskvalitet", "Kärnhuset", "Stödet", "Solrosen", "Ekbacken"]
_DISTRICTS = ["Norr", "Söder", "Öster", "Väster", "Centrum", "Hamnen", "Skogen", "Ängen"]


_DOUBLE_AT_HIGH_NEED = 0.14  # assumption: the chance of two staff on a daytime personal-care visit above 80 h
_DOUBLE_CALIBRATED_SHARE = 0.04  # the region-wide share that chance gives on the default region


def _token(seed: int, kind: str, i: int) -> str:
    return hashlib.blake2b(f"{seed}:{kind}:{i}".encode(), digest_size=8).hexdigest()


def make_providers(spec: RegionSpec) -> ProviderTable:
    rng = np.random.default_rng([spec.seed, 0])
    p = spec.n_providers
    rank = np.arange(1, p + 1)
    weight = rank ** -0.8 * rng.uniform(0.8, 1.2, p)
    share = weight / weight.sum()
    n_mun = max(1, round(p * spec.share_municipal_providers)) if spec.share_municipal_providers > 0 else 0
    municipal = np.zeros(p, dtype=bool)
    municipal[np.linspace(0, p - 1, n_mun).round().astype(int)] = True
    codes = np.array([f"P{i + 1:03d}" for i in range(p)], dtype=object)
    names = []
    for i in range(p):
        if municipal[i]:
            names.append(f"Kommunal hemtjänst {_DISTRICTS[i % len(_DISTRICTS)]}" + (f" {i // len(_DISTRICTS) + 1}" if i >= len(_DISTRICTS) else ""))
        else:
            names.append(f"{_PRIVATE_NAMES[i % len(_PRIVATE_NAMES)]} Omsorg AB" + (f" {i // len(_PRIVATE_NAMES) + 1}" if i >= len(_PRIVATE_NAMES) else ""))
    expected = share * spec.recipients
    n_staff = np.maximum(spec.team_size, np.ceil(expected * spec.staff_per_recipient)).astype(np.int64)
    offset = np.concatenate([[0], np.cumsum(n_staff)[:-1]])
    staff_ids = np.array([_token(spec.seed, "staff", i) for i in range(int(n_staff.sum()))], dtype=object)
    return ProviderTable(codes, np.array(names, dtype=object), municipal, share, n_staff, offset, staff_ids, spec.team_size)


def _team_codes(providers: ProviderTable) -> list[tuple[str, ...]]:
    return [tuple(f"{c}-T{t + 1}" for t in range(n)) for c, n in zip(providers.code, providers.n_teams(), strict=True)]


def _utc(local: np.ndarray) -> np.ndarray:
    """Local Stockholm wall-clock datetime64 → UTC datetime64[s] (DST-correct)."""
    idx = pd.DatetimeIndex(local.astype("datetime64[s]"))
    aware = idx.tz_localize(TZ, ambiguous=np.zeros(len(idx), dtype=bool), nonexistent="shift_forward")
    return aware.tz_convert("UTC").tz_localize(None).values.astype("datetime64[s]")


def _granted_hours(rng: np.random.Generator, spec: RegionSpec, n: int) -> np.ndarray:
    band = rng.choice(3, size=n, p=[spec.share_low_hours, 1 - spec.share_low_hours - spec.share_high_hours, spec.share_high_hours])
    low = rng.uniform(1, 9, n)
    # truncated exponential on [9, 80) with the requested mean (solved numerically once)
    scale = _trunc_exp_scale(spec.mean_mid_hours - 9, 71)
    u = rng.uniform(0, 1, n)
    mid = 9 - scale * np.log(1 - u * (1 - np.exp(-71 / scale)))
    high = 80 + rng.exponential(spec.mean_high_hours - 80, n)
    return np.where(band == 0, low, np.where(band == 1, mid, np.minimum(high, 400)))


def _trunc_exp_scale(mean: float, width: float) -> float:
    lo, hi = 1e-3, 1e4
    for _ in range(100):
        s = (lo + hi) / 2
        m = s - width / np.expm1(width / s)
        lo, hi = (s, hi) if m < mean else (lo, s)
    return (lo + hi) / 2


def _round5(x: np.ndarray) -> np.ndarray:
    return (np.round(x / 5) * 5).astype(np.int64)


# Personal-care slot times (minutes after midnight) by number of visits per day.
_PC_TIMES = {
    1: [8 * 60],
    2: [8 * 60, 18 * 60],
    3: [7 * 60 + 30, 12 * 60, 18 * 60 + 30],
    4: [7 * 60 + 30, 12 * 60, 16 * 60 + 30, 21 * 60],
    5: [7 * 60 + 30, 11 * 60 + 30, 15 * 60 + 30, 18 * 60 + 30, 21 * 60 + 30],
    6: [7 * 60 + 30, 10 * 60 + 30, 13 * 60, 16 * 60, 19 * 60, 22 * 60 + 30],
}


@dataclass
class Chunk:
    """Tables of one chunk of recipients, before encoding."""

    index: int
    first_recipient: int
    batch: EventBatch


def generate_chunk(spec: RegionSpec, providers: ProviderTable, k: int) -> Chunk:
    """All events of recipients [k*B, (k+1)*B), deterministic in (spec, k)."""
    rng = np.random.default_rng([spec.seed, 1, k])
    r0 = k * spec.chunk_recipients
    R = min(spec.chunk_recipients, spec.recipients - r0)
    first, end = spec.first_day, spec.end_day
    D = int((end - first).astype(int))
    batch = EventBatch.empty()

    # -- recipients ------------------------------------------------------------
    pseudonyms = np.array([_token(spec.seed, "recipient", r0 + i) for i in range(R)], dtype=object)
    rid = np.array([stable_id("recipient", p).hex for p in pseudonyms], dtype="S32")
    old = rng.random(R) < spec.share_65_plus
    birth_year = np.where(old, rng.integers(1925, 1959, R), rng.integers(1950, 1990, R))
    rural = rng.random(R) < spec.share_rural
    new_client = rng.random(R) < spec.share_enrolled_during
    enrol = np.where(new_client, first + rng.integers(0, D, R).astype("m8[D]"), first - rng.integers(30, 2000, R).astype("m8[D]"))
    leaves = rng.random(R) < 1 - np.exp(-spec.departure_rate_per_year * spec.years)
    start_home = np.maximum(enrol, first)
    span = (end - start_home).astype(np.int64)
    depart = np.where(leaves & (span > 1), start_home + (1 + (rng.random(R) * np.maximum(span - 1, 1)).astype(np.int64)).astype("m8[D]"), np.datetime64("NaT"))
    active_end = np.where(np.isnat(depart), end, depart)  # exclusive: no visits from the departure day
    prov = rng.choice(len(providers.code), size=R, p=providers.share)
    switches = rng.random(R) < 1 - np.exp(-spec.provider_switch_rate_per_year * spec.years)
    active_days = (active_end - start_home).astype(np.int64)
    switch_day = np.where(switches & (active_days > 30), start_home + (15 + (rng.random(R) * np.maximum(active_days - 30, 1)).astype(np.int64)).astype("m8[D]"), np.datetime64("NaT"))
    prov2 = np.where(np.isnat(switch_day), prov, (prov + 1 + rng.integers(0, max(1, len(providers.code) - 1), R)) % len(providers.code))
    n_teams = providers.n_teams()
    team = (rng.random(R) * n_teams[prov]).astype(np.int64)
    team2 = (rng.random(R) * n_teams[prov2]).astype(np.int64)

    hours = _granted_hours(rng, spec, R)
    month_min = hours * 60
    svc = np.minimum(month_min, np.where(hours < 9, month_min, rng.uniform(4, 10, R) * 60))
    pc = month_min - svc
    cat_min = {  # granted minutes per month by category
        Category.personal_care: _round5(pc),
        Category.cleaning: _round5(svc * 0.5),
        Category.shopping: _round5(svc * 0.3),
        Category.laundry: _round5(svc * 0.2),
    }
    revised = rng.random(R) < 1 - np.exp(-spec.revision_rate_per_year * spec.years)
    revised &= (cat_min[Category.personal_care] > 0) & (active_days > 20)
    revision_day = np.where(revised, start_home + (10 + (rng.random(R) * np.maximum(active_days - 20, 1)).astype(np.int64)).astype("m8[D]"), np.datetime64("NaT"))
    revision_factor = rng.uniform(1.15, 1.5, R)

    # stays: at most two, not overlapping, ended before departure
    n_stays = np.minimum(rng.poisson(spec.stay_rate_per_year * spec.years, R), 2)
    stay_rows: list[tuple[int, np.datetime64, np.datetime64, str]] = []
    stay_start_off = rng.random((R, 2))
    stay_len = 1 + rng.geometric(1 / spec.mean_stay_days, (R, 2))
    stay_kind = rng.random((R, 2)) < 0.75
    for i in np.flatnonzero(n_stays).tolist():  # a few per hundred recipients
        home_days = int(active_days[i])
        if home_days < 10:
            continue
        cursor = 0
        for j in range(int(n_stays[i])):
            s_off = cursor + int(stay_start_off[i, j] * (home_days - cursor) / (n_stays[i] - j))
            e_off = min(s_off + int(stay_len[i, j]), home_days - 1)
            if e_off <= s_off:
                break
            stay_rows.append((i, start_home[i] + np.timedelta64(s_off, "D"), start_home[i] + np.timedelta64(e_off, "D"), "hospital" if stay_kind[i, j] else "short_term"))
            cursor = e_off + 1
            if cursor >= home_days - 2:
                break

    # -- visits: weekly templates expanded over the days at home ----------------
    slot_r, slot_time, slot_cat, slot_min, slot_days, slot_double = [], [], [], [], [], []
    pc_daily = cat_min[Category.personal_care] / 30.44
    k_daily = np.clip(np.round(pc_daily / 30), 1, 6).astype(np.int64)
    daily = pc_daily >= 10
    per_week = np.where(daily, 7, np.clip(np.round(pc_daily * 7 / 20), 1, 6)).astype(np.int64)
    high_need = hours > 80
    # Double staffing falls on daytime personal care of the most dependent (> 80 h): a chance of 14 % there
    # gives the region's 4 % (calibrated on the default region), scaled for another share_double_staffed.
    p_double_high_need = min(1.0, _DOUBLE_AT_HIGH_NEED * spec.share_double_staffed / _DOUBLE_CALIBRATED_SHARE)
    for kk in range(1, 7):
        sel = np.flatnonzero((k_daily == kk) & (cat_min[Category.personal_care] > 0))
        if not len(sel):
            continue
        for t in _PC_TIMES[kk]:
            slot_r.append(sel)
            slot_time.append(np.maximum(0, t + rng.integers(-3, 4, len(sel)) * 5))
            slot_cat.append(np.full(len(sel), 0))
            minutes = np.where(daily[sel], pc_daily[sel] / kk, 20)
            slot_min.append(np.maximum(10, _round5(minutes)))
            wk = np.zeros((len(sel), 7), dtype=bool)
            for row, n_days in enumerate(per_week[sel]):
                wk[row, rng.choice(7, n_days, replace=False)] = True
            slot_days.append(wk)
            p_double = np.where(high_need[sel] & (t < 22 * 60) & (t > 6 * 60), p_double_high_need, 0.0)
            slot_double.append(rng.random(len(sel)) < p_double)
    svc_plan = [(Category.cleaning, 2, 20, 180), (Category.shopping, 1, 15, 90), (Category.laundry, 2, 15, 90)]
    for code, (cat, every_weeks, lo, hi) in enumerate(svc_plan, start=1):
        per_visit = cat_min[cat] / (4.35 / every_weeks)
        sel = np.flatnonzero(cat_min[cat] >= 15)
        if not len(sel):
            continue
        slot_r.append(sel)
        slot_time.append(9 * 60 + rng.integers(0, 12, len(sel)) * 30)
        slot_cat.append(np.full(len(sel), code))
        slot_min.append(np.clip(_round5(per_visit[sel]), lo, hi))
        wk = np.zeros((len(sel), 7), dtype=bool)
        wk[np.arange(len(sel)), rng.integers(0, 5, len(sel))] = True
        # every-other-week slots: mark with a phase; expanded below
        slot_days.append(wk * (every_weeks * 10 + rng.integers(0, every_weeks, len(sel)))[:, None])
        slot_double.append(np.zeros(len(sel), dtype=bool))

    s_r = np.concatenate(slot_r)
    s_time = np.concatenate(slot_time)
    s_cat = np.concatenate(slot_cat)
    s_min = np.concatenate(slot_min)
    s_days = np.concatenate([d.astype(np.int64) for d in slot_days])  # 0 = no, 1 = weekly, 10x+phase = every x weeks
    s_double = np.concatenate(slot_double)

    days = first + np.arange(D).astype("m8[D]")
    weekday = ((days.astype(np.int64) + 3) % 7)  # 1970-01-01 was a Thursday; Monday = 0
    week_no = (days.astype(np.int64) + 3) // 7
    rule = s_days[:, weekday]  # slots × days
    every = rule // 10
    on = (rule == 1) | ((rule >= 10) & (week_no[None, :] % np.maximum(every, 1) == rule % 10))
    home_from = (start_home - first).astype(np.int64)[s_r]
    home_to = (active_end - first).astype(np.int64)[s_r]
    day_idx = np.arange(D)
    on &= (day_idx[None, :] >= home_from[:, None]) & (day_idx[None, :] < home_to[:, None])
    vs, vd = np.nonzero(on)  # visit = (slot, day)
    V = len(vs)
    v_r = s_r[vs]
    v_day = days[vd]
    v_cat_code = s_cat[vs]
    v_min = s_min[vs].copy()
    rev = ~np.isnat(revision_day[v_r]) & (v_day >= revision_day[v_r]) & (v_cat_code == 0)
    v_min[rev] = np.maximum(10, _round5(v_min[rev] * revision_factor[v_r[rev]]))
    local_start = v_day.astype("datetime64[m]") + s_time[vs].astype("m8[m]")
    v_start = _utc(local_start)
    switched = ~np.isnat(switch_day[v_r]) & (v_day >= switch_day[v_r])
    v_prov = np.where(switched, prov2[v_r], prov[v_r])
    v_team = np.where(switched, team2[v_r], team[v_r])
    v_double = s_double[vs]

    # outcomes
    stay_cancel = np.zeros(V, dtype=bool)
    stay_start_at = np.full(V, np.datetime64("NaT"), dtype="datetime64[D]")
    for i, s, e, _kind in stay_rows:
        m = (v_r == i) & (v_day >= s) & (v_day < e)
        stay_cancel |= m
        stay_start_at[m] = s
    u = rng.random(V)
    by_recipient = ~stay_cancel & (u < spec.share_cancelled_by_recipient)
    by_provider = ~stay_cancel & ~by_recipient & (u < spec.share_cancelled_by_recipient + spec.share_cancelled_by_provider)
    not_registered = ~stay_cancel & ~by_recipient & ~by_provider & (u > 1 - spec.share_not_registered)
    performed = ~(stay_cancel | by_recipient | by_provider | not_registered)

    # -- events -----------------------------------------------------------------
    vid = uuid_hex(random_uuids(rng, V))
    recorded_plan = v_start - (rng.integers(7, 22, V) * 86400).astype("m8[s]")
    v_rid = rid[v_r]
    prov_codes = providers.code
    team_names = _team_labels(prov_codes, v_prov, v_team)
    cats = [Category.personal_care.value, Category.cleaning.value, Category.shopping.value, Category.laundry.value]
    batch.add(
        encoder_for(Visit.Planned),
        vid,
        1,
        {
            "timestamp": recorded_plan,
            "recipient_id": pd.Categorical.from_codes(*_codes(v_rid)),
            "provider": pd.Categorical.from_codes(v_prov, list(prov_codes)),
            "team": team_names,
            "category": pd.Categorical.from_codes(v_cat_code, cats),
            "planned_start": v_start,
            "planned_minutes": v_min,
            "staff_planned": np.where(v_double, 2, 1),
        },
    )

    # cancellations
    notice_min = np.where(
        rng.random(V) < spec.share_short_notice,
        rng.integers(30, 24 * 60, V),
        rng.integers(25 * 60, 7 * 24 * 60, V),
    )
    notice_min = np.where(by_provider, rng.integers(60, 12 * 60, V), notice_min)
    cancelled_at = v_start - (notice_min * 60).astype("m8[s]")
    stay_cancel_at = _utc(stay_start_at.astype("datetime64[m]") + np.timedelta64(7 * 60, "m"))
    cancelled_at = np.where(stay_cancel, np.minimum(stay_cancel_at, v_start), cancelled_at)
    cancel = stay_cancel | by_recipient | by_provider
    reason = np.where(stay_cancel, 2, np.where(by_provider, 3, np.where(rng.random(V) < 0.6, 0, 1)))
    batch.add(
        encoder_for(Visit.Cancelled),
        vid[cancel],
        2,
        {
            "timestamp": cancelled_at[cancel],
            "by": pd.Categorical.from_codes(np.where(by_provider[cancel], 1, 0), [CancelledBy.recipient.value, CancelledBy.provider.value]),
            "reason": pd.Categorical.from_codes(reason[cancel], [CancelReason.declined.value, CancelReason.away.value, CancelReason.stay.value, CancelReason.staffing.value]),
            "cancelled_at": cancelled_at[cancel],
        },
    )

    # performed visits
    municipal = providers.municipal[v_prov]
    target = np.where(municipal, spec.performed_ratio_municipal, spec.performed_ratio_private)
    expected_done = 1 - spec.share_cancelled_by_recipient - spec.share_cancelled_by_provider - spec.share_not_registered - 0.015
    factor = np.clip(target / expected_done * rng.lognormal(0, 0.18, V) / np.exp(0.18**2 / 2), 0.25, 2.0)
    duration_s = np.maximum(60, np.round(v_min * factor * 60)).astype(np.int64)
    actual_start = v_start + (np.clip(rng.normal(0, 8, V), -45, 60) * 60).astype(np.int64).astype("m8[s]") + rng.integers(0, 60, V).astype("m8[s]")
    actual_end = actual_start + duration_s.astype("m8[s]")
    corrected = performed & (rng.random(V) < spec.share_corrected)
    registered_end = actual_end + np.where(corrected, rng.integers(30, 240, V) * 60, 0).astype("m8[s]")
    staff1, staff2 = _staff(rng, spec, providers, v_r, v_prov, v_team, v_double, R)
    late = performed & (rng.random(V) < spec.share_late_registration)
    reg = np.where(late, 2, np.where(rng.random(V) < 0.17, 1, 0))
    recorded_perf = registered_end + np.where(late, rng.integers(1, 11, V) * 86400, rng.integers(5, 300, V)).astype("m8[s]")
    staff_tuples = _staff_tuples(providers.staff_ids, staff1[performed], staff2[performed])
    batch.add(
        encoder_for(Visit.Performed),
        vid[performed],
        2,
        {
            "timestamp": recorded_perf[performed],
            "actual_start": actual_start[performed],
            "actual_end": registered_end[performed],
            "staff": staff_tuples,
            "registration": pd.Categorical.from_codes(reg[performed], [Registration.mobile.value, Registration.nfc.value, Registration.manual.value]),
        },
    )
    corr_at = recorded_perf + (rng.integers(1, 21, V) * 86400).astype("m8[s]")
    batch.add(
        encoder_for(Visit.Corrected),
        vid[corrected],
        3,
        {
            "timestamp": corr_at[corrected],
            "actual_start": actual_start[corrected],
            "actual_end": actual_end[corrected],
            "reason": np.full(int(corrected.sum()), "forgot to register end", dtype=object),
        },
    )

    _recipient_events(batch, spec, providers, rid, pseudonyms, birth_year, rural, enrol, depart, prov, switch_day, prov2, cat_min, revision_day, revision_factor, stay_rows, rng)
    return Chunk(index=k, first_recipient=r0, batch=batch)


def _codes(values: np.ndarray) -> tuple[np.ndarray, list[str]]:
    uniques, codes = np.unique(values, return_inverse=True)
    return codes, [u.decode() for u in uniques]


def _team_labels(prov_codes: np.ndarray, v_prov: np.ndarray, v_team: np.ndarray) -> pd.Categorical:
    key = v_prov * 10_000 + v_team
    uniq, inv = np.unique(key, return_inverse=True)
    labels = [f"{prov_codes[k // 10_000]}-T{k % 10_000 + 1}" for k in uniq]
    return pd.Categorical.from_codes(inv, labels)


def _staff(rng: np.random.Generator, spec: RegionSpec, providers: ProviderTable, v_r: np.ndarray, v_prov: np.ndarray, v_team: np.ndarray, v_double: np.ndarray, R: int) -> tuple[np.ndarray, np.ndarray]:
    """Global staff index of the first and (for double staffing) second staff, -1 when none."""
    V = len(v_r)
    ts = providers.team_size
    team_first = v_team * ts
    team_n = np.minimum(ts, providers.n_staff[v_prov] - team_first)
    core = rng.integers(0, 1 << 30, (R, 3))  # each recipient's three regular staff (positions in the team)
    u = rng.random(V)
    pick_core = core[v_r, rng.integers(0, 3, V)] % team_n
    pick_team = rng.integers(0, 1 << 30, V) % team_n
    local = np.where(u < spec.share_core_staff, pick_core, pick_team)
    s1 = providers.staff_offset[v_prov] + team_first + local
    sub = u > 1 - spec.share_substitute
    s1 = np.where(sub, providers.staff_offset[v_prov] + rng.integers(0, 1 << 30, V) % providers.n_staff[v_prov], s1)
    other = (local + 1 + rng.integers(0, 1 << 30, V) % np.maximum(team_n - 1, 1)) % team_n
    s2 = np.where(v_double, providers.staff_offset[v_prov] + team_first + other, -1)
    s2 = np.where(s2 == s1, -1, s2)
    return s1, s2


def _staff_tuples(staff_ids: np.ndarray, s1: np.ndarray, s2: np.ndarray) -> pd.Categorical:
    key = (s1.astype(np.int64) + 1) * (len(staff_ids) + 1) + (s2.astype(np.int64) + 1)
    uniq, inv = np.unique(key, return_inverse=True)
    n = len(staff_ids) + 1
    labels = []
    for k in uniq.tolist():
        a, b = k // n - 1, k % n - 1
        labels.append((staff_ids[a],) if b < 0 else (staff_ids[a], staff_ids[b]))
    return pd.Categorical.from_codes(inv, pd.Index(labels, dtype=object, tupleize_cols=False))


def _recipient_events(
    batch: EventBatch,
    spec: RegionSpec,
    providers: ProviderTable,
    rid: np.ndarray,
    pseudonyms: np.ndarray,
    birth_year: np.ndarray,
    rural: np.ndarray,
    enrol: np.ndarray,
    depart: np.ndarray,
    prov: np.ndarray,
    switch_day: np.ndarray,
    prov2: np.ndarray,
    cat_min: dict[Category, np.ndarray],
    revision_day: np.ndarray,
    revision_factor: np.ndarray,
    stay_rows: list[tuple[int, Any, Any, str]],
    rng: np.random.Generator,
) -> None:
    """Recipient aggregates: events in domain order, versions counted per recipient."""
    R = len(rid)
    rows: list[tuple[int, Any, int, str, dict[str, Any]]] = []  # (recipient, day, order, kind, fields)
    for i in range(R):
        d0 = enrol[i]
        rows.append((i, d0, 0, "enrolled", {}))
        rows.append((i, d0, 1, "chosen", {"provider": providers.code[prov[i]], "chosen_on": d0}))
        for c, (cat, minutes) in enumerate(cat_min.items()):
            if minutes[i] > 0:
                rows.append((i, d0, 2 + c, "granted", {"decision_id": f"B{pseudonyms[i][:8]}-{cat.value}", "category": cat.value, "granted_minutes": int(minutes[i]), "valid_from": d0}))
        if not np.isnat(revision_day[i]):
            cat = Category.personal_care
            rows.append((i, revision_day[i], 10, "revised", {"decision_id": f"B{pseudonyms[i][:8]}-{cat.value}", "granted_minutes": int(_round5(np.array([cat_min[cat][i] * revision_factor[i]]))[0]), "valid_from": revision_day[i]}))
        if not np.isnat(switch_day[i]):
            rows.append((i, switch_day[i], 11, "chosen", {"provider": providers.code[prov2[i]], "chosen_on": switch_day[i]}))
        if not np.isnat(depart[i]):
            for c, (cat, minutes) in enumerate(cat_min.items()):
                if minutes[i] > 0:
                    rows.append((i, depart[i], 20 + c, "ended", {"decision_id": f"B{pseudonyms[i][:8]}-{cat.value}", "ended_on": depart[i]}))
            rows.append((i, depart[i], 30, "departed", {"departed_on": depart[i], "reason": ["deceased", "nursing_home", "moved"][int(pseudonyms[i][-1], 16) % 3]}))
    for n, (i, s, e, kind) in enumerate(stay_rows):
        sid = f"S{pseudonyms[i][:8]}-{n}"
        rows.append((i, s, 12, "stay_started", {"stay_id": sid, "kind": kind, "start": s}))
        rows.append((i, e, 13, "stay_ended", {"stay_id": sid, "end": e}))
    rows.sort(key=lambda r: (r[0], r[1], r[2]))
    version = np.zeros(len(rows), dtype=np.int64)
    last, v = -1, 0
    for n, r in enumerate(rows):
        v = v + 1 if r[0] == last else 1
        last = r[0]
        version[n] = v
    days = np.array([r[1] for r in rows], dtype="datetime64[D]")
    # recorded the morning the thing was decided or reported (08:00–11:59 local)
    recorded = _utc(days.astype("datetime64[m]") + (8 * 60 + rng.integers(0, 240, len(rows))).astype("m8[m]"))
    kinds = np.array([r[3] for r in rows], dtype=object)
    who = np.array([r[0] for r in rows], dtype=np.int64)
    specs: dict[str, tuple[type, Callable[[np.ndarray], dict[str, Any]]]] = {
        "enrolled": (Recipient.Enrolled, lambda ix: {"pseudonym": pseudonyms[who[ix]], "birth_year": birth_year[who[ix]], "area": np.where(rural[who[ix]], "rural", "urban"), "enrolled_on": days[ix]}),
        "chosen": (Recipient.ProviderChosen, lambda ix: _fields(rows, ix, ["provider", "chosen_on"])),
        "granted": (Recipient.DecisionGranted, lambda ix: {**_fields(rows, ix, ["decision_id", "category", "granted_minutes", "valid_from"]), "per": np.full(len(ix), "month", dtype=object), "valid_to": np.full(len(ix), np.datetime64("NaT"), dtype="datetime64[D]")}),
        "revised": (Recipient.DecisionRevised, lambda ix: _fields(rows, ix, ["decision_id", "granted_minutes", "valid_from"])),
        "ended": (Recipient.DecisionEnded, lambda ix: _fields(rows, ix, ["decision_id", "ended_on"])),
        "stay_started": (Recipient.StayStarted, lambda ix: _fields(rows, ix, ["stay_id", "kind", "start"])),
        "stay_ended": (Recipient.StayEnded, lambda ix: _fields(rows, ix, ["stay_id", "end"])),
        "departed": (Recipient.Departed, lambda ix: _fields(rows, ix, ["departed_on", "reason"])),
    }
    for kind, (event_class, make) in specs.items():
        ix = np.flatnonzero(kinds == kind)
        if len(ix):
            batch.add(encoder_for(event_class), rid[who[ix]], version[ix], {"timestamp": recorded[ix], **make(ix)})


def _fields(rows: list[tuple[int, Any, int, str, dict[str, Any]]], ix: np.ndarray, names: list[str]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for name in names:
        vals = [rows[j][4][name] for j in ix]
        if vals and isinstance(vals[0], np.datetime64):
            out[name] = np.array(vals, dtype="datetime64[D]")
        elif vals and isinstance(vals[0], (int, np.integer)):
            out[name] = np.array(vals, dtype=np.int64)
        else:
            out[name] = np.array(vals, dtype=object)
    return out


def provider_batch(spec: RegionSpec, providers: ProviderTable) -> EventBatch:
    batch = EventBatch.empty()
    p = len(providers.code)
    ids = np.array([stable_id("provider", c).hex for c in providers.code], dtype="S32")
    registered = _utc(np.full(p, (spec.first_day - np.timedelta64(365, "D")).astype("datetime64[m]") + np.timedelta64(9 * 60, "m")))
    batch.add(
        encoder_for(Provider.Registered),
        ids,
        1,
        {
            "timestamp": registered,
            "code": providers.code,
            "name": providers.name,
            "ownership": np.where(providers.municipal, "municipal", "private").astype(object),
            "teams": pd.Series(_team_codes(providers), dtype=object),
        },
    )
    return batch


@dataclass
class SynthReport:
    chunks_total: int
    chunks_written: int
    chunks_skipped: int
    events_written: int
    seconds_generating: float
    seconds_appending: float


def synthesize(store: Store, spec: RegionSpec, progress: Callable[[int, int], None] | None = None) -> SynthReport:
    """Write the region into ``store``; resumes a region interrupted earlier."""
    import time

    fingerprint = spec.fingerprint()
    existing = store.get_meta(META_KEY)
    if existing is not None and existing != fingerprint:
        raise StoreError("the store already holds a synthetic region made with other parameters; use a new store")
    if existing is None and store.position() > 0:
        raise StoreError("the store already holds events; a synthetic region goes into a new store")
    if existing is None:
        store.set_meta(META_KEY, fingerprint)
    providers = make_providers(spec)
    n_chunks = -(-spec.recipients // spec.chunk_recipients)
    written = skipped = events = 0
    t_gen = t_app = 0.0
    first_provider = stable_id("provider", str(providers.code[0]))
    if not store.contains(first_provider, 1):
        t = time.perf_counter()
        batch = provider_batch(spec, providers)
        t_gen += time.perf_counter() - t
        t = time.perf_counter()
        events += append_batch(store, batch)
        t_app += time.perf_counter() - t
    for k in range(n_chunks):
        first_pseudonym = _token(spec.seed, "recipient", k * spec.chunk_recipients)
        if store.contains(stable_id("recipient", first_pseudonym), 1):
            skipped += 1
        else:
            t = time.perf_counter()
            chunk = generate_chunk(spec, providers, k)
            t_gen += time.perf_counter() - t
            t = time.perf_counter()
            events += append_batch(store, chunk.batch)
            t_app += time.perf_counter() - t
            written += 1
        if progress:
            progress(k + 1, n_chunks)
    return SynthReport(n_chunks, written, skipped, events, t_gen, t_app)


@dataclass(frozen=True)
class RegionProgress:
    """How much of the synthetic region recorded in a store is written: batches of recipients, in order."""

    spec: RegionSpec
    batches_stored: int
    batches: int

    @property
    def finished(self) -> bool:
        return self.batches_stored == self.batches

    def command(self, store_url: str) -> str:
        """The ``ersattning synth`` command that writes (or finishes) this region."""
        default = RegionSpec()
        parts = ["ersattning synth", f"--recipients {self.spec.recipients}", f"--months {self.spec.months}", f"--start {self.spec.start}", f"--seed {self.spec.seed}"]
        parts += [f"--providers {self.spec.providers}"] if self.spec.providers is not None else []
        figures = {"recipients", "months", "start", "seed", "providers", "chunk_recipients"}
        parts += [f"--set {k}={v}" for k, v in self.spec.model_dump().items() if k not in figures and v != getattr(default, k)]
        return " ".join([*parts, f"--store {store_url}"])


def region_progress(store: Store) -> RegionProgress | None:
    """The synthetic region the store records (``synth`` and a demo region record their spec before writing), and
    how many of its batches are stored; None for a store without one. A region is written batch by batch, each
    batch whole or not at all, and resumed in order, so a batch is stored when its first recipient is."""
    text = store.get_meta(META_KEY)
    if text is None:
        return None
    try:
        spec = RegionSpec.model_validate_json(text)
    except ValueError:  # recorded by a version with other figures: it cannot be resumed by this one anyway
        return None
    n_chunks = -(-spec.recipients // spec.chunk_recipients)
    providers = stable_id("provider", str(make_providers(spec).code[0]))
    if not store.contains(providers, 1):
        return RegionProgress(spec, 0, n_chunks)
    stored = sum(store.contains(stable_id("recipient", _token(spec.seed, "recipient", k * spec.chunk_recipients)), 1) for k in range(n_chunks))
    return RegionProgress(spec, stored, n_chunks)


def iter_chunks(spec: RegionSpec) -> Iterator[EventBatch]:
    """Every batch of a region (providers first), for benchmarks and tests."""
    providers = make_providers(spec)
    yield provider_batch(spec, providers)
    for k in range(-(-spec.recipients // spec.chunk_recipients)):
        yield generate_chunk(spec, providers, k).batch
