"""Printing results and errors for people (Rich) and machines (--json)."""

from __future__ import annotations

import json
import sys
from typing import Any, NoReturn

import typer
from pydantic import BaseModel
from rich.console import Console

from mosaic.errors import MosaicError

# soft_wrap: a message is one line however long (a database URL, a path), so that scripts
# and logs can grep it; tables still fit the terminal.
out = Console(soft_wrap=True)
err = Console(stderr=True, soft_wrap=True)


def to_jsonable(result: BaseModel, *, raw: bool) -> Any:
    data = result.model_dump(mode="json")
    return data if raw else _drop_raw(data)


def _drop_raw(data: Any) -> Any:
    if isinstance(data, dict):
        return {k: _drop_raw(v) for k, v in data.items() if k != "raw"}
    if isinstance(data, list):
        return [_drop_raw(v) for v in data]
    return data


def print_json(data: Any) -> None:
    sys.stdout.write(json.dumps(data, indent=2, default=str) + "\n")


def fail(exc: MosaicError, *, as_json: bool = False) -> NoReturn:
    """Report a typed error without a traceback; the exit code says which kind it was."""
    if as_json:
        sys.stdout.write(json.dumps({"error": exc.to_dict()}, default=str) + "\n")
    else:
        err.print(f"[bold red]error[/] [dim]({exc.code})[/]: {exc.message}", highlight=False,
                  soft_wrap=True)
    raise typer.Exit(exc.exit_code)
