"""Uploads from the browser: saved under generated names inside the data dir's uploads folder, never under the name
the browser sent (which could hold `../` or clash), with a size limit. A batch of uploaded videos is
ingested through a small manifest that gives each file its original name as the title, and keeps that name
(a `name` column, which ingest ignores), so a refused upload is shown to the user by the name they gave it, never
by its generated one."""

from __future__ import annotations

import csv
import uuid
from pathlib import Path

from ingest.sources import VIDEO_EXTENSIONS

UPLOAD_LIMIT_MB = 200  # also streamlit's server.maxUploadSize (app/serve.py)
IMAGE_EXTENSIONS = {".jpg", ".jpeg", ".png", ".webp", ".bmp", ".gif"}


class UploadError(Exception):
    """An upload refused before it reaches the catalog; one line for the user, naming the file as uploaded."""

    def __init__(self, name: str, reason: str):
        super().__init__(f"{name}: {reason}")
        self.name, self.reason = name, reason


def shown_name(name: str) -> str:
    """The name a browser sent, as shown back to the user: its last part (a browser sends no folders), at most
    200 characters."""
    return (str(name).replace("\\", "/").rsplit("/", 1)[-1].strip() or str(name).strip() or "(no name)")[:200]


def suffixes(kinds: set[str]) -> list[str]:
    """file_uploader's `type` list (without dots)."""
    return sorted(s.lstrip(".") for s in kinds)


def save_upload(folder: Path, name: str, data: bytes, allowed: set[str], limit_mb: float = UPLOAD_LIMIT_MB) -> Path:
    """Write one upload as <folder>/<uuid><suffix>; refuse an unknown suffix, an empty file or one over the
    limit."""
    shown = shown_name(name)
    suffix = Path(shown).suffix.lower()
    if suffix not in allowed:
        raise UploadError(shown, f"not a supported file type ({', '.join(sorted(allowed))})")
    if not data:
        raise UploadError(shown, "the file is empty")
    if len(data) > limit_mb * 1024 * 1024:
        raise UploadError(shown, f"{len(data) / 2**20:.1f} MB is over the {limit_mb:g} MB limit")
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / f"{uuid.uuid4().hex}{suffix}"
    with open(path, "xb") as out:
        out.write(data)
    return path


def write_manifest(folder: Path, files: list[tuple[Path, str]]) -> Path:
    """A manifest for saved uploads [(saved path, original name)]: the original name without its extension is
    the title (taken as text: a name holding `/` is not a path here); `name` keeps the name as shown."""
    path = folder / f"{uuid.uuid4().hex}.csv"
    with open(path, "x", newline="", encoding="utf-8") as out:
        writer = csv.writer(out)
        writer.writerow(["path", "title", "name"])
        for saved, original in files:
            name = str(original)
            title = name[: -len(saved.suffix)] if saved.suffix and name.lower().endswith(saved.suffix) else name
            writer.writerow([saved.name, title.strip() or saved.stem, shown_name(name)])
    return path


def original_names(folder: Path) -> dict[str, str]:
    """{generated file name: the name it was uploaded under}, from the upload manifests in `folder` (one
    written before the `name` column: its title and the file's extension). Unreadable manifests are skipped."""
    names: dict[str, str] = {}
    for manifest in sorted(folder.glob("*.csv")) if folder.is_dir() else []:
        try:
            with open(manifest, newline="", encoding="utf-8") as f:
                for row in csv.DictReader(f):
                    saved = (row.get("path") or "").strip()
                    if saved:
                        names[saved] = row.get("name") or f"{row.get('title') or 'an upload'}{Path(saved).suffix}"
        except (OSError, UnicodeDecodeError, csv.Error):
            continue
    return names


def for_the_user(path: str, reason: str, folder: Path, names: dict[str, str]) -> tuple[str, str]:
    """A refused file as the user should read it, (file, reason): a file in the uploads `folder` by the name
    it was uploaded under (its generated name replaced in the reason too); any other path as it is. `names`:
    {generated file name: uploaded name}, e.g. `original_names(folder)`."""
    path = str(path)
    location = path.rsplit(":", 1)[0] if path.rsplit(":", 1)[-1].isdigit() else path  # a manifest's `file:line`
    if Path(location).parent.resolve() != folder.resolve():
        return path, reason
    generated = Path(location).name
    shown = names.get(generated, "an uploaded file" if Path(generated).suffix != ".csv" else "the uploaded files")
    for text in (path, location, generated):
        reason = reason.replace(text, shown)
    return shown, reason


def video_types() -> list[str]:
    return suffixes(VIDEO_EXTENSIONS)


def query_types() -> list[str]:
    return suffixes(VIDEO_EXTENSIONS | IMAGE_EXTENSIONS)
