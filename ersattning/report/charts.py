"""The report's charts, drawn with matplotlib as inline SVG (no files, no CDN).

Text stays text in the SVG (readable, searchable, printable); numbers on the
axes are written the way the report's language writes them.
"""

from __future__ import annotations

import io
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import matplotlib

matplotlib.use("Agg")  # no display; must precede pyplot
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402
from matplotlib.ticker import Formatter  # noqa: E402
from matplotlib.typing import RcKeyType  # noqa: E402

from ersattning.report.i18n import label, number  # noqa: E402
from ersattning.report.tables import ReportTables, numeric  # noqa: E402

PALETTE = ["#1f5fa8", "#d9822b", "#3a9a5b", "#b8403a", "#7b5ea7", "#8c6d46", "#d36fae", "#6f6f6f", "#a3a33a", "#2ba3b0", "#f1b84b", "#5a7d9a"]
STYLE: dict[RcKeyType, Any] = {
    "svg.fonttype": "none",
    "font.family": "sans-serif",
    "font.size": 9,
    "axes.spines.top": False,
    "axes.spines.right": False,
    "axes.grid": True,
    "grid.color": "#dddddd",
    "grid.linewidth": 0.6,
    "axes.axisbelow": True,
    "svg.hashsalt": "ersattning",  # stable element ids: the same report renders the same SVG
}
PROVIDERS_SHOWN = 5  # gains and losses per model


@dataclass(frozen=True)
class Chart:
    """One chart of the report: how it is drawn, and the label (i18n.py) that is its title and caption."""

    draw: Callable[[ReportTables, str, str], plt.Figure]  # (tables, language, title) → figure
    caption: str

    def title(self, t: ReportTables, lang: str) -> str:
        return label(self.caption, lang, baseline=t.baseline)


def render_charts(t: ReportTables, lang: str, progress: Callable[[str], None] | None = None) -> dict[str, str]:
    """Chart name → inline SVG, in the order of ``CHARTS``."""
    out = {}
    with plt.rc_context(STYLE):
        for name, chart in CHARTS.items():
            if progress:
                progress(f"chart {name}")
            out[name] = _svg(chart.draw(t, lang, chart.title(t, lang)))
    return out


def _svg(fig: plt.Figure) -> str:
    buf = io.StringIO()
    fig.savefig(buf, format="svg", bbox_inches="tight", metadata={"Date": None, "Creator": None})
    plt.close(fig)
    text = buf.getvalue()
    return text[text.index("<svg") :]


class _Ticks(Formatter):
    """Tick labels in the report's language, with as many decimals as the tick spacing needs."""

    def __init__(self, lang: str) -> None:
        self.lang = lang
        self.digits = 0

    def format_ticks(self, values: list[float]) -> list[str]:
        ticks = np.sort(np.asarray(values, dtype=np.float64))
        step = float(np.min(np.diff(ticks))) if ticks.size > 1 else 1.0
        self.digits = next((d for d in range(4) if abs(step * 10**d - round(step * 10**d)) < 1e-6), 3)  # 0.25 → 2
        return [self(v) for v in values]

    def __call__(self, x: float, pos: int | None = None) -> str:
        return number(x, self.lang, self.digits)


def _fmt(lang: str) -> Formatter:
    return _Ticks(lang)


def _colours(names: list[str]) -> dict[str, str]:
    return {n: PALETTE[i % len(PALETTE)] for i, n in enumerate(names)}


def _stacked_bars(frame: pd.DataFrame, names: list[str], label_prefix: str, lang: str, title: str, unit: str, ncol: int) -> tuple[plt.Figure, plt.Axes, np.ndarray]:
    """One horizontal bar per model, stacked by the frame's columns (largest first; negative parts to the left)."""
    order = frame.abs().sum().sort_values(ascending=False).index.tolist()
    colours = _colours(order)
    fig, ax = plt.subplots(figsize=(8, 0.6 * len(names) + 1.6))
    y = np.arange(len(names))[::-1]
    pos_left, neg_left = np.zeros(len(names)), np.zeros(len(names))
    for part in order:
        v = frame[part].to_numpy()
        ax.barh(y, v, left=np.where(v >= 0, pos_left, neg_left), color=colours[part], label=label(f"{label_prefix}:{part}", lang), height=0.6)
        pos_left += np.where(v >= 0, v, 0)
        neg_left += np.where(v < 0, v, 0)
    ax.set_yticks(y, names)
    ax.xaxis.set_major_formatter(_fmt(lang))
    ax.set_xlabel(unit)
    ax.set_title(title, loc="left")
    ax.legend(loc="upper center", bbox_to_anchor=(0.5, -0.18), ncol=ncol, frameon=False, fontsize=8)
    return fig, ax, y


def _cost(t: ReportTables, lang: str, title: str) -> plt.Figure:
    names = t.model_names
    comps = t.components.assign(cost_sek=numeric(t.components["cost_sek"])).pivot_table(index="model", columns="component", values="cost_sek", aggfunc="sum")
    comps = comps.reindex(names).fillna(0.0)  # a hidden figure (small region) draws no bar
    fig, ax, y = _stacked_bars(comps / 1e6, names, "component", lang, title, label("msek", lang), ncol=4)
    for yi, total in zip(y, numeric(t.models["cost_sek"]) / 1e6, strict=True):
        ax.annotate(number(total, lang, 1), (max(np.nan_to_num(total), 0), yi), xytext=(4, 0), textcoords="offset points", va="center", fontsize=8)
    return fig


def _monthly(t: ReportTables, lang: str, title: str) -> plt.Figure:
    fig, ax = plt.subplots(figsize=(8, 3.6))
    colours = _colours(t.model_names)
    months = sorted(t.monthly["month"].unique())
    for name in t.model_names:
        m = t.monthly[t.monthly["model"] == name].set_index("month").reindex(months)
        ax.plot(np.arange(len(months)), numeric(m["cost_sek"]) / 1e6, marker="o", markersize=3, color=colours[name], label=name)
    ax.set_xticks(np.arange(len(months)), months, rotation=45, ha="right")
    ax.yaxis.set_major_formatter(_fmt(lang))
    ax.set_ylabel(label("msek", lang))
    ax.set_title(title, loc="left")
    ax.legend(frameon=False, fontsize=8)
    return fig


def _providers(t: ReportTables, lang: str, title: str) -> plt.Figure:
    others = [n for n in t.model_names if n != t.baseline]
    shown = t.providers[~t.providers["suppressed"].astype(bool)]
    base = shown[shown["model"] == t.baseline].set_index("provider")["cost_sek"].astype(np.float64)
    fig, axes = plt.subplots(1, max(len(others), 1), figsize=(3.2 * max(len(others), 1) + 1, 3.4), squeeze=False)
    if not others or shown.empty:
        ax = axes[0][0]
        ax.axis("off")
        ax.text(0.5, 0.5, label("no_providers", lang), ha="center", va="center")
        fig.suptitle(title, x=0.02, ha="left")
        return fig
    for ax, name in zip(axes[0], others, strict=True):
        d = shown[shown["model"] == name].set_index("provider")["delta_sek"].astype(np.float64)
        pct = (d / base.reindex(d.index).replace(0, np.nan) * 100).dropna().sort_values()
        pick = pd.concat([pct.head(PROVIDERS_SHOWN), pct.tail(PROVIDERS_SHOWN)])
        pick = pick[~pick.index.duplicated()].sort_values()
        colours = np.where(pick.to_numpy() >= 0, "#3a9a5b", "#b8403a")
        ax.barh(np.arange(len(pick)), pick.to_numpy(), color=colours, height=0.7)
        ax.set_yticks(np.arange(len(pick)), pick.index.tolist(), fontsize=7)
        ax.axvline(0, color="#333333", linewidth=0.8)
        ax.set_xlabel("%")
        ax.xaxis.set_major_formatter(_fmt(lang))
        ax.set_title(name, fontsize=9)
    fig.suptitle(title, x=0.02, ha="left")
    fig.tight_layout()
    return fig


def _distribution(t: ReportTables, lang: str, title: str) -> plt.Figure:
    d = t.distribution
    fig, ax = plt.subplots(figsize=(8, 3.6))
    colours = _colours(t.model_names)
    inner = d.dropna(subset=["bin_from", "bin_to"])
    for name in t.model_names:
        m = inner[inner["model"] == name]
        if m.empty:  # a hidden region has no bins: an empty chart (its title says why below)
            continue
        edges = np.concatenate([m["bin_from"].to_numpy(), m["bin_to"].to_numpy()[-1:]])
        ax.stairs(numeric(m["recipient_months"]), edges, color=colours[name], linewidth=1.4, label=name)
    ax.xaxis.set_major_formatter(_fmt(lang))
    ax.yaxis.set_major_formatter(_fmt(lang))
    ax.set_xlabel(label("sek", lang))
    ax.set_ylabel(label("recipient_months_axis", lang))
    if inner.empty or np.isnan(numeric(d["recipient_months"])).any():
        title += f" — {label('suppressed_bins', lang)}"
    ax.set_title(title, loc="left")
    ax.legend(frameon=False, fontsize=8)
    return fig


def _admin(t: ReportTables, lang: str, title: str) -> plt.Figure:
    names = t.model_names
    hours = t.admin.assign(hours=numeric(t.admin["hours"])).pivot_table(index="model", columns="act", values="hours", aggfunc="sum").reindex(names).fillna(0.0)
    return _stacked_bars(hours, names, "act", lang, title, label("hours", lang), ncol=3)[0]


INDICATOR_PANELS = ("paid_hours", "unpaid_performed_hours", "paid_not_performed_hours", "marginal_sek_per_minute", "revenue_volatility", "continuity_median")


def _indicators(t: ReportTables, lang: str, title: str) -> plt.Figure:
    names = t.model_names
    colours = _colours(names)
    ind = t.indicators.set_index("indicator")
    fig, axes = plt.subplots(2, 3, figsize=(9, 5))
    for ax, key in zip(axes.flat, INDICATOR_PANELS, strict=True):
        values = numeric(ind.loc[key, names]) if key in ind.index else np.full(len(names), np.nan)
        x = np.arange(len(names))
        ax.bar(x, np.nan_to_num(values), color=[colours[n] for n in names])
        for xi, v in zip(x, values, strict=True):
            ax.annotate(number(v, lang, 2 if abs(v) < 100 else 0) if not np.isnan(v) else "–", (xi, np.nan_to_num(v)), xytext=(0, 2), textcoords="offset points", ha="center", fontsize=7)
        ax.set_xticks(x, names, rotation=30, ha="right", fontsize=7)
        ax.yaxis.set_major_formatter(_fmt(lang))
        ax.set_title(label(key, lang), fontsize=8, wrap=True)
    fig.suptitle(title, x=0.02, ha="left")
    fig.tight_layout()
    return fig


TORNADO_ROWS = 10  # parameters per model, largest swing first


def _placeholder(title: str, text: str) -> plt.Figure:
    fig, ax = plt.subplots(figsize=(8, 2.4))
    ax.axis("off")
    ax.text(0.5, 0.5, text, ha="center", va="center")
    fig.suptitle(title, x=0.02, ha="left")
    return fig


def _tornado(t: ReportTables, lang: str, title: str) -> plt.Figure:
    """One panel per alternative model: each parameter's change at low and at high, the largest swing on top."""
    s = t.sensitivity
    if s is None or s.empty:
        return _placeholder(title, label("no_sensitivity", lang))
    others = [n for n in t.model_names if n in set(s["model"])]
    rows = min(TORNADO_ROWS, int(s.groupby("model").size().max()))
    fig, axes = plt.subplots(len(others), 1, figsize=(8, (0.32 * rows + 0.9) * len(others) + 0.6), squeeze=False)
    for ax, name in zip(axes[:, 0], others, strict=True):
        m = s[s["model"] == name].head(TORNADO_ROWS)
        y = np.arange(len(m))[::-1]
        low, high = numeric(m["change_low_sek"]) / 1e6, numeric(m["change_high_sek"]) / 1e6
        ax.barh(y, np.nan_to_num(low), color=PALETTE[0], height=0.6, label=label("tornado_low", lang))
        ax.barh(y, np.nan_to_num(high), color=PALETTE[1], height=0.6, label=label("tornado_high", lang))
        ax.axvline(0, color="#333333", linewidth=0.8)
        ax.set_yticks(y, m["parameter"].tolist(), fontsize=7)
        ax.xaxis.set_major_formatter(_fmt(lang))
        ax.set_title(name, fontsize=9, loc="left")
    axes[0, 0].legend(frameon=False, fontsize=8, loc="lower right")
    axes[-1, 0].set_xlabel(label("msek", lang))
    fig.suptitle(title, x=0.02, ha="left")
    fig.tight_layout()
    return fig


def _sweep(t: ReportTables, lang: str, title: str) -> plt.Figure:
    """One-way: each alternative's difference against the baseline along the parameter; two-way: a heat map per alternative."""
    s, axes_paths = t.sweep, t.sweep_axes
    if s is None or s.empty or not axes_paths:
        return _placeholder(title, label("no_sweep", lang))
    others = [n for n in t.model_names if n != t.baseline]
    colours = _colours(t.model_names)
    if len(axes_paths) == 1:
        fig, ax = plt.subplots(figsize=(8, 3.6))
        x = axes_paths[0]
        for name in others:
            m = s[s["model"] == name]
            ax.plot(m[x].to_numpy(), numeric(m["delta_sek"]) / 1e6, marker="o", markersize=3, color=colours[name], label=name)
        ax.axhline(0, color="#333333", linewidth=0.8)
        ax.set_xlabel(label(x, lang))
        ax.set_ylabel(label("msek", lang))
        ax.yaxis.set_major_formatter(_fmt(lang))
        ax.set_title(title, loc="left")
        ax.legend(frameon=False, fontsize=8)
        return fig
    x, y = axes_paths
    fig, axs = plt.subplots(1, max(len(others), 1), figsize=(3.2 * max(len(others), 1) + 1.2, 3.6), squeeze=False)
    for ax, name in zip(axs[0], others, strict=True):
        m = s[s["model"] == name].assign(delta=lambda d: numeric(d["delta_sek"]) / 1e6)
        grid = m.pivot_table(index=y, columns=x, values="delta", aggfunc="first", dropna=False)
        limit = float(np.nanmax(np.abs(grid.to_numpy()))) if np.isfinite(grid.to_numpy()).any() else 1.0
        image = ax.imshow(grid.to_numpy(), origin="lower", aspect="auto", cmap="RdBu_r", vmin=-limit, vmax=limit)
        ax.grid(False)
        ax.set_xticks(np.arange(len(grid.columns)), [number(v, lang, 2) for v in grid.columns], rotation=45, fontsize=7)
        ax.set_yticks(np.arange(len(grid.index)), [number(v, lang, 2) for v in grid.index], fontsize=7)
        ax.set_xlabel(x, fontsize=7)
        ax.set_title(name, fontsize=9)
        fig.colorbar(image, ax=ax, format=_fmt(lang))
    axs[0, 0].set_ylabel(y, fontsize=7)
    fig.suptitle(title, x=0.02, ha="left")
    fig.tight_layout()
    return fig


#: every chart of the report, in the order shown: the one list the HTML report, its progress steps and the tests read
CHARTS: dict[str, Chart] = {
    "cost": Chart(_cost, "chart_cost"),
    "monthly": Chart(_monthly, "chart_monthly"),
    "providers": Chart(_providers, "chart_providers"),
    "distribution": Chart(_distribution, "chart_distribution"),
    "admin": Chart(_admin, "chart_admin"),
    "indicators": Chart(_indicators, "chart_indicators"),
    "tornado": Chart(_tornado, "chart_tornado"),
    "sweep": Chart(_sweep, "chart_sweep"),
}
