"""Import interaction logs (CSV or Parquet, docs/formats.md) into the store.

A row is identified by (user_id, video_id, timestamp), so importing the same rows again adds nothing.
Malformed rows and rows naming unknown videos are skipped and reported by line (line 1 is the header;
for Parquet, row i is line i + 2 as if it had one).
"""

from __future__ import annotations

import csv
import math
import time
from dataclasses import asdict, dataclass, field
from datetime import datetime, timedelta, timezone
from pathlib import Path

from .store import Interaction, Store

REQUIRED = ("user_id", "video_id", "timestamp", "clicked")  # device, region, liked, watch_seconds may be missing
MAX_REPORTED = 1000  # skipped rows listed one by one; beyond this only counted


class InteractionsError(Exception):
    """A log that cannot be read at all (missing file, missing columns); one line for the user."""


@dataclass
class ImportReport:
    imported: int = 0
    duplicates: int = 0  # rows already in the store (or repeated in the file)
    skipped: list[dict] = field(default_factory=list)  # {line, reason}
    skipped_count: int = 0
    seconds: float = 0.0

    def skip(self, line: int, reason: str) -> None:
        self.skipped_count += 1
        if len(self.skipped) < MAX_REPORTED:
            self.skipped.append({"line": line, "reason": reason})

    def to_json(self) -> dict:
        return asdict(self)


def import_interactions(store: Store, path: Path | str, source: str = "import") -> ImportReport:
    started = time.perf_counter()
    path = Path(path)
    if not path.is_file():
        raise InteractionsError(f"interaction log not found: {path}")
    report = ImportReport()
    with store.writing("import-interactions"):  # the known videos cannot change before the rows are added
        known = set(store.videos.video_ids())
        rows = []
        for line, raw in _read_rows(path):
            try:
                rows.append(parse_row(raw, known))
            except ValueError as exc:
                report.skip(line, str(exc))
        report.imported = store.interactions.add(rows, source)
    report.duplicates = len(rows) - report.imported
    report.seconds = round(time.perf_counter() - started, 3)
    return report


def _read_rows(path: Path):
    if path.suffix.lower() in (".parquet", ".pq"):
        import pyarrow.parquet as pq

        try:
            table = pq.read_table(path)
        except Exception as exc:
            raise InteractionsError(f"cannot read Parquet {path.name}: {' '.join(str(exc).split())[:200]}") from exc
        _check_columns(table.column_names, path)
        for i, row in enumerate(table.to_pylist()):
            yield i + 2, row
        return
    try:
        with open(path, newline="", encoding="utf-8-sig") as f:
            reader = csv.DictReader(f)
            _check_columns(reader.fieldnames or [], path)
            for row in reader:
                if None in row:
                    yield reader.line_num, {"__error__": f"{len(row[None])} more field(s) than the header has"}
                else:
                    yield reader.line_num, row
    except (UnicodeDecodeError, csv.Error) as exc:
        raise InteractionsError(f"cannot read CSV {path.name}: {' '.join(str(exc).split())[:200]}") from exc


def _check_columns(columns, path: Path) -> None:
    missing = [c for c in REQUIRED if c not in columns]
    if missing:
        raise InteractionsError(f"{path.name} lacks required column(s): {', '.join(missing)}")


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
            moment = datetime.fromtimestamp(float(text), tz=timezone.utc)
        except ValueError:
            try:
                moment = datetime.fromisoformat(text.replace("Z", "+00:00"))
            except ValueError:
                raise ValueError(f"timestamp {text[:40]!r} is neither ISO 8601 nor Unix seconds") from None
            if moment.tzinfo is None:
                moment = moment.replace(tzinfo=timezone.utc)
        except (OverflowError, OSError):
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
    return None if math.isnan(number) else number  # NaN: unknown, like an empty cell
