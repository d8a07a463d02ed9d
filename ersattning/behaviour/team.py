"""The team rule: the staff of the replayed visits re-assigned so each recipient meets at most k staff.

For each recipient and provider the team is the k staff who served the
recipient most often in the replayed history (ties broken by the seed). A
visit by a team member keeps its staff; any other visit goes to a team member
chosen by the seed, so the team shares the recipient's visits. A recipient
served by k or fewer staff is left alone. Staff capacity is not modelled: the
rule says who would have come, not whether they had the time
(docs/models.md, "Behaviour assumptions"). Vectorised: sorting and
``searchsorted`` over all visits, no loop per visit or recipient.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ersattning.behaviour.seeded import mix
from ersattning.context import SettlementContext


@dataclass(frozen=True)
class StaffCounts:
    """Visits per (recipient-provider, staff) in the replayed history, sorted by key = group × n_staff + staff."""

    keys: np.ndarray  # int64, sorted
    counts: np.ndarray  # int64
    n_staff: int
    #: each replayed visit's (group, staff1) and (group, staff2) as an index into ``keys`` (-1: no such staff)
    pair1: np.ndarray
    pair2: np.ndarray


def group_of(ctx: SettlementContext) -> np.ndarray:
    """Each visit's recipient-provider group (recipient × n_providers + provider)."""
    return ctx.v_recipient.astype(np.int64) * max(len(ctx.provider_ids), 1) + ctx.v_provider


def staff_counts(ctx: SettlementContext) -> StaffCounts:
    """Who served whom in the replayed history (cached on the static context: computed once)."""
    cached = ctx.cache.get("behaviour.staff_counts")
    if isinstance(cached, StaffCounts):
        return cached
    s1 = ctx.visits["staff1"].cat.codes.to_numpy().astype(np.int64)
    s2 = ctx.visits["staff2"].cat.codes.to_numpy().astype(np.int64)
    n_s = max(int(ctx.visits["staff1"].cat.categories.size), 1)
    g = group_of(ctx)
    has1, has2 = s1 >= 0, s2 >= 0
    keys = np.concatenate([g[has1] * n_s + s1[has1], g[has2] * n_s + s2[has2]])
    uniq, inverse, counts = np.unique(keys, return_inverse=True, return_counts=True)
    pair1 = np.full(len(g), -1, dtype=np.int64)
    pair2 = np.full(len(g), -1, dtype=np.int64)
    n1 = int(has1.sum())
    pair1[has1] = inverse[:n1]
    pair2[has2] = inverse[n1:]
    out = StaffCounts(uniq, counts.astype(np.int64), n_s, pair1, pair2)
    ctx.cache["behaviour.staff_counts"] = out
    return out


@dataclass(frozen=True)
class Teams:
    """Each recipient-provider group's team: member keys (group × n_staff + staff) sorted, and where each group starts."""

    chosen: np.ndarray  # per key of StaffCounts: whether that staff member is in the group's team
    keys: np.ndarray
    groups: np.ndarray  # the distinct groups, sorted
    start: np.ndarray  # first member of each group in ``keys``
    size: np.ndarray  # members of each group
    n_staff: int

    def members(self, g: np.ndarray, staff: np.ndarray) -> np.ndarray:
        """Whether ``staff`` is in the team of group ``g`` (both per visit)."""
        if not len(self.keys):
            return np.zeros(len(g), dtype=bool)
        key = g * self.n_staff + staff
        pos = np.minimum(np.searchsorted(self.keys, key), len(self.keys) - 1)
        return (self.keys[pos] == key) & (staff >= 0)

    def position(self, g: np.ndarray, staff: np.ndarray) -> np.ndarray:
        """Index of ``staff`` within its group's members (staff known to be members)."""
        return np.searchsorted(self.keys, g * self.n_staff + staff) - self.start[self.group_index(g)]

    def group_index(self, g: np.ndarray) -> np.ndarray:
        return np.minimum(np.searchsorted(self.groups, g), max(len(self.groups) - 1, 0))

    def member(self, gi: np.ndarray, j: np.ndarray) -> np.ndarray:
        """Staff code of member ``j`` of group index ``gi``."""
        return self.keys[self.start[gi] + j] % self.n_staff


def teams(counts: StaffCounts, k: int, seed: int) -> Teams:
    """The k staff who served each group most often (ties broken by the seed)."""
    group = counts.keys // counts.n_staff
    order = np.lexsort((mix(counts.keys, seed, "team_rank"), -counts.counts, group))
    g_sorted = group[order]
    first = np.ones(len(order), dtype=bool)
    first[1:] = g_sorted[1:] != g_sorted[:-1]
    starts = np.flatnonzero(first)
    rank = np.arange(len(order)) - np.repeat(starts, np.diff(np.append(starts, len(order))))
    in_team = np.zeros(len(counts.keys), dtype=bool)
    in_team[order[rank < k]] = True
    chosen = counts.keys[in_team]  # still sorted
    cg = chosen // counts.n_staff
    groups, start, size = np.unique(cg, return_index=True, return_counts=True)
    return Teams(in_team, chosen, groups, start, size, counts.n_staff)


def _members(t: Teams, counts: StaffCounts, pair: np.ndarray, replayed: np.ndarray, g: np.ndarray, staff: np.ndarray) -> np.ndarray:
    """Whether ``staff`` is in the team of ``g``: a gather where the staff is the replayed one, a search elsewhere."""
    out = np.zeros(len(staff), dtype=bool)
    same = (staff == replayed) & (pair >= 0)
    out[same] = t.chosen[pair[same]]
    other = np.flatnonzero(~same & (staff >= 0))
    if len(other):
        out[other] = t.members(g[other], staff[other])
    return out


def reassign(ctx: SettlementContext, performed: np.ndarray, staff1: np.ndarray, staff2: np.ndarray, k: int, seed: int) -> tuple[np.ndarray, np.ndarray, int]:
    """New (staff1, staff2) codes for every visit under teams of ``k``, and how many visits changed staff.

    ``performed``, ``staff1`` and ``staff2`` describe the visits of ``ctx`` as
    transformed so far; the team comes from the replayed (static) history.
    """
    static = ctx.static if ctx.static is not None else ctx
    counts = staff_counts(static)
    t = teams(counts, max(int(k), 1), seed)
    g = group_of(ctx)
    visit_key = np.arange(len(g), dtype=np.uint64) if ctx.origin is None else ctx.origin.astype(np.uint64)
    if ctx.origin is None:  # the replayed visits: their (group, staff) pairs are known
        pair1, pair2 = counts.pair1, counts.pair2
        replayed1 = static.visits["staff1"].cat.codes.to_numpy()
        replayed2 = static.visits["staff2"].cat.codes.to_numpy()
    else:
        pair1 = pair2 = np.full(len(g), -1, dtype=np.int64)
        replayed1 = replayed2 = np.full(len(g), -2)
    new1, new2 = staff1.copy(), staff2.copy()
    out1 = np.flatnonzero(performed & (staff1 >= 0) & ~_members(t, counts, pair1, replayed1, g, staff1))
    if len(out1):
        gi = t.group_index(g[out1])
        ok = t.groups[gi] == g[out1]  # a group never seen in the replayed history has no team: left alone
        out1, gi = out1[ok], gi[ok]
        j = (mix(visit_key[out1], seed, "team_pick") % t.size[gi].astype(np.uint64)).astype(np.int64)
        new1[out1] = t.member(gi, j)
    two = np.flatnonzero(performed & (staff2 >= 0))
    if len(two):
        g2 = g[two]
        bad = ~_members(t, counts, pair2[two], replayed2[two], g2, staff2[two]) | (staff2[two] == new1[two])
        idx = two[bad]
        if len(idx):
            gi = t.group_index(g[idx])
            ok = (t.groups[gi] == g[idx]) & (t.size[gi] >= 2) & t.members(g[idx], new1[idx])
            idx, gi = idx[ok], gi[ok]
            p1 = t.position(g[idx], new1[idx])
            step = 1 + (mix(visit_key[idx], seed, "team_second") % (t.size[gi] - 1).astype(np.uint64)).astype(np.int64)
            new2[idx] = t.member(gi, (p1 + step) % t.size[gi])
        # a second staff that cannot come from the team must still differ from the first
        clash = two[new2[two] == new1[two]]
        new2[clash] = staff1[clash]
    changed = int(((new1 != staff1) | (new2 != staff2)).sum())
    return new1, new2, changed
