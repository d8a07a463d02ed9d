"""``ersattning``: synthetic regions, imports, histories and comparisons."""

from __future__ import annotations

import json
import sys
import time
from typing import Any

import click
from pydantic import ValidationError

from ersattning import __version__, projection
from ersattning.store import STORE_ENV, open_store, resolve_store_url
from ersattning.synth import RegionSpec, synthesize
from ersattning_cli.errors import describe_validation, fail, run_guarded

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
        click.echo(f"wrote {report.events_written:,} events in {seconds:.1f} s into {url} (position {store.position()})")

    run_guarded(work)


def history_summary(url: str) -> dict[str, Any]:
    store = open_store(url, create=False)
    by_type = store.events_by_topic()
    proj = projection.load(store)
    days = proj.visits["planned_start"].dropna()
    return {
        "store": url,
        "events": {"total": sum(by_type.values()), "by_type": {t.split(":", 1)[-1]: n for t, n in sorted(by_type.items())}},
        "recipients": int(len(proj.recipients)),
        "providers": int(len(proj.providers)),
        "visits": int(len(proj.visits)),
        "visits_by_status": {str(k): int(v) for k, v in proj.visits["status"].value_counts().sort_index().items()},
        "first_day": None if days.empty else str(days.min().date()),
        "last_day": None if days.empty else str(days.max().date()),
        "position": int(proj.position),
        "version": __version__,
    }


@cli.command()
@click.option("--store", "store_url", default=None, help=STORE_HELP)
@click.option("--format", "fmt", type=click.Choice(["table", "json"]), default="table", show_default=True)
def history(store_url: str | None, fmt: str) -> None:
    """Summarise the service history in a store."""
    summary = run_guarded(history_summary, resolve_store_url(store_url))
    if fmt == "json":
        click.echo(json.dumps(summary, indent=2, ensure_ascii=False))
        return
    click.echo(f"Store       {summary['store']} (position {summary['position']})")
    click.echo(f"Recipients  {summary['recipients']:,}")
    click.echo(f"Providers   {summary['providers']:,}")
    status = ", ".join(f"{k} {v:,}" for k, v in summary["visits_by_status"].items())
    click.echo(f"Visits      {summary['visits']:,}" + (f" ({status})" if status else ""))
    click.echo(f"Service     {summary['first_day'] or '-'} … {summary['last_day'] or '-'}")
    click.echo(f"Events      {summary['events']['total']:,}")
    width = max((len(t) for t in summary["events"]["by_type"]), default=0)
    for topic, n in summary["events"]["by_type"].items():
        click.echo(f"  {topic:<{width}}  {n:>12,}")


def main() -> None:
    cli(prog_name="ersattning")


if __name__ == "__main__":
    main()
