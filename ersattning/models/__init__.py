"""Reimbursement models: one module each, found by ``kind``.

Bundled kinds are ``performed_time``, ``granted_time``, ``time_budget`` and
``trust_based``. A third-party model is any :class:`ReimbursementModel`
subclass, named by import path: ``kind: mypkg.models:MyModel``.
"""

from __future__ import annotations

import importlib

from ersattning.models.base import Rates, ReimbursementModel, Settlement
from ersattning.models.granted_time import GrantedTime
from ersattning.models.performed_time import PerformedTime
from ersattning.models.time_budget import TimeBudget
from ersattning.models.trust_based import TrustBased

BUNDLED: dict[str, type[ReimbursementModel]] = {m.kind: m for m in (PerformedTime, GrantedTime, TimeBudget, TrustBased)}


class UnknownModel(ValueError):
    pass


def resolve_kind(kind: str) -> type[ReimbursementModel]:
    """The model class for a bundled kind or a ``module:Class`` import path."""
    if kind in BUNDLED:
        return BUNDLED[kind]
    if ":" not in kind:
        raise UnknownModel(f"unknown model kind {kind!r}; bundled kinds: {', '.join(BUNDLED)}; or give module:Class")
    module_name, _, class_name = kind.partition(":")
    try:
        cls = getattr(importlib.import_module(module_name), class_name)
    except (ImportError, AttributeError) as e:
        raise UnknownModel(f"cannot load model {kind!r}: {e}") from None
    if not (isinstance(cls, type) and issubclass(cls, ReimbursementModel)):
        raise UnknownModel(f"{kind!r} is not a ReimbursementModel")
    return cls


__all__ = ["BUNDLED", "GrantedTime", "PerformedTime", "Rates", "ReimbursementModel", "Settlement", "TimeBudget", "TrustBased", "UnknownModel", "resolve_kind"]
