"""What every command shares: the data directory option, --json output, and how failures end."""

from __future__ import annotations

import json
import logging
import math
import os
import sys
import traceback
from collections.abc import Callable
from pathlib import Path

import typer

try:  # recent typer vendors click
    from typer._click.exceptions import UsageError
except ImportError:  # pragma: no cover - older typer on real click
    from click.exceptions import UsageError  # type: ignore[assignment]

from index.api import Vidrec
from index.search import DEFAULT_K, SearchError
from index.vector_index import IndexFileError
from ingest.engine import ENGINES, EngineError
from ingest.interactions import InteractionsError
from ingest.learning import ModelError
from ingest.staging import StagingError
from ingest.store import DamagedCatalog, DatabaseError, DataDir, Store, StoreError, database_failure, is_disk_full
from ingest.tune import TuneError
from models.clip import ClipError

DEFAULT_DATA_DIR = "vidrec-data"
PACKAGES = ("models", "ingest", "index", "app")  # whose log records a command shows on stderr

options: dict[str, Path | None] = {"data_dir": None}

JsonOption = typer.Option(False, "--json", help="Print one JSON document on stdout.")


def _engine(value: str) -> str:
    if value not in ENGINES:
        raise typer.BadParameter(f"use one of {', '.join(ENGINES)}")
    return value


EngineOption = typer.Option(
    "local", "--engine", callback=_engine, help="local (this process) or ray (RAY_ADDRESS, else a local Ray cluster)."
)
KOption = typer.Option(DEFAULT_K, "-k", "--k", min=1, help="How many results (more than the catalog: all of it).")


class Failure(Exception):
    """Nothing could be done: exit 1 with this one-line message."""


# Exceptions whose message is a one-line reason for the user (exit 1).
USER_ERRORS: tuple[type[Exception], ...] = (
    Failure,
    ClipError,
    StoreError,
    InteractionsError,
    TuneError,
    SearchError,
    IndexFileError,
    ModelError,
    EngineError,
    StagingError,
)


SANDBOX_VARIABLE = "VIDREC_SANDBOX"  # "1" (`vidrec serve --sandbox`): the app keeps visitors' actions in their session


def data_dir() -> Path:
    chosen = options["data_dir"] or os.environ.get("VIDREC_DATA_DIR") or DEFAULT_DATA_DIR
    return Path(chosen).expanduser()


def open_store(create: bool = False, read_only: bool = False) -> Store:
    """A job's store (writable: its writes take the writer lock), or a reader's (read-only: never writes, never
    waits for a job)."""
    return Store(data_dir(), create=create, read_only=read_only)


def open_api(create: bool = False, read_only: bool = False) -> Vidrec:
    return Vidrec(data_dir(), create=create, read_only=read_only)


def finite(value):
    """The payload with every non-finite float (NaN, inf) as null: JSON has no NaN, and a program reading it
    should not have to guess."""
    if isinstance(value, float):
        return value if math.isfinite(value) else None
    if isinstance(value, dict):
        return {k: finite(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [finite(v) for v in value]
    return value


def emit(payload: dict, as_json: bool, text: str) -> None:
    if as_json:
        print(json.dumps(finite(payload), ensure_ascii=False, default=str, allow_nan=False))
    else:
        print(text)


def error_message(exc: BaseException) -> str:
    """One line for any failure: the reason for ours, the library's words with the kind for the rest."""
    if isinstance(exc, USER_ERRORS):
        message = str(exc)
    elif isinstance(exc, DatabaseError):
        message = str(database_failure(exc, DataDir(data_dir()).database))
    elif is_disk_full(exc):
        where = getattr(exc, "filename", None)
        message = f"the disk is full{f' ({where})' if where else ''}: free some space and run it again"
    elif isinstance(exc, OSError):
        message = f"{exc.strerror or exc}{f' ({exc.filename})' if exc.filename else ''}"
    else:
        message = f"{type(exc).__name__}: {exc}"
    return " ".join(message.split()) or type(exc).__name__


def expected(exc: BaseException) -> bool:
    """Failures whose one line says everything (ours, a full disk, a damaged catalog): no traceback."""
    if isinstance(exc, DatabaseError):
        return isinstance(database_failure(exc, DataDir(data_dir()).database), DamagedCatalog) or is_disk_full(exc)
    return isinstance(exc, USER_ERRORS) or is_disk_full(exc)


def run(as_json: bool, body: Callable[[], None]) -> None:
    """Run a command body; every failure ends as one line (one {"error": ...} document with --json) and exit 1.
    Failures that are not a reason we give (a library's, the disk's) also leave their traceback on stderr."""
    try:
        body()
    except (typer.Exit, typer.Abort, KeyboardInterrupt, UsageError):
        raise
    except Exception as exc:
        if not expected(exc):
            traceback.print_exc(file=sys.stderr)
        message = error_message(exc)
        if as_json:
            print(json.dumps({"error": message}, ensure_ascii=False))
        else:
            print(f"error: {message}", file=sys.stderr)
        raise typer.Exit(1) from None


def progress_wanted(as_json: bool) -> bool:
    """Progress bars and the story of a long job on stderr, unless --json output goes to a program that is not
    watching a terminal (then only warnings and errors)."""
    wanted = not as_json or sys.stderr.isatty()
    for package in PACKAGES:
        logging.getLogger(package).setLevel(logging.INFO if wanted else logging.WARNING)
    return wanted
