"""The ingest pipeline, in three steps: prepare each file (`prepare.py`: hash, probe, sample, JPEGs) in
worker threads; embed batches gathered across videos with CLIP (`embedding.py`); write each batch to the
store in one transaction (`write`).

Workers (PyAV and PIL release the GIL) decode and preprocess while the main thread encodes, so
decoding overlaps encoding. A video is written whole (metadata, kept frames, thumbnail, embeddings)
or not at all, so an ingest killed at any point resumes without duplicates or half-written videos.
"""

from __future__ import annotations

import sys
import time
from collections import deque
from collections.abc import Callable, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np
import torch
from tqdm import tqdm

from models.clip import ClipModel

from .catalog_clip import open_catalog_clip
from .embedding import embed, pixels, text_embeddings
from .prepare import AlreadyHeld, Prepared, PreparedVideo, Refused, prepare_file
from .sources import collect
from .store import Store
from .video import FRAMES_PER_VIDEO


@dataclass
class IngestOptions:
    clip: str | None = None  # --clip; None: the catalog's own (or the default for a new catalog)
    frames: int = FRAMES_PER_VIDEO
    batch_size: int = 64  # frames per image-encoder batch, gathered across videos
    workers: int = 2  # decoding threads
    progress: bool = True
    device: str | None = None
    on_progress: Callable[[int, int], None] | None = None  # (videos done, videos in all), e.g. a UI progress bar
    allow_outside: bool = False  # --allow-outside: manifest paths may leave the manifest's folder (`..`)


@dataclass
class IngestReport:
    ingested: int = 0
    duplicates: int = 0
    updated: int = 0
    failed: list[dict] = field(default_factory=list)  # {path, reason}
    seconds: float = 0.0

    def to_json(self) -> dict:
        return asdict(self)


def ingest(
    store: Store,
    paths: Sequence[Path | str] = (),
    manifest: Path | str | None = None,
    options: IngestOptions | None = None,
) -> IngestReport:
    """Add the videos found in `paths` and `manifest` to the catalog; see IngestReport for what it says."""
    options = options or IngestOptions()
    started = time.perf_counter()
    report = IngestReport()
    collected = collect(list(paths), manifest, allow_outside=options.allow_outside)
    report.failed.extend(collected.failed)
    with store.writing("ingest"):  # the catalog's CLIP and what is already held are decided under the lock
        if collected.entries:
            clip, version = open_catalog_clip(store, options.clip, device=options.device)
            _Run(store, clip, version, options, report).run(collected.entries)
        with store.transaction():
            for failure in report.failed:
                store.failures.record(failure["path"], failure["reason"])
    report.seconds = round(time.perf_counter() - started, 3)
    return report


def write(
    store: Store,
    version: int,
    videos: list[PreparedVideo],
    embeddings: list[dict[str, np.ndarray]],
    updates: list[tuple[str, dict, dict[str, np.ndarray]]],
    report: IngestReport,
) -> None:
    """The store step: new videos (whole) and text updates of known ones, in one transaction. What the store
    already holds is checked inside it: the same bytes are a duplicate, another file under a taken id a failure."""
    with store.transaction():
        for video, vectors in zip(videos, embeddings):
            row = video.row()
            if store.videos.owner_of(video.content_hash) is not None:
                report.duplicates += 1
                continue
            if store.videos.get(row["video_id"]) is not None:
                report.failed.append(
                    {"path": row["path"], "reason": f"video_id {row['video_id']!r} already names another file"}
                )
                continue
            if not all_finite(vectors):
                report.failed.append({"path": row["path"], "reason": NON_FINITE})
                continue
            store.videos.add(row, video.frames, video.thumbnail, vectors, version)
            report.ingested += 1
        for video_id, changes, text in updates:
            if all_finite(text):
                store.videos.update_text(video_id, changes, text, version)
            else:
                report.failed.append({"path": video_id, "reason": NON_FINITE})


NON_FINITE = "CLIP gave non-finite embeddings (NaN or infinity) for it: nothing stored"


def all_finite(vectors: dict[str, np.ndarray]) -> bool:
    return all(bool(np.isfinite(v).all()) for v in vectors.values())


class _Run:
    def __init__(self, store: Store, clip: ClipModel, version: int, options: IngestOptions, report: IngestReport):
        self.store, self.clip, self.version, self.options, self.report = store, clip, version, options, report
        self.owners = store.videos.owners_by_hash()  # content hash -> video_id, this run's videos added as taken
        self.pending: list[tuple[PreparedVideo, torch.Tensor]] = []
        self.pending_updates: list[tuple[str, dict]] = []

    def run(self, entries: list) -> None:
        self.done, self.total = 0, len(entries)
        progress = tqdm(
            total=len(entries),
            unit="video",
            desc="ingest",
            file=sys.stderr,
            disable=not self.options.progress,
            dynamic_ncols=True,
        )
        in_flight: deque[Future[tuple[Prepared, torch.Tensor | None]]] = deque()
        workers = max(1, self.options.workers)
        with ThreadPoolExecutor(workers, thread_name_prefix="decode") as pool:
            for entry in entries:  # results are taken in input order, so ids follow the input
                in_flight.append(pool.submit(self.prepare, entry))
                if len(in_flight) >= 4 * workers:
                    self.take(in_flight.popleft().result(), progress)
            while in_flight:
                self.take(in_flight.popleft().result(), progress)
        self.flush()
        progress.close()

    def prepare(self, entry) -> tuple[Prepared, torch.Tensor | None]:
        """Worker side: the per-file step, then CLIP's preprocessing of the kept frames (no model involved)."""
        result = prepare_file(entry, self.options.frames, self.owners)
        if isinstance(result, PreparedVideo):
            return result, pixels(self.clip, [j for _, j in result.frames])
        return result, None

    def take(self, prepared: tuple[Prepared, torch.Tensor | None], progress: tqdm) -> None:
        result, frames = prepared
        if isinstance(result, Refused):
            self.report.failed.append(result.to_json())
        elif isinstance(result, AlreadyHeld) or result.content_hash in self.owners:
            self.known(result.entry, result.content_hash)  # the same bytes twice in one run: a duplicate too
        else:
            assert frames is not None
            self.owners[result.content_hash] = result.video_id
            self.pending.append((result, frames))
            if sum(len(p.frames) for p, _ in self.pending) >= self.options.batch_size:
                self.flush()
        progress.update(1)
        self.done += 1
        if self.options.on_progress is not None:
            self.options.on_progress(self.done, self.total)

    def known(self, entry, content_hash: str) -> None:
        """Same bytes as a catalog video: a duplicate; new manifest metadata for the same id updates it."""
        self.report.duplicates += 1
        owner = self.owners[content_hash]
        if entry.video_id not in (None, owner):
            return  # the same bytes under another id are one video
        video = self.store.videos.get(owner)
        changes = {} if video is None else {k: v for k, v in entry.metadata().items() if getattr(video, k) != v}
        if changes:
            self.pending_updates.append((owner, changes))
            self.report.updated += 1

    def flush(self) -> None:
        """Embed what is pending and write it."""
        if not self.pending and not self.pending_updates:
            return
        batch, self.pending = self.pending, []
        updates, self.pending_updates = self.pending_updates, []
        vectors = embed(self.clip, [frames for _, frames in batch], [video.row() for video, _ in batch])
        merged = []
        for video_id, changes in updates:
            video = self.store.videos.get(video_id)
            merged.append({**(video.text_fields() if video else {}), **changes})
        text = text_embeddings(self.clip, merged)
        write(
            self.store,
            self.version,
            [video for video, _ in batch],
            vectors,
            [(video_id, changes, t) for (video_id, changes), t in zip(updates, text)],
            self.report,
        )
