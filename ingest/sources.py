"""What to ingest: files and walked folders, and catalog manifests (CSV or JSONL, docs/formats.md); and
how ingest opens a file: regular files only (`open_regular`).

Each input becomes an `Entry`; each unusable manifest row or path becomes a failure with a one-line
reason, and the rest goes on. A manifest row whose relative path leaves the manifest's folder is such a
row unless allowed: a manifest from elsewhere must not have ingest read whatever file it names.
"""

from __future__ import annotations

import csv
import json
import os
import re
import stat
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import BinaryIO

VIDEO_EXTENSIONS = {
    ".mp4",
    ".m4v",
    ".mov",
    ".mkv",
    ".webm",
    ".avi",
    ".mpg",
    ".mpeg",
    ".ts",
    ".m2ts",
    ".wmv",
    ".flv",
    ".3gp",
    ".ogv",
    ".mxf",
}
VIDEO_ID_PATTERN = re.compile(r"[^\s/\\]{1,128}")
FILE_KINDS = {
    stat.S_IFIFO: "a FIFO",
    stat.S_IFSOCK: "a socket",
    stat.S_IFCHR: "a character device",
    stat.S_IFBLK: "a block device",
    stat.S_IFDIR: "a folder",
}


class Unreadable(Exception):
    """A file ingest will not or cannot open; the message is the one-line reason the user sees."""


class Outside(ValueError):
    """A manifest row whose relative path leaves the manifest's folder."""


@dataclass
class Entry:
    """One file to ingest, with the metadata its manifest row gave (None: not given)."""

    path: Path
    video_id: str | None = None
    title: str | None = None
    description: str | None = None
    tags: list[str] | None = None
    category: str | None = None
    published_at: str | None = None

    def metadata(self) -> dict:
        """The text fields as the store keeps them; fields the input did not give are left out."""
        out: dict[str, str | None] = {}
        if self.title is not None:
            out["title"] = self.title
        if self.description is not None:
            out["description"] = self.description
        if self.tags is not None:
            out["tags"] = "|".join(self.tags)
        if self.category is not None:
            out["category"] = self.category or None
        if self.published_at is not None:
            out["published_at"] = self.published_at or None
        return out


@dataclass
class Collected:
    entries: list[Entry] = field(default_factory=list)
    failed: list[dict] = field(default_factory=list)  # {path, reason}

    def fail(self, path, reason: str) -> None:
        self.failed.append({"path": str(path), "reason": reason})


def collect(
    paths: Sequence[Path | str] = (), manifest: Path | str | None = None, allow_outside: bool = False
) -> Collected:
    """Files given directly are always tried; folders are walked for regular files with video extensions
    (FIFOs, sockets and devices are skipped). `allow_outside`: see `read_manifest`."""
    out = Collected()
    if manifest is not None:
        read_manifest(Path(manifest), out, allow_outside)
    for raw in paths:
        path = Path(raw).expanduser()
        if path.is_dir():  # is_file(): a regular file, links followed
            for file in sorted(p for p in path.rglob("*") if p.is_file() and not _hidden(p, path)):
                if file.suffix.lower() in VIDEO_EXTENSIONS:
                    out.entries.append(Entry(file.resolve()))
        elif path.exists():
            out.entries.append(Entry(path.resolve()))
        else:
            out.fail(path, "no such file or folder")
    return out


def _hidden(path: Path, root: Path) -> bool:
    return any(part.startswith(".") for part in path.relative_to(root).parts)


def open_regular(path: Path | str) -> BinaryIO:
    """Open a regular file for reading, links followed; Unreadable otherwise. A FIFO, a socket or a device
    (a link to /dev/zero) is refused before it is opened, for reading it could block or never end. The
    open itself does not block, and the opened descriptor is checked again, so a FIFO swapped in after
    the first check cannot hang ingest either."""
    try:
        _check_regular(os.stat(path).st_mode)
        fd = os.open(path, os.O_RDONLY | getattr(os, "O_NONBLOCK", 0) | getattr(os, "O_BINARY", 0))
    except OSError as exc:
        raise Unreadable(f"cannot read file: {exc.strerror or exc}") from exc
    try:
        _check_regular(os.fstat(fd).st_mode)
        return os.fdopen(fd, "rb")
    except BaseException:
        os.close(fd)
        raise


def _check_regular(mode: int) -> None:
    if not stat.S_ISREG(mode):
        raise Unreadable(f"not a regular file ({FILE_KINDS.get(stat.S_IFMT(mode), 'an unusual kind')})")


def read_manifest(manifest: Path, out: Collected, allow_outside: bool = False) -> None:
    """Append the manifest's rows to `out`; a row that cannot be used is a failure naming its line. A
    relative path that leaves the manifest's folder (`..`) is such a row unless `allow_outside`; it is
    recorded under the manifest's line, never under the path it names."""
    if not manifest.is_file():
        out.fail(manifest, "manifest not found")
        return
    try:
        rows = list(_jsonl_rows(manifest) if manifest.suffix.lower() in (".jsonl", ".ndjson") else _csv_rows(manifest))
    except (UnicodeDecodeError, csv.Error, ValueError) as exc:
        out.fail(manifest, f"manifest cannot be read: {' '.join(str(exc).split())[:200]}")
        return
    for line, row in rows:
        where = f"{manifest.name} line {line}"
        if isinstance(row, str):  # a parse error for this line
            out.fail(f"{manifest}:{line}", f"{where}: {row}")
            continue
        try:
            out.entries.append(_entry_from_row(row, manifest.parent, allow_outside))
        except Outside as exc:
            out.fail(f"{manifest}:{line}", f"{where}: {exc}")
        except ValueError as exc:
            out.fail(row.get("path") or f"{manifest}:{line}", f"{where}: {exc}")


def _csv_rows(manifest: Path):
    with open(manifest, newline="", encoding="utf-8-sig") as f:
        reader = csv.DictReader(f)
        if not reader.fieldnames or "path" not in [c.strip() for c in reader.fieldnames]:
            raise ValueError("the header has no 'path' column")
        for row in reader:
            if None in row:
                yield reader.line_num, f"{len(row[None])} more field(s) than the header has"
                continue
            yield reader.line_num, {k.strip(): (v if v is not None else "") for k, v in row.items()}


def _jsonl_rows(manifest: Path):
    with open(manifest, encoding="utf-8-sig") as f:
        for line, text in enumerate(f, start=1):
            if not text.strip():
                continue
            try:
                row = json.loads(text)
            except json.JSONDecodeError as exc:
                yield line, f"invalid JSON ({exc.msg})"
                continue
            yield line, row if isinstance(row, dict) else "a row must be a JSON object"


def _escapes(relative: Path) -> bool:
    """Whether a relative path leaves its folder, as written (`a/../../b`): links are not followed, so a
    manifest's folder that is itself a link, or links inside it, are the manifest's own business."""
    return Path(os.path.normpath(relative)).parts[:1] == (os.pardir,)


def _text(row: dict, key: str) -> str | None:
    value = row.get(key)
    if value is None:
        return None
    if not isinstance(value, (str, int, float)):
        raise ValueError(f"{key} must be text")
    return str(value).strip()


def _entry_from_row(row: dict, base: Path, allow_outside: bool = False) -> Entry:
    raw_path = _text(row, "path")
    if not raw_path:
        raise ValueError("missing path")
    path = Path(raw_path).expanduser()
    if not path.is_absolute() and not allow_outside and _escapes(path):
        raise Outside("path escapes the manifest's folder (use --allow-outside)")
    path = (path if path.is_absolute() else base / path).resolve()
    video_id = _text(row, "video_id") or None
    if video_id is not None and not VIDEO_ID_PATTERN.fullmatch(video_id):
        raise ValueError(f"bad video_id {video_id[:40]!r} (1-128 characters, no spaces or slashes)")
    tags = row.get("tags")
    if isinstance(tags, list):
        tags = [str(t).strip() for t in tags if str(t).strip()]
    elif tags is not None:
        tags = [t.strip() for t in str(tags).split("|") if t.strip()]
    published = _text(row, "published_at")
    if published:
        try:
            datetime.fromisoformat(published.replace("Z", "+00:00"))
        except ValueError:
            raise ValueError(f"published_at {published[:40]!r} is not ISO 8601") from None
    return Entry(
        path=path,
        video_id=video_id,
        title=_text(row, "title"),
        description=_text(row, "description"),
        tags=tags,
        category=_text(row, "category"),
        published_at=published,
    )
