"""User mistakes become one line on stderr and exit code 2, never a traceback."""

from __future__ import annotations

import sys
from collections.abc import Callable
from typing import Any

import click
from pydantic import ValidationError

from ersattning.context import ContextError
from ersattning.explain import ExplainError
from ersattning.ingest.readers import ReadError
from ersattning.ingest.report import ImportError_
from ersattning.parameters import ParameterError
from ersattning.privacy import PseudonymKeyError, mask_numbers
from ersattning.projection import ProjectionError
from ersattning.store import StoreError
from ersattning.yamlconf import ConfigError

USER_ERRORS: tuple[type[BaseException], ...] = (StoreError, ProjectionError, ContextError, ParameterError, ExplainError, ImportError_, PseudonymKeyError, ReadError)


def fail(message: str) -> None:
    click.echo(f"ersattning: error: {mask_numbers(message)}", err=True)  # a message may quote a cell
    sys.exit(2)


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
        sys.exit(2)
    except USER_ERRORS as e:
        fail(str(e))
    except ValidationError as e:
        fail(describe_validation(e))
