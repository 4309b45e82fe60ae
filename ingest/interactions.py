"""Import interaction logs (CSV or Parquet, docs/formats.md) into the store.

A row is identified by (user_id, video_id, timestamp), so importing the same rows again adds nothing. The first
row logged under a key wins: a later row with the same key and other values is a conflict, reported and not
applied, so a re-import never changes what is stored. Malformed rows and rows naming unknown videos are skipped
and reported by line (line 1 is the header; for Parquet, row i is line i + 2 as if it had one).

The log is streamed: rows are parsed and written batch by batch (one transaction each, all under one writer
lock), so memory does not grow with the log. A CSV row is one line: a broken quote or bad bytes only cost
their own line.
"""

from __future__ import annotations

import codecs
import csv
import math
import time
from collections.abc import Iterator
from dataclasses import asdict, dataclass, field
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import BinaryIO

from .store import Interaction, Store, forgotten_hash

REQUIRED = ("user_id", "video_id", "timestamp", "clicked")  # device, region, liked, watch_seconds may be missing
COLUMNS = (*REQUIRED, "device", "region", "liked", "watch_seconds")
MAX_REPORTED = 1000  # skipped rows and conflicts listed one by one; beyond this only counted
BATCH_ROWS = 20_000  # rows written per transaction: bounds memory, however long the log
MAX_LINE = 1 << 20  # bytes; a longer CSV line is refused without being read into memory
COMPARED = ("utc_offset", "device", "region", "clicked", "liked", "watch_seconds")  # what a conflict can differ in


class InteractionsError(Exception):
    """A log that cannot be read at all (missing file, missing columns); one line for the user."""


@dataclass
class ImportReport:
    imported: int = 0
    duplicates: int = 0  # rows the store already holds with the same values (or repeated so in the file)
    conflicts: list[dict] = field(default_factory=list)  # {line, reason}: a logged key with other values
    conflicts_count: int = 0
    skipped: list[dict] = field(default_factory=list)  # {line, reason}
    skipped_count: int = 0
    seconds: float = 0.0

    def skip(self, line: int, reason: str) -> None:
        self.skipped_count += 1
        if len(self.skipped) < MAX_REPORTED:
            self.skipped.append({"line": line, "reason": reason})

    def conflict(self, line: int, reason: str) -> None:
        self.conflicts_count += 1
        if len(self.conflicts) < MAX_REPORTED:
            self.conflicts.append({"line": line, "reason": reason})

    def to_json(self) -> dict:
        return asdict(self)


def import_interactions(
    store: Store, path: Path | str, source: str = "import", batch_rows: int = BATCH_ROWS
) -> ImportReport:
    started = time.perf_counter()
    path = Path(path)
    if not path.is_file():
        raise InteractionsError(f"interaction log not found: {path}")
    report = ImportReport()
    with store.writing("import-interactions"):  # the known videos cannot change before the rows are added
        known = set(store.videos.video_ids())  # catalog-sized, not log-sized
        forgotten = Forgotten(store.interactions.forgotten_hashes())
        batch: list[tuple[int, Interaction]] = []
        for line, raw in _read_rows(path, batch_rows):
            try:
                row = parse_row(raw, known)
                if forgotten.holds(row.user_id):
                    raise ValueError("a user forgotten on request (`vidrec forget-user`): not imported")
                batch.append((line, row))
            except ValueError as exc:
                report.skip(line, str(exc))
            if len(batch) >= batch_rows:
                _write(store, batch, source, report)
                batch = []
        _write(store, batch, source, report)
    report.seconds = round(time.perf_counter() - started, 3)
    return report


class Forgotten:
    """Which users of a log were forgotten on request (the store keeps their ids' hashes only)."""

    def __init__(self, hashes: set[str]):
        self.hashes = hashes
        self._seen: dict[str, bool] = {}  # user -> forgotten: one hash per user, not per row

    def holds(self, user_id: str) -> bool:
        if not self.hashes:
            return False
        if user_id not in self._seen:
            self._seen[user_id] = forgotten_hash(user_id) in self.hashes
        return self._seen[user_id]


def _write(store: Store, batch: list[tuple[int, Interaction]], source: str, report: ImportReport) -> None:
    """One batch, one transaction: new rows added, repeats counted, conflicts reported."""
    if not batch:
        return
    logged = store.interactions.add_each([row for _, row in batch], source)
    for (line, row), held in zip(batch, logged):
        if held is None:
            report.imported += 1
        elif held is row:
            report.duplicates += 1
        else:
            report.conflict(line, conflict_reason(row, held))


def conflict_reason(row: Interaction, held: Interaction) -> str:
    differences = "; ".join(
        f"{name} {_shown(getattr(row, name))} here, {_shown(getattr(held, name))} logged"
        for name in COMPARED
        if getattr(row, name) != getattr(held, name)
    )
    return f"user, video and time already logged with other values ({differences}); the first is kept"


def _shown(value) -> str:
    return "empty" if value is None else str(value)[:40]


def _read_rows(path: Path, batch_rows: int) -> Iterator[tuple[int, dict]]:
    if path.suffix.lower() in (".parquet", ".pq"):
        return _read_parquet(path, batch_rows)
    return _read_csv(path)


def _read_parquet(path: Path, batch_rows: int) -> Iterator[tuple[int, dict]]:
    """Row by row, reading one batch of rows at a time (never the whole table)."""
    import pyarrow.parquet as pq

    try:
        log = pq.ParquetFile(path)
        names = log.schema_arrow.names
    except Exception as exc:
        raise InteractionsError(f"cannot read Parquet {path.name}: {_one_line(exc)}") from exc
    _check_columns(names, path)
    line = 2
    try:
        for batch in log.iter_batches(batch_size=batch_rows, columns=[c for c in COLUMNS if c in names]):
            for row in batch.to_pylist():
                yield line, row
                line += 1
    except Exception as exc:
        raise InteractionsError(
            f"cannot read Parquet {path.name} past row {line - 2} (the rows before are imported): {_one_line(exc)}"
        ) from exc


def _read_csv(path: Path) -> Iterator[tuple[int, dict]]:
    """Line by line: each physical line is one row, parsed on its own, so an unclosed quote or bytes that are not
    UTF-8 cost only their own line. Blank lines are passed over."""
    header: list[str] | None = None
    with open(path, "rb") as f:
        for number, data in _lines(f):
            if data is None:
                if header is None:
                    raise InteractionsError(f"cannot read CSV {path.name}: its header is over {MAX_LINE:,} bytes")
                yield number, {"__error__": f"line over {MAX_LINE:,} bytes"}
                continue
            try:
                text = data.decode("utf-8")
            except UnicodeDecodeError:
                if header is None:
                    raise InteractionsError(f"cannot read CSV {path.name}: its header is not UTF-8") from None
                yield number, {"__error__": "invalid UTF-8 bytes"}
                continue
            if not text.strip():
                continue
            try:
                fields = next(csv.reader([text], strict=True))
            except csv.Error as exc:
                reason = "unterminated quote" if "unexpected end of data" in str(exc) else f"malformed CSV: {exc}"
                if header is None:
                    raise InteractionsError(f"cannot read CSV {path.name}: its header: {reason}") from None
                yield number, {"__error__": reason.split(" - ")[0]}  # csv's hints are not for our users
                continue
            if header is None:
                header = fields
                _check_columns(header, path)
            elif len(fields) > len(header):
                yield number, {"__error__": f"{len(fields) - len(header)} more field(s) than the header has"}
            else:
                yield number, dict(zip(header, fields))  # fewer fields: the rest are missing


def _lines(f: BinaryIO) -> Iterator[tuple[int, bytes | None]]:
    """(line number, bytes) of each line, the first's byte order mark dropped; None for a line over MAX_LINE bytes,
    which is passed over without being held."""
    number = 0
    while data := f.readline(MAX_LINE):
        number += 1
        if len(data) == MAX_LINE and not data.endswith(b"\n"):
            while data and not data.endswith(b"\n"):
                data = f.readline(MAX_LINE)
            yield number, None
        else:
            yield number, data.removeprefix(codecs.BOM_UTF8) if number == 1 else data


def _check_columns(columns, path: Path) -> None:
    missing = [c for c in REQUIRED if c not in columns]
    if missing:
        raise InteractionsError(f"{path.name} lacks required column(s): {', '.join(missing)}")


def _one_line(exc: Exception) -> str:
    return " ".join(str(exc).split())[:200]


def parse_row(raw: dict, known_videos: set[str]) -> Interaction:
    """One log row -> Interaction; ValueError with a one-line reason if it cannot be used."""
    if "__error__" in raw:
        raise ValueError(raw["__error__"])
    user_id = _str(raw.get("user_id"))
    if not user_id:
        raise ValueError("missing user_id")
    video_id = _str(raw.get("video_id"))
    if not video_id:
        raise ValueError("missing video_id")
    if video_id not in known_videos:
        raise ValueError(f"unknown video_id {video_id[:60]!r}")
    ts, offset, local = parse_timestamp(raw.get("timestamp"))
    clicked = _flag(raw.get("clicked"), "clicked")
    if clicked is None:
        raise ValueError("missing clicked")
    liked = _flag(raw.get("liked"), "liked")
    if liked and not clicked:
        raise ValueError("liked without a click")
    watch = _number(raw.get("watch_seconds"), "watch_seconds")
    if watch is not None and watch < 0:
        raise ValueError(f"watch_seconds {watch} is negative")
    return Interaction(
        user_id,
        video_id,
        ts,
        offset,
        local.hour,
        local.weekday(),
        _str(raw.get("device")) or None,
        _str(raw.get("region")) or None,
        clicked,
        liked,
        watch,
    )


def parse_timestamp(value) -> tuple[int, int, datetime]:
    """ISO 8601 (offset kept; none means UTC) or Unix seconds (UTC) -> (unix seconds, offset minutes, local time)."""
    if isinstance(value, datetime):
        moment = value if value.tzinfo else value.replace(tzinfo=timezone.utc)
    else:
        text = _str(value)
        if not text:
            raise ValueError("missing timestamp")
        try:
            seconds: float | None = float(text)
        except ValueError:
            seconds = None
        if seconds is None:
            try:
                moment = datetime.fromisoformat(text.replace("Z", "+00:00"))
            except ValueError:
                raise ValueError(f"timestamp {text[:40]!r} is neither ISO 8601 nor Unix seconds") from None
            if moment.tzinfo is None:
                moment = moment.replace(tzinfo=timezone.utc)
        elif not math.isfinite(seconds):
            raise ValueError(f"timestamp {text[:40]!r} is not a finite number")
        else:
            try:
                moment = datetime.fromtimestamp(seconds, tz=timezone.utc)
            except (OverflowError, OSError, ValueError):
                raise ValueError(f"timestamp {text[:40]!r} is out of range") from None
    offset = moment.utcoffset() or timedelta(0)
    return int(moment.timestamp()), int(offset.total_seconds() // 60), moment


def _str(value) -> str:
    return "" if value is None else str(value).strip()


def _flag(value, name: str) -> int | None:
    """0 or 1; None where the cell is empty (or NaN)."""
    text = _str(value).lower()
    if not text or text == "nan":
        return None
    if text in ("1", "1.0", "true"):
        return 1
    if text in ("0", "0.0", "false"):
        return 0
    raise ValueError(f"{name} must be 0 or 1, not {text[:20]!r}")


def _number(value, name: str) -> float | None:
    text = _str(value)
    if not text:
        return None
    try:
        number = float(text)
    except ValueError:
        raise ValueError(f"{name} {text[:20]!r} is not a number") from None
    if math.isnan(number):
        return None  # NaN: unknown, like an empty cell
    if math.isinf(number):
        raise ValueError(f"{name} {text[:20]!r} is not a finite number")
    return number
