"""Uploads from the browser: saved under generated names inside the data dir's uploads folder, never under the name
the browser sent (which could hold `../` or clash), with a size limit. A batch of uploaded videos is
ingested through a small manifest that gives each file its original name as the title."""

from __future__ import annotations

import csv
import uuid
from pathlib import Path

from ingest.sources import VIDEO_EXTENSIONS

UPLOAD_LIMIT_MB = 200  # also streamlit's server.maxUploadSize (app/serve.py)
IMAGE_EXTENSIONS = {".jpg", ".jpeg", ".png", ".webp", ".bmp", ".gif"}


class UploadError(Exception):
    """An upload refused before it reaches the catalog; one line for the user."""


def suffixes(kinds: set[str]) -> list[str]:
    """file_uploader's `type` list (without dots)."""
    return sorted(s.lstrip(".") for s in kinds)


def save_upload(folder: Path, name: str, data: bytes, allowed: set[str], limit_mb: float = UPLOAD_LIMIT_MB) -> Path:
    """Write one upload as <folder>/<uuid><suffix>; refuse an unknown suffix, an empty file or one over the
    limit."""
    suffix = Path(str(name)).suffix.lower()
    if suffix not in allowed:
        raise UploadError(f"{Path(str(name)).name}: not a supported file type ({', '.join(sorted(allowed))})")
    if not data:
        raise UploadError(f"{Path(str(name)).name}: the file is empty")
    if len(data) > limit_mb * 1024 * 1024:
        raise UploadError(f"{Path(str(name)).name}: {len(data) / 2**20:.1f} MB is over the {limit_mb:g} MB limit")
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / f"{uuid.uuid4().hex}{suffix}"
    with open(path, "xb") as out:
        out.write(data)
    return path


def write_manifest(folder: Path, files: list[tuple[Path, str]]) -> Path:
    """A manifest for saved uploads [(saved path, original name)]: the original name without its extension is
    the title (taken as text: a name holding `/` is not a path here)."""
    path = folder / f"{uuid.uuid4().hex}.csv"
    with open(path, "x", newline="", encoding="utf-8") as out:
        writer = csv.writer(out)
        writer.writerow(["path", "title"])
        for saved, original in files:
            name = str(original)
            title = name[: -len(saved.suffix)] if saved.suffix and name.lower().endswith(saved.suffix) else name
            writer.writerow([saved.name, title.strip() or saved.stem])
    return path


def video_types() -> list[str]:
    return suffixes(VIDEO_EXTENSIONS)


def query_types() -> list[str]:
    return suffixes(VIDEO_EXTENSIONS | IMAGE_EXTENSIONS)
