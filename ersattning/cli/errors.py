"""User mistakes become one line on stderr and exit code 2, never a traceback; an interrupt, one line saying
what is stored and exit code 130 (SIGINT) or 143 (SIGTERM).

Exit statuses (README, "Importing visit logs"): 0 done; 1 a failure of the tool or the system (a traceback);
2 a user error, nothing written by the failing step; 3 an import done whose rejected rows were quarantined
(:data:`ROWS_REJECTED`); 128 + the signal's number when interrupted.
"""

from __future__ import annotations

import contextlib
import signal
import sys
from collections.abc import Callable, Iterator
from types import FrameType
from typing import Any

import click
from pydantic import ValidationError

from ersattning.context import ContextError
from ersattning.explain import ExplainError
from ersattning.files import WriteError
from ersattning.ingest.readers import ReadError
from ersattning.ingest.report import ImportError_
from ersattning.parameters import ParameterError
from ersattning.privacy import PseudonymKeyError, mask_numbers
from ersattning.projection import ProjectionError
from ersattning.store import StoreError
from ersattning.yamlconf import ConfigError

USER_ERROR = 2
#: an import (or a dry run) that rejected rows: the others were imported (checked), the rejected ones quarantined
ROWS_REJECTED = 3

USER_ERRORS: tuple[type[BaseException], ...] = (StoreError, ProjectionError, ContextError, ParameterError, ExplainError, ImportError_, PseudonymKeyError, ReadError, WriteError)


def fail(message: str) -> None:
    click.echo(f"ersattning: error: {mask_numbers(message)}", err=True)  # a message may quote a cell
    sys.exit(USER_ERROR)


def describe_validation(error: ValidationError) -> str:
    parts = []
    for e in error.errors():
        where = ".".join(str(x) for x in e["loc"]) or "value"
        parts.append(f"{where}: {e['msg']}")
    return "; ".join(parts)


def run_guarded(main: Callable[..., Any], *args: Any, **kwargs: Any) -> Any:
    try:
        return main(*args, **kwargs)
    except ConfigError as e:
        for line in str(e).splitlines():
            click.echo(f"ersattning: error: {mask_numbers(line)}", err=True)
        sys.exit(USER_ERROR)
    except USER_ERRORS as e:
        fail(str(e))
    except ValidationError as e:
        fail(describe_validation(e))


class Interrupted(KeyboardInterrupt):
    """SIGINT or SIGTERM arrived: raised in the main thread, where the work's ``finally`` blocks end it cleanly."""

    def __init__(self, signum: int) -> None:
        super().__init__(signal.Signals(signum).name)
        self.signum = signum

    @property
    def status(self) -> int:
        """The shell's status for a process ended by the signal: 130 for SIGINT, 143 for SIGTERM."""
        return 128 + self.signum


@contextlib.contextmanager
def _signals_raise() -> Iterator[None]:
    """SIGINT and SIGTERM raise :class:`Interrupted` once; further ones are ignored while the work cleans up
    (which waits for at most one batch in flight)."""
    fired: list[int] = []

    def handler(signum: int, frame: FrameType | None) -> None:
        if not fired:
            fired.append(signum)
            raise Interrupted(signum)

    old = {s: signal.signal(s, handler) for s in (signal.SIGINT, signal.SIGTERM)}
    try:
        yield
    except Interrupted:
        raise  # the handlers stay: the caller says what is stored, and exits
    except BaseException:
        for s, h in old.items():
            signal.signal(s, h)
        raise
    for s, h in old.items():
        signal.signal(s, h)


def run_interruptible(main: Callable[..., Any], stored: Callable[[], str], *args: Any) -> Any:
    """:func:`run_guarded`, and on SIGINT or SIGTERM one line on stderr — ``interrupted:`` and what ``stored()``
    says is stored — and the exit status 128 + the signal's number (no ``Aborted!``, no traceback)."""
    try:
        with _signals_raise():
            return run_guarded(main, *args)
    except Interrupted as e:
        if sys.stderr.isatty():
            click.echo("", err=True)  # end the progress line
        try:
            said = stored()
        except Exception as problem:  # noqa: BLE001 - the line must come whatever stops the reading
            said = f"what is stored could not be read ({problem}); rerunning the same command finishes the work"
        click.echo(f"ersattning: interrupted: {mask_numbers(said)}", err=True)
        sys.exit(e.status)
