"""Reimbursement models: one module each, found by ``kind``.

Bundled kinds are ``performed_time``, ``granted_time``, ``time_budget`` and
``trust_based``. A model outside the package is any :class:`ReimbursementModel`
subclass, taken only from an installed plugin (the entry-point group
``ersattning.models``: ``kind: NAME`` or the ``module:Class`` it names) or
from a module the user allowed on the command line (``--allow-plugin MODULE``).
Anything else is refused before any module is imported: a scenario file runs no
code by surprise (docs/models.md, "A model outside the package").
"""

from __future__ import annotations

import importlib
from collections.abc import Iterable
from importlib.metadata import entry_points

from ersattning.models.base import Rates, ReimbursementModel, Settlement
from ersattning.models.granted_time import GrantedTime
from ersattning.models.performed_time import PerformedTime
from ersattning.models.time_budget import TimeBudget
from ersattning.models.trust_based import TrustBased

BUNDLED: dict[str, type[ReimbursementModel]] = {m.kind: m for m in (PerformedTime, GrantedTime, TimeBudget, TrustBased)}


#: the entry-point group an installed plugin registers its models under (name = "module:Class")
PLUGIN_GROUP = "ersattning.models"


class UnknownModel(ValueError):
    pass


def installed_plugins() -> dict[str, str]:
    """The installed plugins' models, name → ``module:Class`` (read from the distributions' metadata; nothing imported)."""
    return {ep.name: f"{ep.module}:{ep.attr}" for ep in entry_points(group=PLUGIN_GROUP)}  # without any [extras]


def _allowed(module_name: str, allow: Iterable[str]) -> bool:
    """``--allow-plugin MODULE`` lets in that module and the modules of that package."""
    return any(module_name == m or module_name.startswith(m + ".") for m in allow)


def resolve_kind(kind: str, allow: Iterable[str] = ()) -> type[ReimbursementModel]:
    """The model class for a bundled kind, an installed plugin (by name or by its ``module:Class``), or a
    ``module:Class`` whose module ``allow`` names. Anything else is refused before importing anything."""
    if kind in BUNDLED:
        return BUNDLED[kind]
    plugins = installed_plugins()
    allow = tuple(allow)
    path = plugins.get(kind, kind)
    module_name, colon, class_name = path.partition(":")
    if not (kind in plugins or path in plugins.values() or (colon and _allowed(module_name, allow))):
        raise UnknownModel(_refusal(kind, plugins))
    try:
        cls = getattr(importlib.import_module(module_name), class_name)
    except (ImportError, AttributeError) as e:
        raise UnknownModel(f"cannot load model {kind!r}: {e}") from None
    if not (isinstance(cls, type) and issubclass(cls, ReimbursementModel)):
        raise UnknownModel(f"{kind!r} is not a ReimbursementModel")
    return cls


def _refusal(kind: str, plugins: dict[str, str]) -> str:
    installed = f"installed plugins: {', '.join(sorted(plugins))}" if plugins else "no plugin is installed"
    module_name, colon, _ = kind.partition(":")
    allow = f"--allow-plugin {module_name}" if colon and module_name else "--allow-plugin MODULE with kind: MODULE:CLASS"
    return (
        f"unknown model kind {kind!r}: neither bundled ({', '.join(BUNDLED)}) nor an installed plugin ({installed}); nothing was imported. "
        f"Install the model as a plugin (entry-point group {PLUGIN_GROUP!r}), or allow its module explicitly: {allow}"
    )


__all__ = ["BUNDLED", "PLUGIN_GROUP", "GrantedTime", "PerformedTime", "Rates", "ReimbursementModel", "Settlement", "TimeBudget", "TrustBased", "UnknownModel", "installed_plugins", "resolve_kind"]
