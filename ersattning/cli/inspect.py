"""``ersattning inspect``: a municipality's own export looked at, and the mapping that imports it proposed
(the logic: ``ersattning/ingest/inspect.py``; the keys: docs/mapping.md)."""

from __future__ import annotations

from pathlib import Path

import click

from ersattning.cli.errors import fail, run_guarded

KINDS = ["visits", "decisions", "stays", "providers", "events"]


@click.command(name="inspect")
@click.argument("path", type=click.Path(dir_okay=False))
@click.option("--kind", type=click.Choice(KINDS), default=None, help="What the file holds (default: guessed from its headers).")
@click.option("--write-mapping", "write_mapping", type=click.Path(dir_okay=False), default=None, help="Write the proposed mapping (YAML, every key commented) here.")
@click.option("--force", is_flag=True, help="Overwrite the --write-mapping file if it exists.")
def inspect_command(path: str, kind: str | None, write_mapping: str | None, force: bool) -> None:
    """Detect a file's encoding, delimiter, decimal mark, dates, staff separator and identity-number columns
    (shown masked), and propose the mapping that imports it (`ersattning import FILE --mapping M`)."""
    from ersattning.files import WriteError, write_text_atomic
    from ersattning.ingest.inspect import inspect_file

    if write_mapping and Path(write_mapping).exists() and not force:
        fail(f"{write_mapping} exists: choose another path, or add --force to overwrite it")
    found = run_guarded(inspect_file, path, kind)
    for line in found.report():
        click.echo(line)
    if write_mapping:
        try:
            write_text_atomic(write_mapping, found.yaml(), encoding="utf-8", private=False)  # configuration, no personal data
        except WriteError as e:
            fail(str(e))
        click.echo(f"wrote {write_mapping}: import with `ersattning import {path} --kind {found.kind} --mapping {write_mapping}`")
