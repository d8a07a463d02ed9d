"""What care does under a model: behaviour assumptions, written in the scenario beside the model's params.

A replay is static: every model is settled on the same history. A behaviour
assumption states, as a dated ``Param`` with its source (or marked as an
assumption), how the history would differ under the model; ``apply`` derives
that counterfactual history from the projection (the store is never changed).
Everything is neutral by default: a missing figure changes nothing
(docs/models.md, "Behaviour assumptions")::

    behaviour:
      performed_change: {values: {2024-01-01: -0.36}, source: "Buurtzorg 108 vs 168 h per client"}
      consolidate: {short_minutes: 15, share: 0.5}
      team: {size: {values: {2024-01-01: 10}, source: "Sundsvall, Skönsmon: 10.5 staff met per month"}}
      provider_cancellations_change: -0.5
      registration: 0          # share of performed visits still registered with start and stop
      admin_minutes: {reconciliation: 0}
"""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field

from ersattning.domain import Category
from ersattning.parameters import Param


class Consolidation(BaseModel):
    """Fewer, longer visits: short visits of a recipient-day (same rate group) merged into one."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    short_minutes: Param = Field(description="performed visits of at most this many minutes count as short")
    share: Param = Field(description="share of recipient-days with two or more short visits (of one rate group) whose short visits are merged into one")
    time_change: Param | None = Field(None, description="relative change of the merged visit's minutes against the sum it replaces (none: the same total)")


class TeamRule(BaseModel):
    """Each recipient served by a team of ``size`` staff, preferring those who served them before."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    size: Param = Field(description="staff per recipient and provider (k); recipients served by k or fewer staff are left alone")


class Behaviour(BaseModel):
    """Behaviour assumptions of one model; every figure optional and neutral when missing."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    performed_change: Param | None = Field(None, description="relative change of performed minutes (-0.1: ten per cent fewer)")
    performed_change_by_category: dict[Category, Param] = Field(default_factory=dict, description="relative change of performed minutes by category (instead of performed_change)")
    consolidate: Consolidation | None = None
    team: TeamRule | None = None
    provider_cancellations_change: Param | None = Field(None, description="relative change in visits cancelled by the provider (-0.5: half of them performed as planned instead)")
    registration: Param | None = Field(None, description="share of performed visits still registered with start and stop (0: no registration)")
    admin_minutes: dict[str, Param] = Field(default_factory=dict, description="minutes per administrative act under this model (instead of admin.minutes_per_act)")
    seed: int | None = Field(None, description="seed of the deterministic choices (which visits, which staff); none: 1")

    @property
    def seed_value(self) -> int:
        return 1 if self.seed is None else self.seed

    def is_neutral(self) -> bool:
        """No assumption stated: the model settles the replayed history."""
        return self.performed_change is None and not self.performed_change_by_category and self.consolidate is None and self.team is None and self.provider_cancellations_change is None and self.registration is None and not self.admin_minutes

    def touches_history(self) -> bool:
        """Whether any assumption changes the visits (admin minutes alone do not)."""
        return not self.model_copy(update={"admin_minutes": {}}).is_neutral()
