"""From replay to decision: sensitivity (tornado), sweeps, break-even and uncertainty (docs/models.md).

Every analysis runs on one comparison's context, built once; each point
re-settles only what its parameters touch (engine.py). Parameters are named by
dotted paths into the scenario (paths.py).
"""

from ersattning.analysis.breakeven import BreakEven, break_even, break_even_summary, break_evens
from ersattning.analysis.engine import Evaluator, Outcome
from ersattning.analysis.paths import PathError, scenario_parameters, with_values
from ersattning.analysis.sensitivity import Sensitivity, sensitivity
from ersattning.analysis.sweep import Axis, Sweep, sweep
from ersattning.analysis.uncertainty import Uncertainty, uncertainty

__all__ = [
    "Axis", "BreakEven", "Evaluator", "Outcome", "PathError", "Sensitivity", "Sweep", "Uncertainty",
    "break_even", "break_even_summary", "break_evens", "scenario_parameters", "sensitivity", "sweep", "uncertainty", "with_values",
]  # fmt: skip
