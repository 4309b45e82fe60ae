"""The ingest pipeline: hash, probe and sample in worker threads; encode batches across videos with CLIP;
commit each batch in one transaction.

Workers (PyAV and PIL release the GIL) decode and preprocess while the main thread encodes, so
decoding overlaps encoding. A video is written whole (metadata, kept frames, thumbnail, embeddings)
or not at all, so an ingest killed at any point resumes without duplicates or half-written videos.
"""
from __future__ import annotations

import hashlib
import io
import sys
import threading
import time
from collections import deque
from concurrent.futures import ThreadPoolExecutor
from dataclasses import asdict, dataclass, field
from typing import Callable

import torch
from PIL import Image
from tqdm import tqdm

from models.clip import ClipModel

from .catalog_clip import open_catalog_clip
from .embedding import frame_embeddings, text_embeddings
from .sources import Entry, collect
from .store import Store
from .video import VideoError, sample_video

JPEG_QUALITY = 90


@dataclass
class IngestOptions:
    clip: str | None = None  # --clip; None: the catalog's own (or the default for a new catalog)
    frames: int = 8
    batch_size: int = 64  # frames per image-encoder batch, gathered across videos
    workers: int = 2
    progress: bool = True
    device: str | None = None
    on_progress: Callable[[int, int], None] | None = None  # (videos done, videos in all), e.g. a UI progress bar


@dataclass
class IngestReport:
    ingested: int = 0
    duplicates: int = 0
    updated: int = 0
    failed: list[dict] = field(default_factory=list)
    seconds: float = 0.0

    def to_json(self) -> dict:
        return asdict(self)


@dataclass
class _Prepared:
    """A decoded video, ready to encode."""

    entry: Entry
    content_hash: str
    size_bytes: int
    probe: dict
    frames: list[tuple[float, bytes]]  # (seconds, JPEG)
    thumbnail: bytes
    pixels: torch.Tensor  # [K, 3, S, S], CLIP-preprocessed


@dataclass
class _Known:
    """A file whose bytes the catalog already holds."""

    entry: Entry
    content_hash: str


@dataclass
class _Failed:
    entry: Entry
    reason: str


def ingest(store: Store, paths=(), manifest=None, options: IngestOptions | None = None) -> IngestReport:
    """Add the videos found in `paths` and `manifest` to the catalog; see IngestReport for what it says."""
    options = options or IngestOptions()
    started = time.perf_counter()
    report = IngestReport()
    collected = collect(list(paths), manifest)
    report.failed.extend(collected.failed)
    if collected.entries:
        clip, version = open_catalog_clip(store, options.clip, device=options.device)
        _Run(store, clip, version, options, report).run(collected.entries)
    with store.transaction():
        for failure in report.failed:
            store.record_failure(failure["path"], failure["reason"])
    report.seconds = round(time.perf_counter() - started, 3)
    return report


class _Run:
    def __init__(self, store: Store, clip: ClipModel, version: int, options: IngestOptions, report: IngestReport):
        self.store, self.clip, self.version, self.options, self.report = store, clip, version, options, report
        self.known_hashes = store.video_by_hash()  # content hash -> video_id, shared by the workers
        self.lock = threading.Lock()
        self.pending: list[_Prepared] = []
        self.pending_updates: list[tuple[str, dict]] = []

    def run(self, entries: list[Entry]) -> None:
        self.done, self.total = 0, len(entries)
        progress = tqdm(total=len(entries), unit="video", desc="ingest", file=sys.stderr,
                        disable=not self.options.progress, dynamic_ncols=True)
        in_flight: deque = deque()
        queue = iter(entries)
        with ThreadPoolExecutor(max(1, self.options.workers), thread_name_prefix="decode") as pool:
            for entry in queue:  # results are taken in input order, so ids follow the input
                in_flight.append(pool.submit(self.prepare, entry))
                if len(in_flight) >= 4 * max(1, self.options.workers):
                    self.take(in_flight.popleft().result(), progress)
            while in_flight:
                self.take(in_flight.popleft().result(), progress)
        self.flush()
        progress.close()

    # ---- worker side --------------------------------------------------------------------------
    def prepare(self, entry: Entry):
        try:
            content_hash, size = _hash_file(entry)
        except OSError as exc:
            return _Failed(entry, f"cannot read file: {exc.strerror or exc}")
        with self.lock:  # the same bytes twice in one run: the second is a duplicate
            if content_hash in self.known_hashes:
                return _Known(entry, content_hash)
            self.known_hashes[content_hash] = entry.video_id or _derived_id(content_hash)
        try:
            sampled = sample_video(entry.path, self.options.frames)
        except VideoError as exc:
            with self.lock:
                self.known_hashes.pop(content_hash, None)
            return _Failed(entry, str(exc))
        images = [img for _, img in sampled.frames]
        pixels = torch.stack([self.clip.preprocess(img) for img in images])
        probe = {k: getattr(sampled, k) for k in ("duration", "fps", "width", "height", "codec", "rotation")}
        middle = images[len(images) // 2]
        return _Prepared(entry, content_hash, size, probe,
                         [(t, _jpeg(img)) for t, img in sampled.frames], _jpeg(middle, 85), pixels)

    # ---- main thread --------------------------------------------------------------------------
    def take(self, result, progress) -> None:
        if isinstance(result, _Failed):
            self.report.failed.append({"path": str(result.entry.path), "reason": result.reason})
        elif isinstance(result, _Known):
            self.known(result)
        else:
            self.pending.append(result)
            if sum(len(p.frames) for p in self.pending) >= self.options.batch_size:
                self.flush()
        progress.update(1)
        self.done += 1
        if self.options.on_progress is not None:
            self.options.on_progress(self.done, self.total)

    def known(self, result: _Known) -> None:
        """Same bytes as a catalog video: a duplicate; new manifest metadata for the same id updates it."""
        self.report.duplicates += 1
        owner = self.known_hashes[result.content_hash]
        entry = result.entry
        if entry.video_id not in (None, owner):
            return  # the same bytes under another id are one video
        row = self.store.video(owner)
        changes = {k: v for k, v in entry.metadata().items() if row is not None and row[k] != v}
        if changes:
            self.pending_updates.append((owner, changes))
            self.report.updated += 1

    def flush(self) -> None:
        """Encode what is pending and commit it in one transaction."""
        if not self.pending and not self.pending_updates:
            return
        batch, self.pending = self.pending, []
        updates, self.pending_updates = self.pending_updates, []
        image_emb = frame_embeddings(self.clip, [p.pixels for p in batch])
        rows = [self._row(p) for p in batch]
        text_emb = text_embeddings(self.clip, rows + [self._merged(vid, ch) for vid, ch in updates])
        with self.store.transaction():
            for i, (prepared, row) in enumerate(zip(batch, rows)):
                if self.store.video(row["video_id"]) is not None:
                    self.report.failed.append({"path": row["path"], "reason":
                                               f"video_id {row['video_id']!r} already names another file"})
                    continue
                self.store.add_video(row, prepared.frames, prepared.thumbnail, {**text_emb[i], **image_emb[i]},
                                     self.version)
                self.report.ingested += 1
            for j, (video_id, changes) in enumerate(updates):
                self.store.update_text(video_id, changes, text_emb[len(rows) + j], self.version)

    def _row(self, p: _Prepared) -> dict:
        entry = p.entry
        row = {"video_id": entry.video_id or _derived_id(p.content_hash), "content_hash": p.content_hash,
               "path": str(entry.path), "title": entry.path.stem, "description": "", "tags": "",
               "category": None, "published_at": None, "size_bytes": p.size_bytes, **p.probe}
        row.update(entry.metadata())
        return row

    def _merged(self, video_id: str, changes: dict) -> dict:
        return {**dict(self.store.video(video_id)), **changes}


def _hash_file(entry: Entry) -> tuple[str, int]:
    digest = hashlib.sha256()
    size = 0
    with open(entry.path, "rb") as f:
        while chunk := f.read(1 << 20):
            digest.update(chunk)
            size += len(chunk)
    return digest.hexdigest(), size


def _derived_id(content_hash: str) -> str:
    return "v" + content_hash[:16]


def _jpeg(image: Image.Image, quality: int = JPEG_QUALITY) -> bytes:
    buffer = io.BytesIO()
    image.save(buffer, format="JPEG", quality=quality)
    return buffer.getvalue()
