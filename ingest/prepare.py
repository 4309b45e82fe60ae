"""The per-file step of ingest: a path in, a prepared video (or the reason it was refused) out.

It touches neither the store nor CLIP, and what it returns is plain data (picklable), so it can run in
a thread, a process or on another machine: open the file (regular files only), probe it (a few reads),
hash the bytes, sample K frames, keep them as JPEGs (short side at most the CLIP input size) with a
thumbnail. The probe comes before the hash so a huge file that is not a video is refused without reading
it; the hash comes before sampling so a file the catalog already holds is not decoded again. Embedding
is the next step (`ingest/embedding.py`), writing to the store the last (`ingest/pipeline.py`).
"""

from __future__ import annotations

import hashlib
import io
from collections.abc import Container
from dataclasses import dataclass
from typing import BinaryIO

from PIL import Image

from .sources import Entry, Unreadable, open_regular
from .video import FRAMES_PER_VIDEO, VideoError, open_video

JPEG_QUALITY = 90  # kept frames: re-embedding and tuning read them instead of decoding again
THUMBNAIL_QUALITY = 85


@dataclass(frozen=True)
class PreparedVideo:
    """A decoded video, ready to embed."""

    entry: Entry
    content_hash: str
    size_bytes: int
    probe: dict  # duration, fps, width, height, codec, rotation
    frames: list[tuple[float, bytes]]  # (seconds, JPEG)
    thumbnail: bytes  # JPEG

    @property
    def video_id(self) -> str:
        return self.entry.video_id or derived_id(self.content_hash)

    def row(self) -> dict:
        """The store's row for it: the manifest's metadata where given, the file's name as the title otherwise."""
        row = {
            "video_id": self.video_id,
            "content_hash": self.content_hash,
            "path": str(self.entry.path),
            "title": self.entry.path.stem,
            "description": "",
            "tags": "",
            "category": None,
            "published_at": None,
            "size_bytes": self.size_bytes,
            **self.probe,
        }
        row.update(self.entry.metadata())
        return row


@dataclass(frozen=True)
class AlreadyHeld:
    """A file whose bytes the catalog already holds (not decoded again)."""

    entry: Entry
    content_hash: str


@dataclass(frozen=True)
class Refused:
    """A file that cannot be ingested, with the one-line reason."""

    entry: Entry
    reason: str

    def to_json(self) -> dict:
        return {"path": str(self.entry.path), "reason": self.reason}


Prepared = PreparedVideo | AlreadyHeld | Refused


def prepare_file(entry: Entry, frames: int = FRAMES_PER_VIDEO, known_hashes: Container[str] = frozenset()) -> Prepared:
    """Probe, hash and sample one file. A file whose content hash is in `known_hashes` is not decoded."""
    try:
        with open_regular(entry.path) as file, open_video(file, str(entry.path)) as video:
            content_hash, size = hash_file(file)
            if content_hash in known_hashes:
                return AlreadyHeld(entry, content_hash)
            sampled = video.sample(frames)
    except (Unreadable, VideoError) as exc:
        return Refused(entry, str(exc))
    except OSError as exc:
        return Refused(entry, f"cannot read file: {exc.strerror or exc}")
    images = [image for _, image in sampled.frames]
    probe = {k: getattr(sampled, k) for k in ("duration", "fps", "width", "height", "codec", "rotation")}
    return PreparedVideo(
        entry,
        content_hash,
        size,
        probe,
        [(t, jpeg(image)) for t, image in sampled.frames],
        jpeg(images[len(images) // 2], THUMBNAIL_QUALITY),
    )


def hash_file(file: BinaryIO) -> tuple[str, int]:
    """(SHA-256 of the bytes, size): the same bytes under another name or id are one video. The file's
    position is kept (the probed container reads on from it)."""
    digest = hashlib.sha256()
    size = 0
    position = file.tell()
    file.seek(0)
    while chunk := file.read(1 << 20):
        digest.update(chunk)
        size += len(chunk)
    file.seek(position)
    return digest.hexdigest(), size


def derived_id(content_hash: str) -> str:
    """The video_id of a file given without one: stable, from its content."""
    return "v" + content_hash[:16]


def jpeg(image: Image.Image, quality: int = JPEG_QUALITY) -> bytes:
    buffer = io.BytesIO()
    image.save(buffer, format="JPEG", quality=quality)
    return buffer.getvalue()
