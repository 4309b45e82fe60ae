"""What every command shares: the data directory option, --json output, and how failures end."""

from __future__ import annotations

import json
import logging
import os
import sys
from collections.abc import Callable
from pathlib import Path

import typer

from index.api import Vidrec
from index.search import DEFAULT_K, SearchError
from index.vector_index import IndexFileError
from ingest.interactions import InteractionsError
from ingest.learning import ModelError
from ingest.store import Store, StoreError
from ingest.tune import TuneError
from models.clip import ClipError

DEFAULT_DATA_DIR = "vidrec-data"
PACKAGES = ("models", "ingest", "index", "app")  # whose log records a command shows on stderr

options: dict[str, Path | None] = {"data_dir": None}

JsonOption = typer.Option(False, "--json", help="Print one JSON document on stdout.")
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
)


def data_dir() -> Path:
    chosen = options["data_dir"] or os.environ.get("VIDREC_DATA_DIR") or DEFAULT_DATA_DIR
    return Path(chosen).expanduser()


def open_store(create: bool = False) -> Store:
    return Store(data_dir(), create=create)


def open_api(create: bool = False) -> Vidrec:
    return Vidrec(data_dir(), create=create)


def emit(payload: dict, as_json: bool, text: str) -> None:
    if as_json:
        print(json.dumps(payload, ensure_ascii=False, default=str))
    else:
        print(text)


def run(as_json: bool, body: Callable[[], None]) -> None:
    """Run a command body, turning expected failures into the documented output and exit status."""
    try:
        body()
    except USER_ERRORS as exc:
        message = " ".join(str(exc).split()) or type(exc).__name__
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
