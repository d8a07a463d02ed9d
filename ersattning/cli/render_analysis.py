"""Terminal tables and CSV for sensitivity, sweeps, uncertainty and break-even (ersattning.analysis).

Hidden figures (a region of fewer than 5 recipients, suppression.py) are the
suppression mark, as in ``compare``'s outputs.
"""

from __future__ import annotations

import csv
import io
from typing import Any

import pandas as pd

from ersattning.analysis import Sensitivity, Sweep, Uncertainty
from ersattning.analysis.sensitivity import FIGURES
from ersattning.suppression import SUPPRESSED_MARK


def _v(x: Any, digits: int = 0, *, scale: float = 1.0, sign: bool = False) -> str:
    if x is None or (isinstance(x, float) and x != x):
        return SUPPRESSED_MARK
    if isinstance(x, str):
        return x
    return f"{x / scale:{'+' if sign else ''},.{digits}f}"


def _grid(headers: list[str], rows: list[list[str]], left: int = 1) -> str:
    """Columns padded to their widest cell; the first ``left`` columns left-aligned, the rest right-aligned."""
    widths = [max(len(h), *(len(r[i]) for r in rows)) if rows else len(h) for i, h in enumerate(headers)]

    def line(cells: list[str]) -> str:
        return "  ".join(c.ljust(w) if i < left else c.rjust(w) for i, (c, w) in enumerate(zip(cells, widths, strict=True))).rstrip()

    return "\n".join([line(headers), *(line(r) for r in rows)])


def _csv(frame: pd.DataFrame, hidden: bool, figures: list[str]) -> str:
    out = frame.copy()
    if hidden:
        out[figures] = SUPPRESSED_MARK
    buf = io.StringIO()
    out.to_csv(buf, index=False, lineterminator="\n", quoting=csv.QUOTE_MINIMAL)
    return buf.getvalue().rstrip("\n")


def sensitivity_table(s: Sensitivity) -> str:
    """A tornado per alternative model: the change in its difference against the baseline at low and high, by swing."""
    out = [f"One-way sensitivity: the change in each model's cost difference against {s.baseline} (MSEK) as one parameter goes to its low or high value"]
    for model in dict.fromkeys(s.rows["model"]):
        t = s.tornado(model)
        out += ["", f"{model} (Δ vs {s.baseline} as written: {_v(t['delta_sek'].iloc[0], 2, scale=1e6, sign=True)} MSEK)"]
        rows = [
            [r["parameter"], f"{r['low']:g}", f"{r['high']:g}", _v(r["change_low_sek"], 2, scale=1e6, sign=True), _v(r["change_high_sek"], 2, scale=1e6, sign=True),
             _v(r["swing_sek"], 2, scale=1e6), _v(r["admin_hours_change_low"], 0, sign=True), _v(r["admin_hours_change_high"], 0, sign=True),
             _v(r["continuity_change_low"], 1, sign=True), _v(r["continuity_change_high"], 1, sign=True)]
            for r in t.to_dict("records")
        ]  # fmt: skip
        out.append(_grid(["parameter", "low", "high", "Δ at low", "Δ at high", "swing", "admin h low", "admin h high", "contin. low", "contin. high"], rows))
    out += ["", f"{s.manifest['runs']} runs, {s.manifest['settlements']} settlements of a model (the context built once)"]
    return "\n".join(out)


def sensitivity_csv(s: Sensitivity) -> str:
    return _csv(s.rows, s.suppressed, FIGURES)


def sweep_table(s: Sweep) -> str:
    paths = [a.path for a in s.axes]
    wide = s.rows.pivot_table(index=paths, columns="model", values="delta_sek", aggfunc="first", dropna=False, sort=False)
    models = [m for m in dict.fromkeys(s.rows["model"]) if m != s.baseline]
    rows = []
    for key, r in wide.iterrows():
        keys = key if isinstance(key, tuple) else (key,)
        rows.append([*(f"{k:g}" for k in keys), *(_v(r[m], 2, scale=1e6, sign=True) for m in models)])
    head = f"Sweep: each model's cost difference against {s.baseline} (MSEK) at every point"
    return head + "\n\n" + _grid([*paths, *models], rows, left=0) + f"\n\n{s.manifest['points']} points, {s.manifest['settlements']} settlements of a model"


def sweep_csv(s: Sweep) -> str:
    return _csv(s.rows, s.suppressed, ["cost_sek", "delta_sek", "admin_hours"])


def uncertainty_table(u: Uncertainty) -> str:
    mf = u.manifest
    rows = []
    for r in u.summary.to_dict("records"):
        base = r["model"] == u.baseline
        rows.append(
            [r["model"], _v(r["cost_median_sek"], 2, scale=1e6), f"{_v(r['cost_p05_sek'], 2, scale=1e6)} … {_v(r['cost_p95_sek'], 2, scale=1e6)}",
             "baseline" if base else _v(r["delta_median_sek"], 2, scale=1e6, sign=True),
             "" if base else f"{_v(r['delta_p05_sek'], 2, scale=1e6, sign=True)} … {_v(r['delta_p95_sek'], 2, scale=1e6, sign=True)}",
             "" if base else _v(None if r["p_cheaper"] != r["p_cheaper"] else 100 * r["p_cheaper"], 0) + (" %" if r["p_cheaper"] == r["p_cheaper"] else "")]
        )  # fmt: skip
    head = f"Uncertainty: {mf['draws']} draws of {len(mf['parameters'])} parameter(s), seed {mf['seed']} ({mf['generator']}); MSEK, median and 90 % interval"
    table = _grid(["model", "cost", "90 % interval", f"Δ vs {u.baseline}", "90 % interval", "P(cheaper)"], rows)
    methods = "; ".join(f"{m}: {how}" for m, how in mf["methods"].items())
    return f"{head}\n\n{table}\n\n{methods}"


def uncertainty_csv(u: Uncertainty) -> str:
    return _csv(u.summary, u.suppressed, list(u.summary.columns[1:]))


def break_even_lines(items: list[dict[str, Any]], baseline: str) -> str:
    """compare's break-even lines: the factor on each alternative's prices at which it costs what the baseline costs."""
    if not items:
        return ""
    out = [f"Break-even against {baseline} (a uniform factor on the model's rates, fees and fixed amounts; solved, verified to the öre):"]
    for b in items:
        if b["suppressed"]:
            value = SUPPRESSED_MARK
        elif b["value"] is None:
            value = "none (the difference does not depend on its prices)"
        else:
            value = f"× {b['value']:.4f} ({100 * (b['value'] - 1):+.2f} %)"
        out.append(f"  {b['model']}: {value}")
    return "\n".join(out)
