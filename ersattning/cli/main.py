"""``ersattning``: synthetic regions, imports, histories and comparisons."""

from __future__ import annotations

import json
import os
import sys
import threading
import time
from typing import TYPE_CHECKING, Any

import click
import pandas as pd
from pydantic import ValidationError

from ersattning import __version__, projection
from ersattning.analysis.breakeven import break_even_summary
from ersattning.analysis.paths import PathError
from ersattning.checks import DEMO_DATA, Coverage, Finding, check_parameters, preflight
from ersattning.cli import render, render_analysis
from ersattning.cli.errors import ROWS_REJECTED, describe_validation, fail, run_guarded, run_interruptible
from ersattning.cli.inspect import inspect_command
from ersattning.compare import compare as run_compare
from ersattning.explain import explain_recipient_month, explain_visit
from ersattning.files import WriteError, write_text_atomic
from ersattning.partitioned.dataset import DatasetError
from ersattning.partitioned.runner import SCHEDULER_ENV, ClusterError, compare_auto, release
from ersattning.report import report_steps, write_report
from ersattning.report.i18n import DEFAULT_LANGUAGE, LANGUAGES
from ersattning.scenario import Period, Scenario, json_schema, load_scenario
from ersattning.store import STORE_ENV, StoreError, open_store, resolve_store_url
from ersattning.store.base import SYNTH_META_KEY, redact_url
from ersattning.store.migrate import migrate
from ersattning.suppression import SUPPRESSED_MARK
from ersattning.suppression import WARNING as SUPPRESSION_WARNING
from ersattning.synth import RegionSpec, region_progress, synthesize

if TYPE_CHECKING:  # the import command loads the importer only when it runs
    from ersattning.compare import Comparison
    from ersattning.ingest.options import Progress
    from ersattning.ingest.report import ImportReport
    from ersattning.store import Store

PERIOD_HELP = "Settle these months instead of the scenario's period: START..END (e.g. 2024-09..2024-10) or one month."
NO_SUPPRESS_HELP = "Show figures about fewer than 5 persons (prints a warning; never hand such output on)."
STORE_HELP = f"Store URL: sqlite:///PATH, memory:// or postgresql://… (default: ${STORE_ENV} or sqlite:///ersattning.db)."


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, prog_name="ersattning")
def cli() -> None:
    """Replay home-care service histories under reimbursement models."""


def _progress(label: str) -> Any:
    """A one-line progress display on a terminal; nothing when output is not a TTY."""
    if not sys.stderr.isatty():
        return None
    started = time.perf_counter()

    def show(done: int, total: int) -> None:
        elapsed = time.perf_counter() - started
        eta = elapsed / done * (total - done) if done else 0.0
        click.echo(f"\r{label}: {done}/{total} ({100 * done / total:.0f} %), {elapsed:.0f} s, about {eta:.0f} s left ", nl=False, err=True)
        if done == total:
            click.echo("", err=True)

    return show


def _parse_overrides(pairs: tuple[str, ...]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for pair in pairs:
        key, sep, value = pair.partition("=")
        if not sep or not key:
            fail(f"--set expects KEY=VALUE, got {pair!r}")
        if key not in RegionSpec.model_fields:
            fail(f"--set: unknown figure {key!r}; known: {', '.join(sorted(RegionSpec.model_fields))}")
        out[key] = value
    return out


@cli.command()
@click.option("--recipients", type=int, default=None, help="Number of recipients (default 1000).")
@click.option("--months", type=int, default=None, help="Months of service (default 12).")
@click.option("--start", default=None, help="First month, YYYY-MM (default 2024-01).")
@click.option("--providers", type=int, default=None, help="Number of providers (default: one per ~108 recipients).")
@click.option("--seed", type=int, default=None, help="Random seed (default 1).")
@click.option("--set", "overrides", multiple=True, metavar="KEY=VALUE", help="Override any calibration figure, e.g. --set share_double_staffed=0.05.")
@click.option("--store", "store_url", default=None, help=STORE_HELP)
def synth(recipients: int | None, months: int | None, start: str | None, providers: int | None, seed: int | None, overrides: tuple[str, ...], store_url: str | None) -> None:
    """Write a realistic, seeded synthetic region into a new store (or finish an interrupted one)."""
    given = {"recipients": recipients, "months": months, "start": start, "providers": providers, "seed": seed}
    values = {k: v for k, v in given.items() if v is not None} | _parse_overrides(overrides)
    try:
        spec = RegionSpec(**values)
    except ValidationError as e:
        fail(describe_validation(e))
    url = resolve_store_url(store_url)

    def work() -> None:
        store = open_store(url, create=True)
        started = time.perf_counter()
        report = synthesize(store, spec, progress=_progress("synth"))
        store.checkpoint()
        seconds = time.perf_counter() - started
        click.echo(
            f"synthetic region: {spec.recipients} recipients, {spec.months} months from {spec.start}, "
            f"{spec.n_providers} providers, seed {spec.seed}"
        )
        if report.chunks_skipped:
            click.echo(f"resumed: {report.chunks_skipped} of {report.chunks_total} batches were already stored")
        click.echo(f"wrote {report.events_written:,} events in {seconds:.1f} s into {store.location.display_url} (position {store.position()})")

    run_interruptible(work, lambda: _synth_interrupted(url))


def _synth_interrupted(url: str) -> str:
    """The line an interrupted synth ends with: how many of the region's batches are stored."""
    shown = redact_url(url)
    store = open_store(url, create=False)
    try:
        progress = region_progress(store)
    finally:
        store.close()
    if progress is None:
        return f"nothing of the synthetic region is stored in {shown}; rerun the same command to write it"
    return (
        f"{progress.batches_stored:,} of {progress.batches:,} batches of the synthetic region are stored in {shown}; "
        "rerunning the same command finishes it — batches already stored are skipped"
    )


def history_summary(url: str) -> dict[str, Any]:
    store = open_store(url, create=False)
    by_type = store.events_by_topic()
    proj = projection.load(store)
    days = proj.visits["planned_start"].dropna()
    return {
        "store": store.location.display_url,
        "events": {"total": sum(by_type.values()), "by_type": {t.split(":", 1)[-1]: n for t, n in sorted(by_type.items())}},
        # recipients and providers seen anywhere: enrolled or registered, or only named by visits
        "recipients": _distinct(proj.recipients["recipient"], proj.visits["recipient"]),
        "providers": _distinct(proj.providers["provider"], proj.visits["provider"], proj.provider_choices["provider"]),
        "recipients_enrolled": int(len(proj.recipients)),
        "providers_registered": int(len(proj.providers)),
        "visits": int(len(proj.visits)),
        "visits_by_status": {str(k): int(v) for k, v in proj.visits["status"].value_counts().sort_index().items()},
        "first_day": None if days.empty else str(days.min().date()),
        "last_day": None if days.empty else str(days.max().date()),
        "position": int(proj.position),
        "synthetic": _synthetic_summary(store),
        "version": __version__,
    }


def _synthetic_summary(store: Store) -> dict[str, Any] | None:
    """The synthetic region the store holds: batches stored of how many, and the command that finishes it."""
    progress = region_progress(store)
    if progress is None:
        return None
    return {
        "batches_stored": progress.batches_stored,
        "batches": progress.batches,
        "finished": progress.finished,
        "command": progress.command(store.location.display_url),
    }


def _distinct(*columns: pd.Series) -> int:
    """Distinct values over several columns (NaN left out)."""
    values = [pd.Series(c.dropna().unique()).astype(str) for c in columns]
    return int(pd.concat(values, ignore_index=True).nunique()) if values else 0


#: what ``history`` does not show of a store describing fewer than 5 recipients (docs/personal-data.md)
HISTORY_COUNTS = ("recipients", "recipients_enrolled", "visits", "visits_by_status", "first_day", "last_day", "events")


def hide_small_history(summary: dict[str, Any]) -> dict[str, Any]:
    """The summary of a store of 1–4 recipients with every figure about them left out (``suppressed``: true)."""
    from ersattning.suppression import is_small

    small = bool(is_small(summary["recipients"]))
    return {**summary, **dict.fromkeys(HISTORY_COUNTS if small else ()), "suppressed": small}


@cli.command()
@click.option("--store", "store_url", default=None, help=STORE_HELP)
@click.option("--format", "fmt", type=click.Choice(["table", "json"]), default="table", show_default=True)
@click.option("--no-suppress", is_flag=True, help=NO_SUPPRESS_HELP)
def history(store_url: str | None, fmt: str, no_suppress: bool) -> None:
    """Summarise the service history in a store (a store of fewer than 5 recipients: its counts hidden)."""
    _warn_no_suppress(no_suppress)
    summary = run_guarded(history_summary, resolve_store_url(store_url))
    summary = {**summary, "suppressed": False} if no_suppress else hide_small_history(summary)
    if fmt == "json":
        click.echo(json.dumps(summary, indent=2, ensure_ascii=False))
        return
    click.echo(f"Store       {summary['store']} (position {summary['position']})")
    if summary["suppressed"]:
        click.echo(f"Providers   {summary['providers']:,}")
        click.echo(f"Recipients  {SUPPRESSED_MARK}: fewer than 5, so no count about them is shown (--no-suppress shows them; never hand such output on)")
        return
    enrolled, registered = summary["recipients_enrolled"], summary["providers_registered"]
    click.echo(f"Recipients  {summary['recipients']:,}" + (f" ({enrolled:,} enrolled by decisions)" if enrolled != summary["recipients"] else ""))
    click.echo(f"Providers   {summary['providers']:,}" + (f" ({registered:,} registered with ownership)" if registered != summary["providers"] else ""))
    status = ", ".join(f"{k} {v:,}" for k, v in summary["visits_by_status"].items())
    click.echo(f"Visits      {summary['visits']:,}" + (f" ({status})" if status else ""))
    click.echo(f"Service     {summary['first_day'] or '-'} … {summary['last_day'] or '-'}")
    synthetic = summary["synthetic"]
    if synthetic and not synthetic["finished"]:
        click.echo(f"Synthetic   unfinished: {synthetic['batches_stored']:,} of {synthetic['batches']:,} batches stored; to finish it, rerun: {synthetic['command']}")
    elif synthetic:
        click.echo(f"Synthetic   a whole region ({synthetic['batches']:,} batches)")
    click.echo(f"Events      {summary['events']['total']:,}")
    width = max((len(t) for t in summary["events"]["by_type"]), default=0)
    for topic, n in summary["events"]["by_type"].items():
        click.echo(f"  {topic:<{width}}  {n:>12,}")


ALLOW_PLUGIN_KEY = "ersattning.allow_plugin"


def _allow_plugin_option(f: Any) -> Any:
    """--allow-plugin MODULE (repeatable) on every command that loads a scenario: the modules its ``kind: module:Class`` may import."""

    def keep(ctx: click.Context, param: click.Parameter, value: tuple[str, ...]) -> None:
        ctx.meta[ALLOW_PLUGIN_KEY] = tuple(value)

    return click.option(
        "--allow-plugin", multiple=True, metavar="MODULE", expose_value=False, callback=keep,
        help="Let the scenario's kind: MODULE:CLASS import this module (and its submodules); without it only bundled models and installed plugins (entry-point group ersattning.models) load.",
    )(f)


# -- scenarios and comparisons ----------------------------------------------------------


@cli.command()
@click.argument("scenario", required=False)
@click.option("--store", "store_url", default=None, help="Also check the scenario against this store's history (default: $" + STORE_ENV + ", the scenario's store, or ersattning.db here when it exists).")
@click.option("--period", default=None, help=PERIOD_HELP)
@_allow_plugin_option
def validate(scenario: str | None, store_url: str | None, period: str | None) -> None:
    """Check a scenario file (or a bundled scenario by name); every problem names file, line and key.

    With a store (--store, $ERSATTNING_STORE, the scenario's store:, or ersattning.db in the current
    directory), also run every check compare runs on its history: the period covered, every provider's
    ownership known, the history's key ratios plausible (docs/checks.md). Fails where compare would.
    """
    months = _period(period)
    sc = run_guarded(_scenario, scenario, months)
    run_guarded(check_parameters, sc)
    click.echo(f"{sc.path}: ok — {sc.name!r}, {len(sc.models)} models ({', '.join(e.name for e, _ in sc.models)}), baseline {sc.spec.baseline}, {sc.spec.period.start} … {sc.spec.period.end}")
    url = store_url or os.environ.get(STORE_ENV) or sc.spec.store or _default_store_if_present()
    if not url:
        return
    findings, counts = run_guarded(_check_history, sc, url)
    _print_findings(findings)
    click.echo(f"{redact_url(url)}: ok — {counts} in the period" + (f"; {len(findings)} warning(s) on stderr" if findings else ""))


def _default_store_if_present() -> str | None:
    """The default store (ersattning.db here) when it exists: the one compare would settle on."""
    url = resolve_store_url(None)
    return url if os.path.exists(url.removeprefix("sqlite:///")) else None


def _check_history(sc: Scenario, url: str) -> tuple[list[Finding], str]:
    """What compare checks of the store's history for the scenario: the error that would stop it, or its findings
    and the counts to show (hidden for a region of fewer than 5 recipients)."""
    from ersattning.checks import history_figures, plausibility
    from ersattning.context import OwnershipError, build_context
    from ersattning.indicators import shared_summary
    from ersattning.suppression import is_small

    store = _history_store(url)
    proj = projection.load(store)
    findings = preflight(sc, Coverage.of(proj), store.location.display_url)
    ctx = build_context(proj, sc.spec.period.start, sc.spec.period.end, sc.default_ownership)
    problem = ctx.ownership_problem(sc.ownership_models())
    if problem:
        raise OwnershipError(problem)
    summary = shared_summary(ctx, sc.spec.indicators.punctuality_tolerance_minutes)
    hidden = bool(is_small(summary.recipients))
    findings += plausibility(history_figures([summary]), hidden=hidden)
    if store.get_meta(SYNTH_META_KEY) is not None:
        findings.insert(0, DEMO_DATA)
    counts = "the region's counts are hidden (fewer than 5 recipients)" if hidden else f"{ctx.n_visits:,} visits and {summary.recipient_months:,} recipient-months"
    return findings, counts


@cli.command()
@click.option("--mapping", is_flag=True, help="Print the JSON Schema of import mapping files instead (docs/mapping.md).")
def schema(mapping: bool) -> None:
    """Print the JSON Schema of scenario files, or with --mapping of import mapping files (for editors)."""
    from ersattning.ingest.mapping import mapping_schema

    click.echo(json.dumps(mapping_schema() if mapping else json_schema(), indent=2, ensure_ascii=False))


def _open_for_compare(sc: Scenario, store_url: str | None) -> Any:
    """The store to settle on. A store named anywhere (--store, $ERSATTNING_STORE, the scenario's store:) must
    exist and hold a history: it is never created or filled here. Only when none is named does the default
    file in the current directory get a synthetic demo region, and the outputs say so (manifest.demo)."""
    named = store_url or os.environ.get(STORE_ENV) or sc.spec.store
    if named:
        return _history_store(named)
    url = resolve_store_url(None)
    store = open_store(url, create=True)
    unfinished = region_progress(store)
    if unfinished is not None and not unfinished.finished:  # the demo region of an interrupted compare: finish it
        click.echo(f"ersattning: finishing the synthetic demo region in {redact_url(url)} ({unfinished.batches_stored} of {unfinished.batches} batches were stored)", err=True)
        synthesize(store, unfinished.spec, progress=_progress("synth"))
        store.checkpoint()
    elif store.position() == 0:
        demo = sc.spec.demo_region
        spec = RegionSpec(recipients=demo.recipients, seed=demo.seed, months=sc.months(), start=sc.spec.period.start)
        click.echo(
            f"ersattning: no store named (--store, ${STORE_ENV}): writing a synthetic demo region into {redact_url(url)} first "
            f"({spec.recipients} recipients, {spec.months} months from {spec.start}, seed {spec.seed}); its figures are not real ones",
            err=True,
        )
        synthesize(store, spec, progress=_progress("synth"))
        store.checkpoint()
    return store


def _history_store(url: str) -> Store:
    """A named store as compare and validate settle it: it exists (never created here), holds a history, and
    holds no part of a synthetic region (an interrupted synth: a part of a region is not a region)."""
    store = open_store(url, create=False)
    if store.position() == 0:
        raise StoreError(
            f"the store {redact_url(url)} is empty: import your history into it first (ersattning import FILE --store …), "
            "or write a synthetic region into it (ersattning synth --store …)"
        )
    synthetic = region_progress(store)
    if synthetic is not None and not synthetic.finished:
        raise StoreError(
            f"the store {redact_url(url)} holds an unfinished synthetic region ({synthetic.batches_stored} of {synthetic.batches} batches); "
            f"finish it first: {synthetic.command(redact_url(url))}"
        )
    return store


def _period(value: str | None) -> Period | None:
    """--period START..END, checked before any work."""
    if value is None:
        return None
    try:
        return Period.parse(value)
    except ValueError as e:
        fail(str(e))
    return None  # not reached: fail() exits


def _scenario(scenario: str | None, period: Period | None) -> Scenario:
    """The scenario, settled over --period when given; its models outside the package only from installed plugins or --allow-plugin."""
    ctx = click.get_current_context(silent=True)
    allowed = ctx.meta.get(ALLOW_PLUGIN_KEY, ()) if ctx is not None else ()
    return load_scenario(scenario, allowed).with_period(period)


def _as_of(value: str | None) -> Any:
    if value is None:
        return None
    try:
        return pd.Timestamp(value)
    except ValueError:
        fail(f"--as-of: {value!r} is not a date or time (e.g. 2024-06-30 or 2024-06-30T23:59)")


AS_OF_HELP = "Only events recorded at or before this time (Stockholm local time unless an offset is given)."
LANG_HELP = "Language of the report's labels and numbers (sv: 1 234,5; en: 1,234.5)."


class _Steps:
    """Named steps on one terminal line, redrawn every second so that a long step (a projection rebuild) shows it is alive."""

    def __init__(self, label: str, total: int) -> None:
        self.label, self.total = label, total
        self.started = time.perf_counter()
        self.step, self.seen = "starting", 0
        self.lock = threading.Lock()
        self.stopped = threading.Event()
        threading.Thread(target=self._tick, daemon=True).start()

    def __call__(self, step: str) -> None:
        with self.lock:
            self.step, self.seen = step, self.seen + 1
            self._draw()

    def _tick(self) -> None:
        while not self.stopped.wait(1.0):
            with self.lock:
                self._draw()

    def _draw(self) -> None:
        elapsed = time.perf_counter() - self.started
        click.echo(f"\r\033[K{self.label}: {self.step} ({min(self.seen, self.total)}/{self.total}), {elapsed:.0f} s", nl=False, err=True)

    def close(self) -> None:
        self.stopped.set()
        with self.lock:
            click.echo("", err=True)


def _steps_progress(label: str, total: int) -> _Steps | None:
    """The step display on a terminal; nothing when output is not a TTY."""
    return _Steps(label, total) if sys.stderr.isatty() else None


def _end_progress(show: _Steps | None) -> None:
    if show is not None:
        show.close()


def _print_findings(findings: list[Finding]) -> None:
    """Each warning on stderr, one line, with its stable code (docs/checks.md)."""
    for finding in findings:
        click.echo(f"ersattning: warning: {finding.message} [{finding.code}]", err=True)


def _warn_no_suppress(no_suppress: bool) -> None:
    if no_suppress:
        click.echo(f"WARNING: {SUPPRESSION_WARNING}", err=True)


def _settle(sc: Scenario, store: Store, when: Any, no_suppress: bool, show: Any, partitioned: dict[str, Any]) -> Any:
    """The comparison: in recipient partitions when asked or when the region is large (ersattning/partitioned/), its
    pool kept open for the analyses, report and break-even that follow, asked in the order one process asks them
    (``release`` it); else in one process."""
    note = lambda m: click.echo(f"ersattning: {m}", err=True)  # noqa: E731
    return compare_auto(sc, store, as_of=when, suppress=not no_suppress, progress=show, note=note, keep_pool=True, break_even=False, **partitioned)


def _comparison_and_report(
    scenario: str | None, store_url: str | None, as_of: str | None, no_suppress: bool, html: str | None, xlsx: str | None, lang: str, label: str, partitioned: dict[str, Any],
    period: str | None = None,
) -> tuple[Any, list[Any]]:
    """Run the comparison and write the requested report files (one progress line for both)."""
    when = _as_of(as_of)
    months = _period(period)
    _warn_no_suppress(no_suppress)

    def work() -> tuple[Any, list[Any]]:
        sc = _scenario(scenario, months)
        store = _open_for_compare(sc, store_url)
        show = _steps_progress(label, report_steps(len(sc.models), html is not None, xlsx is not None))
        result: Comparison | None = None
        try:
            result = _settle(sc, store, when, no_suppress, show, partitioned)
            written = write_report(result, html=html, xlsx=xlsx, lang=lang, progress=show) if (html or xlsx) else []
            break_even_summary(result)  # what compare prints: solved while a partitioned run's pool is open
        except (ClusterError, DatasetError) as e:
            fail(str(e))
        finally:
            if result is not None:
                release(result)
            _end_progress(show)
        assert result is not None  # fail() raised otherwise
        _print_findings(result.findings())
        return result, written

    return run_guarded(work)


def _partition_options(f: Any) -> Any:
    """--partitions, --scheduler, --workers: where the comparison (and the analyses and report built on it) settles."""
    for option in reversed(
        [
            click.option("--partitions", type=click.IntRange(min=0), default=None, help="Settle in this many recipient partitions (0: in one process; default: partitions above 2M visits)."),
            click.option("--scheduler", default=None, help=f"Send the partitions to this Dask scheduler (tcp://HOST:8786; or ${SCHEDULER_ENV})."),
            click.option("--workers", type=click.IntRange(min=1), default=None, help="Settle the partitions on a local Dask cluster of this many worker processes."),
        ]
    ):
        f = option(f)
    return f


@cli.command()
@click.argument("scenario", required=False)
@click.option("--store", "store_url", default=None, help=STORE_HELP)
@click.option("--as-of", "as_of", default=None, help=AS_OF_HELP)
@click.option("--period", default=None, help=PERIOD_HELP)
@click.option("--format", "fmt", type=click.Choice(["table", "json", "csv"]), default="table", show_default=True)
@click.option("--output", type=click.Path(dir_okay=False, writable=True), default=None, help="Write to this file instead of standard output.")
@click.option("--html", type=click.Path(dir_okay=False, writable=True), default=None, help="Also write the HTML report here.")
@click.option("--xlsx", type=click.Path(dir_okay=False, writable=True), default=None, help="Also write the Excel workbook here.")
@click.option("--lang", type=click.Choice(LANGUAGES), default=DEFAULT_LANGUAGE, show_default=True, help=LANG_HELP)
@click.option("--no-suppress", is_flag=True, help=NO_SUPPRESS_HELP)
@_partition_options
@_allow_plugin_option
def compare(
    scenario: str | None, store_url: str | None, as_of: str | None, period: str | None, fmt: str, output: str | None, html: str | None, xlsx: str | None, lang: str, no_suppress: bool,
    partitions: int | None, scheduler: str | None, workers: int | None,
) -> None:
    """Settle a scenario's models on the store and compare cost, quality and administration.

    With no arguments: the bundled default scenario on the default store. Large regions are
    settled in recipient partitions, on the local cores or a Dask cluster (README, "Large regions").
    """
    options = {"partitions": partitions, "scheduler": scheduler, "workers": workers}
    result, written = _comparison_and_report(scenario, store_url, as_of, no_suppress, html, xlsx, lang, "compare", options, period)
    if fmt == "json":
        text = json.dumps({**result.to_json(), "break_even": break_even_summary(result)}, indent=2, ensure_ascii=False)
    elif fmt == "csv":
        text = render.models_csv(result)
    else:
        text = render.table(result)
        lines = render_analysis.break_even_lines(break_even_summary(result), result.baseline)
        text += f"\n\n{lines}" if lines else ""
    _emit(text, output, written, private=no_suppress)


@cli.command()
@click.argument("scenario", required=False)
@click.option("--store", "store_url", default=None, help=STORE_HELP)
@click.option("--as-of", "as_of", default=None, help=AS_OF_HELP)
@click.option("--period", default=None, help=PERIOD_HELP)
@click.option("--html", type=click.Path(dir_okay=False, writable=True), default=None, help="Write the self-contained HTML report here.")
@click.option("--xlsx", type=click.Path(dir_okay=False, writable=True), default=None, help="Write the Excel workbook here.")
@click.option("--lang", type=click.Choice(LANGUAGES), default=DEFAULT_LANGUAGE, show_default=True, help=LANG_HELP)
@click.option("--no-suppress", is_flag=True, help=NO_SUPPRESS_HELP)
@_partition_options
@_allow_plugin_option
def report(
    scenario: str | None, store_url: str | None, as_of: str | None, period: str | None, html: str | None, xlsx: str | None, lang: str, no_suppress: bool,
    partitions: int | None, scheduler: str | None, workers: int | None,
) -> None:
    """Write a report to hand on: self-contained HTML with charts and/or an Excel workbook.

    With neither --html nor --xlsx: both, as ersattning-rapport.html and
    ersattning-rapport.xlsx (ersattning-report.* with --lang en) in the current directory.
    Large regions are settled, and their analyses run, in recipient partitions (README, "Large regions").
    """
    if html is None and xlsx is None:
        stem = "ersattning-rapport" if lang == "sv" else "ersattning-report"
        html, xlsx = f"{stem}.html", f"{stem}.xlsx"
    for path in (html, xlsx):
        if path and not os.path.isdir(os.path.dirname(os.path.abspath(path))):
            fail(f"cannot write {path}: the directory {os.path.dirname(os.path.abspath(path))} does not exist")
    options = {"partitions": partitions, "scheduler": scheduler, "workers": workers}
    result, written = _comparison_and_report(scenario, store_url, as_of, no_suppress, html, xlsx, lang, "report", options, period)
    mf = result.manifest
    click.echo(f"{result.scenario.name}: {len(result.names)} models, {mf['period']['start']} … {mf['period']['end']}, store position {mf['store_position']}")
    for path in written:
        click.echo(f"wrote {path}")


@cli.command()
@click.argument("scenario", required=False)
@click.option("--visit", "visit_id", default=None, help="A visit id (UUID), or the source's own visit id (hashed with the pseudonym key as the import did).")
@click.option("--recipient", default=None, help="A recipient id, pseudonym, or the source's own id (hashed with the pseudonym key), with --month.")
@click.option("--month", default=None, help="YYYY-MM (with --recipient).")
@click.option("--store", "store_url", default=None, help=STORE_HELP)
@click.option("--as-of", "as_of", default=None, help=AS_OF_HELP)
@click.option("--period", default=None, help=PERIOD_HELP)
@click.option("--format", "fmt", type=click.Choice(["text", "json"]), default="text", show_default=True)
@_allow_plugin_option
def explain(
    scenario: str | None, visit_id: str | None, recipient: str | None, month: str | None, store_url: str | None, as_of: str | None, period: str | None, fmt: str
) -> None:
    """Show how each model reached its amount for one visit or one recipient-month, rule by rule."""
    if bool(visit_id) == bool(recipient):
        fail("give either --visit ID, or --recipient ID with --month YYYY-MM")
    if recipient and not month:
        fail("--recipient needs --month YYYY-MM")
    when = _as_of(as_of)
    months = _period(period)

    def work() -> Any:
        sc = _scenario(scenario, months)
        url = store_url or os.environ.get(STORE_ENV) or sc.spec.store or resolve_store_url(None)
        store = open_store(url, create=False)
        pseudonymiser = _pseudonymiser_if_any(store)  # before settling: another key stops at once
        result = run_compare(sc, store, as_of=when)
        if visit_id:
            return explain_visit(result, visit_id, pseudonymiser)
        assert recipient is not None and month is not None  # checked above
        return explain_recipient_month(result, recipient, month, pseudonymiser)

    ex = run_guarded(work)
    if fmt == "json":
        click.echo(json.dumps({"subject": ex.subject, "models": ex.models}, indent=2, ensure_ascii=False, default=str))
    else:
        click.echo(ex.text())


def _pseudonymiser_if_any(store: Store) -> Any:
    """The import's pseudonymiser, to look up the source's own ids; None when there is no key (nothing is created).
    A key other than the one the store was written with stops (it would find none of the source's ids)."""
    from ersattning.privacy import Pseudonymiser, PseudonymKeyError, check_store_key, load_key

    try:
        key = load_key(create=False)
    except PseudonymKeyError:
        return None
    check_store_key(store, key, store.location.display_url, record=False)
    return Pseudonymiser(key)


@cli.command(name="import")
@click.argument("paths", nargs=-1, required=True, type=click.Path(dir_okay=False))
@click.option(
    "--kind",
    type=click.Choice(["visits", "decisions", "stays", "events", "providers"]),
    default="visits",
    show_default=True,
    help="What the files hold; events: one row per event (process-mining logs, XES), paired into visits; providers: code, name, ownership, teams.",
)
@click.option("--mapping", "mapping_path", default=None, type=click.Path(dir_okay=False), help="YAML mapping: column names, values, units, time zone, rows to skip.")
@click.option("--store", "store_url", default=None, help=STORE_HELP)
@click.option("--strict", is_flag=True, help="Stop at the first bad row and write nothing.")
@click.option("--quarantine", default=None, type=click.Path(dir_okay=False), help="Write rejected rows here (CSV with file, line and reason; default: beside the store, see above).")
@click.option("--dry-run", is_flag=True, help="Read and check everything; write nothing (no store, no key file) but a --quarantine file asked for.")
@click.option("--chunk-rows", type=click.IntRange(min=1), default=200_000, show_default=True, help="Rows read, checked and appended per transaction.")
def import_(paths: tuple[str, ...], kind: str, mapping_path: str | None, store_url: str | None, strict: bool, quarantine: str | None, dry_run: bool, chunk_rows: int) -> None:
    """Import historical service logs (CSV incl. Swedish Excel exports, Parquet, XES), pseudonymised and idempotent.

    \b
    Rejected rows go to --quarantine, else to a new file beside an SQLite store
    (<store file>.quarantine-YYYYMMDDTHHMMSS.csv; for other stores in the current directory),
    masked and readable by its owner only; the path is printed.
    The store records a fingerprint of the pseudonym key: an import with another key stops.
    Exit status: 0 imported; 1 a failure of the tool; 2 a user error (nothing of the failing step written);
    3 imported, but rows were rejected (quarantined); 130/143 interrupted (SIGINT/SIGTERM),
    the whole batches stored are said and a rerun of the same command finishes the import.
    """
    from ersattning.ingest.mapping import load_mapping
    from ersattning.ingest.options import ImportOptions, Stored
    from ersattning.privacy import mask_numbers

    stored = Stored()
    url = resolve_store_url(store_url)

    def work() -> tuple[ImportReport, str | None]:
        mapping = load_mapping(mapping_path)
        key = _import_key(dry_run)
        store = _import_store(url, dry_run)
        _check_key(store, key, dry_run)
        rejected = quarantine or (None if dry_run else _default_quarantine(store))
        options = ImportOptions(strict=strict, quarantine=rejected, dry_run=dry_run, chunk_rows=chunk_rows, progress=_rows_progress(), stored=stored)
        return _run_import(kind, store, paths, mapping, key, options), rejected

    unit = "visits" if kind == "events" else "rows"
    report, written = run_interruptible(work, lambda: _import_interrupted(stored, unit, redact_url(url)))
    if sys.stderr.isatty():
        click.echo("", err=True)
    for line in report.summary():
        click.echo(line)
    rejected, what = sum(report.quarantined.values()), "events" if kind == "events" else "rows"
    if dry_run:
        click.echo("dry run: nothing was written to the store")
        if rejected and not written:
            click.echo(f"dry run: {rejected:,} {what} would be rejected; add --quarantine FILE to see them")
    if rejected and written:
        click.echo(f"rejected {what} written to {mask_numbers(written)} (exit status {ROWS_REJECTED})")
    if rejected:
        sys.exit(ROWS_REJECTED)


def _run_import(kind: str, store: Store, paths: tuple[str, ...], mapping: Any, key: bytes, options: Any) -> ImportReport:
    from ersattning.ingest.events import import_events
    from ersattning.ingest.providers import import_providers
    from ersattning.ingest.recipients import import_decisions, import_stays
    from ersattning.ingest.visits import import_visits
    from ersattning.privacy import Pseudonymiser

    run_import = {"visits": import_visits, "decisions": import_decisions, "stays": import_stays, "events": import_events, "providers": import_providers}[kind]
    report: ImportReport = run_import(store, paths, mapping, Pseudonymiser(key), options)
    return report


def _import_key(dry_run: bool) -> bytes:
    """The pseudonym key. A real import makes the key file when there is none (and says so); a dry run makes
    none: with no key yet it pseudonymises under a throwaway key held in memory, and says so."""
    import secrets

    from ersattning.privacy import existing_key, key_origin, load_key
    from ersattning.privacy.keys import key_file_path

    key = existing_key()
    if key is not None:
        return key
    if dry_run:
        click.echo(f"ersattning: dry run: no pseudonym key yet ({key_origin()} does not exist); this run uses a throwaway key held in memory and creates none", err=True)
        return secrets.token_bytes(32)
    key = load_key()
    click.echo(f"ersattning: made a new pseudonym key in {key_file_path()}: keep it; every later import into this store needs it", err=True)
    return key


def _check_key(store: Store, key: bytes, dry_run: bool) -> None:
    """Stop before anything is written when the store was written with another key; record the key's
    fingerprint in a store that has none (not in a dry run), saying so when the store held events already."""
    from ersattning.privacy import check_store_key, existing_key

    throwaway = dry_run and existing_key() is None
    recorded = check_store_key(store, None if throwaway else key, store.location.display_url, record=not dry_run)
    if recorded and store.position() > 0:
        click.echo(
            f"ersattning: the store {store.location.display_url} had no record of its pseudonym key (written before ersattning kept one); "
            "this key's fingerprint is recorded now, and later imports with another key will be refused",
            err=True,
        )


def _default_quarantine(store: Store) -> str:
    """Where rejected rows go when --quarantine is not given: beside an SQLite store's file, else in the current
    directory; a new name each time (the import's local time, and a number when taken)."""
    from pathlib import Path

    stamp = time.strftime("%Y%m%dT%H%M%S")
    path = store.location.path
    base = path.with_name(f"{path.name}.quarantine-{stamp}") if path is not None else Path.cwd() / f"ersattning-quarantine-{stamp}"
    candidate, n = Path(f"{base}.csv"), 1
    while candidate.exists():
        n += 1
        candidate = Path(f"{base}-{n}.csv")
    return str(candidate)


def _import_interrupted(stored: Any, unit: str, shown: str) -> str:
    """The line an interrupted import ends with: what its committed batches hold."""
    read = f", {100 * stored.fraction:.0f} % of the files read" if stored.fraction is not None else ""
    batches = f"{stored.batches:,} batch{'es' if stored.batches != 1 else ''}"
    return (
        f"{stored.rows:,} {unit} of this import ({batches}{read}) are stored in {shown}; "
        f"rerunning the same command finishes the import — {unit} already stored are skipped"
    )


def _import_store(url: str, dry_run: bool) -> Store:
    """The store to import into; a dry run creates no store (an empty one in memory stands in for a missing file)
    and writes no projection cache beside an existing one."""
    if not dry_run:
        return open_store(url, create=True)
    from ersattning.projection.known_visits import read_only_projection
    from ersattning.store.base import parse_store_url

    location = parse_store_url(url)
    if location.scheme == "sqlite" and location.path is not None and not location.path.exists():
        return open_store("memory://")
    store = open_store(url, create=False)
    read_only_projection(store)
    return store


def _rows_progress() -> Progress | None:
    """Rows, rows/s and the time left on a terminal; nothing when output is not a TTY."""
    if not sys.stderr.isatty():
        return None

    def show(rows: int, seconds: float, fraction: float | None = None) -> None:
        click.echo("\r" + import_progress_line(rows, seconds, fraction) + " ", nl=False, err=True)

    return show


def import_progress_line(rows: int, seconds: float, fraction: float | None) -> str:
    """``import: 400,000 rows (20 %), 112,000 rows/s, about 14 s left``; the time left from the share of the
    files' bytes read so far, left out until it can be estimated."""
    line = f"import: {rows:,} rows"
    if fraction is not None:
        line += f" ({100 * fraction:.0f} %)"
    line += f", {rows / max(seconds, 1e-9):,.0f} rows/s"
    if fraction is not None and 0 < fraction < 1 and seconds > 0:
        line += f", about {_duration(seconds * (1 - fraction) / fraction)} left"
    elif fraction is not None and fraction >= 1:
        line += f", {_duration(seconds)} in all"
    return line


def _duration(seconds: float) -> str:
    s = int(round(seconds))
    if s < 60:
        return f"{s} s"
    if s < 3600:
        return f"{s // 60} min {s % 60:02d} s"
    return f"{s // 3600} h {s % 3600 // 60:02d} min"


# -- sensitivity, sweeps and uncertainty (ersattning.analysis, docs/models.md) ----------------------


def _analysis(
    scenario: str | None, store_url: str | None, as_of: str | None, no_suppress: bool, html: str | None, xlsx: str | None, lang: str, label: str, run: Any,
    partitioned: dict[str, Any], period: str | None = None,
) -> Any:
    """Compare once, run ``run(comparison)`` on it (on its partitions when it was settled in partitions), write the
    report with the result; the result."""
    when = _as_of(as_of)
    months = _period(period)
    _warn_no_suppress(no_suppress)

    def work() -> Any:
        sc = _scenario(scenario, months)
        store = _open_for_compare(sc, store_url)
        show = _steps_progress(label, report_steps(len(sc.models), html is not None, xlsx is not None) + 1)
        c: Comparison | None = None
        try:
            c = _settle(sc, store, when, no_suppress, show, partitioned)
            if show:
                show(label)
            try:
                result = run(c)
            except (PathError, ValueError) as e:
                fail(str(e))
            written = write_report(c, html=html, xlsx=xlsx, lang=lang, progress=show, analyses=[result]) if (html or xlsx) else []
        except (ClusterError, DatasetError) as e:
            fail(str(e))
        finally:
            if c is not None:
                release(c)
            _end_progress(show)
        assert c is not None  # fail() raised otherwise
        _print_findings(c.findings())
        return result, written

    return run_guarded(work)


def _emit(text: str, output: str | None, written: list[Any], *, private: bool = False) -> None:
    """``text`` to ``--output`` (whole, through a fresh temporary file renamed over it: a link there is replaced,
    never followed; owner-only when ``private``, i.e. unsuppressed) or to standard output."""
    if output:
        try:
            write_text_atomic(output, text + "\n", encoding="utf-8", private=private)
        except WriteError as e:
            fail(str(e))
        click.echo(f"wrote {output}", err=True)
    else:
        click.echo(text)
    for path in written:
        click.echo(f"wrote {path}", err=True)


def _analysis_options(f: Any) -> Any:
    for option in reversed(
        [
            click.argument("scenario", required=False),
            click.option("--store", "store_url", default=None, help=STORE_HELP),
            click.option("--as-of", "as_of", default=None, help=AS_OF_HELP),
            click.option("--period", default=None, help=PERIOD_HELP),
            click.option("--format", "fmt", type=click.Choice(["table", "json", "csv"]), default="table", show_default=True),
            click.option("--output", type=click.Path(dir_okay=False, writable=True), default=None, help="Write to this file instead of standard output."),
            click.option("--html", type=click.Path(dir_okay=False, writable=True), default=None, help="Also write the HTML report (with this analysis) here."),
            click.option("--xlsx", type=click.Path(dir_okay=False, writable=True), default=None, help="Also write the Excel workbook (with this analysis) here."),
            click.option("--lang", type=click.Choice(LANGUAGES), default=DEFAULT_LANGUAGE, show_default=True, help=LANG_HELP),
            click.option("--no-suppress", is_flag=True, help=NO_SUPPRESS_HELP),
        ]
    ):
        f = option(f)
    return _allow_plugin_option(_partition_options(f))


@cli.command()
@_analysis_options
@click.option("--param", "params", multiple=True, help="A parameter's path (repeatable); default: every parameter with low and high.")
def sensitivity(
    scenario: str | None, store_url: str | None, as_of: str | None, period: str | None, fmt: str, output: str | None, html: str | None, xlsx: str | None, lang: str,
    no_suppress: bool, partitions: int | None, scheduler: str | None, workers: int | None, params: tuple[str, ...],
) -> None:
    """One-way sensitivity: each ranged parameter at its low and high value; a tornado per alternative model.

    Parameters are dotted paths (models.per_minute.rates.personal_care, admin.minutes_per_act.correction,
    models.granted.prices for a factor on a model's prices). With no ranged parameter: each model's prices ±10 %.
    """
    from ersattning.analysis import sensitivity as run

    options = {"partitions": partitions, "scheduler": scheduler, "workers": workers}
    result, written = _analysis(scenario, store_url, as_of, no_suppress, html, xlsx, lang, "sensitivity", lambda c: run(c, list(params) or None), options, period)
    text = json.dumps(result.to_json(), indent=2, ensure_ascii=False) if fmt == "json" else render_analysis.sensitivity_csv(result) if fmt == "csv" else render_analysis.sensitivity_table(result)
    _emit(text, output, written, private=no_suppress)


@cli.command()
@_analysis_options
@click.option("--vary", "vary", multiple=True, required=True, help="PARAM=LOW..HIGH/STEPS, once or twice (a one- or two-way grid).")
def sweep(
    scenario: str | None, store_url: str | None, as_of: str | None, period: str | None, fmt: str, output: str | None, html: str | None, xlsx: str | None, lang: str,
    no_suppress: bool, partitions: int | None, scheduler: str | None, workers: int | None, vary: tuple[str, ...],
) -> None:
    """Settle every point of a one- or two-way grid of parameter values (e.g. --vary models.granted.price_factor=0.7..1.0/7)."""
    from ersattning.analysis import Axis
    from ersattning.analysis import sweep as run
    from ersattning.analysis.sweep import check_points

    try:
        axes = [Axis.parse(v) for v in vary]
        check_points(axes)  # before the comparison: a grid too big is refused at once
    except ValueError as e:
        fail(str(e))
    options = {"partitions": partitions, "scheduler": scheduler, "workers": workers}
    result, written = _analysis(scenario, store_url, as_of, no_suppress, html, xlsx, lang, "sweep", lambda c: run(c, axes), options, period)
    text = json.dumps(result.to_json(), indent=2, ensure_ascii=False) if fmt == "json" else render_analysis.sweep_csv(result) if fmt == "csv" else render_analysis.sweep_table(result)
    _emit(text, output, written, private=no_suppress)


@cli.command()
@_analysis_options
@click.option("--draws", type=click.IntRange(min=1, max=100_000), default=200, show_default=True, help="How many joint draws of the parameters with a distribution.")
@click.option("--seed", type=int, default=1, show_default=True, help="Seed of the draws (in the manifest: the same seed gives the same numbers).")
def uncertainty(
    scenario: str | None, store_url: str | None, as_of: str | None, period: str | None, fmt: str, output: str | None, html: str | None, xlsx: str | None, lang: str,
    no_suppress: bool, partitions: int | None, scheduler: str | None, workers: int | None, draws: int, seed: int,
) -> None:
    """Draw every parameter with a distribution: each model's cost and difference against the baseline, median and 90 % interval."""
    from ersattning.analysis import uncertainty as run
    from ersattning.analysis.uncertainty import distributed

    def go(c: Any) -> Any:
        if not distributed(c):
            raise ValueError("no parameter of the scenario has a distribution (add distribution: {kind: normal, sd: …} to a parameter; docs/models.md)")
        return run(c, draws, seed)

    options = {"partitions": partitions, "scheduler": scheduler, "workers": workers}
    result, written = _analysis(scenario, store_url, as_of, no_suppress, html, xlsx, lang, "uncertainty", go, options, period)
    text = json.dumps(result.to_json(), indent=2, ensure_ascii=False) if fmt == "json" else render_analysis.uncertainty_csv(result) if fmt == "csv" else render_analysis.uncertainty_table(result)
    _emit(text, output, written, private=no_suppress)


@cli.group(name="store")
def store_group() -> None:
    """Maintain a store."""


@store_group.command(name="migrate")
@click.option("--store", "store_url", default=None, help=STORE_HELP)
def store_migrate(store_url: str | None) -> None:
    """Rewrite a store's old JSON events in the compact encoding (smaller, faster to rebuild); crash-safe.

    Old stores are read as they are; run this when nothing else uses the store.
    """
    def work() -> None:
        store = open_store(resolve_store_url(store_url), create=False)
        shown = store.location.display_url
        report = migrate(store, progress=_progress("migrate"))
        if not report.migrated:
            click.echo(f"{shown}: all {report.events:,} events are stored compactly already; nothing to do")
            return
        rate = report.migrated / report.seconds if report.seconds else 0.0
        click.echo(
            f"{shown}: rewrote {report.migrated:,} of {report.events:,} events compactly in {report.seconds:.1f} s "
            f"({rate:,.0f} events/s)" + (f"; {report.bytes_before / 1e6:,.1f} MB → {report.bytes_after / 1e6:,.1f} MB" if report.bytes_before else "")
        )

    run_guarded(work)


cli.add_command(inspect_command)  # ersattning/cli/inspect.py


def main() -> None:
    """The console script. Ctrl-C in a command that does not say itself what it stored (import and synth do) ends
    with one line and status 130, not click's ``Aborted!``: the store is only ever written in whole transactions."""
    try:
        code = cli.main(prog_name="ersattning", standalone_mode=False)
    except (KeyboardInterrupt, click.exceptions.Abort):
        click.echo("\nersattning: interrupted: nothing is half-written (the store and the projection cache are written whole or not at all); rerunning the same command does the work again", err=True)
        sys.exit(130)
    except click.ClickException as e:
        e.show()
        sys.exit(e.exit_code)
    sys.exit(code if isinstance(code, int) else 0)


if __name__ == "__main__":
    main()

