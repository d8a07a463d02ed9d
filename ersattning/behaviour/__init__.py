"""Behaviour assumptions: what care would do under a model, as an explicit counterfactual history.

``apply(ctx, behaviour, seed)`` is the one entry point: the static settlement
context in, the counterfactual one out (docs/models.md, "Behaviour assumptions").
"""

from ersattning.behaviour.assumptions import Behaviour, Consolidation, TeamRule
from ersattning.behaviour.transform import apply

__all__ = ["Behaviour", "Consolidation", "TeamRule", "apply"]
