"""Write a comparison's report: self-contained HTML and/or an Excel workbook, in Swedish or English."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from pathlib import Path
from typing import TYPE_CHECKING

from ersattning.compare import Comparison
from ersattning.files import write_text_atomic
from ersattning.report.i18n import DEFAULT_LANGUAGE, LANGUAGES
from ersattning.report.tables import build_tables

if TYPE_CHECKING:
    from ersattning.report.tables import Analysis


def write_report(
    c: Comparison,
    *,
    html: str | Path | None = None,
    xlsx: str | Path | None = None,
    lang: str = DEFAULT_LANGUAGE,
    progress: Callable[[str], None] | None = None,
    analyses: Sequence[Analysis] = (),
) -> list[Path]:
    """Write the requested files; returns their paths. Each file appears whole or not at all, through an
    unpredictable temporary file renamed over the path (a link there is replaced, never followed); an
    unsuppressed report is owner-only (docs/personal-data.md)."""
    if lang not in LANGUAGES:
        raise ValueError(f"unknown language {lang!r}; known: {', '.join(LANGUAGES)}")
    step = progress or (lambda _: None)
    tables = build_tables(c, analyses)
    written = []
    # the renderers are imported when asked for: matplotlib and openpyxl take a while to import
    if html is not None:
        from ersattning.report.charts import render_charts
        from ersattning.report.html import render_html

        charts = render_charts(tables, lang, progress=step)
        step("html")
        path = Path(html)
        write_text_atomic(path, render_html(tables, charts, lang), encoding="utf-8", private=not c.suppress)
        written.append(path)
    if xlsx is not None:
        from ersattning.report.xlsx import write_xlsx

        step("xlsx")
        write_xlsx(tables, xlsx, lang)
        written.append(Path(xlsx))
    return written


def report_steps(c_models: int, html: bool, xlsx: bool) -> int:
    """How many progress steps a report run announces (compare's, then the report's)."""
    from ersattning.report.charts import CHARTS

    return 2 + c_models + (len(CHARTS) + 1 if html else 0) + (1 if xlsx else 0)
