"""The ingest pipeline, in three steps: prepare each file (`prepare.py`: hash, probe, sample, JPEGs);
embed batches with CLIP (`embedding.py`); write to the store in bulk, in input order (`writer.py`).

Where the first two run is the engine's choice (`ingest/engine.py`). `local` (the default): worker threads
prepare (PyAV and PIL release the GIL) while this thread embeds batches gathered across videos, so
decoding overlaps encoding. `ray`: the same steps on a Ray cluster, staged as Parquet shards and merged
here (`ray_ingest.py`). A video is written whole (metadata, kept frames, thumbnail, embeddings) or not at
all, so an ingest killed at any point resumes without duplicates or half-written videos.
"""

from __future__ import annotations

import sys
import time
from collections import deque
from collections.abc import Callable, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

import torch
from tqdm import tqdm

from models.clip import ClipModel

from .catalog_clip import open_catalog_clip
from .embedding import pixels
from .engine import check_engine
from .prepare import Prepared, PreparedVideo, prepare_file
from .ray_ingest import RayOptions, ingest_on_ray
from .sources import Entry, collect
from .store import Store
from .video import FRAMES_PER_VIDEO
from .writer import CatalogWriter, IngestReport

__all__ = ["IngestOptions", "IngestReport", "ingest"]


@dataclass
class IngestOptions:
    clip: str | None = None  # --clip; None: the catalog's own (or the default for a new catalog)
    frames: int = FRAMES_PER_VIDEO
    batch_size: int = 64  # frames per image-encoder batch, gathered across videos
    workers: int = 2  # decoding threads (local engine)
    progress: bool = True
    device: str | None = None
    on_progress: Callable[[int, int], None] | None = None  # (videos done, videos in all), e.g. a UI progress bar
    allow_outside: bool = False  # --allow-outside: manifest paths may leave the manifest's folder (`..`)
    engine: str = "local"  # --engine local|ray
    ray: RayOptions | None = None  # --ray-workers, --staging (engine "ray")


def ingest(
    store: Store,
    paths: Sequence[Path | str] = (),
    manifest: Path | str | None = None,
    options: IngestOptions | None = None,
) -> IngestReport:
    """Add the videos found in `paths` and `manifest` to the catalog; see IngestReport for what it says."""
    options = options or IngestOptions()
    check_engine(options.engine)
    started = time.perf_counter()
    report = IngestReport()
    collected = collect(list(paths), manifest, allow_outside=options.allow_outside)
    report.failed.extend(collected.failed)
    with store.writing("ingest"):  # the catalog's CLIP and what is already held are decided under the lock
        if collected.entries:
            clip, version = open_catalog_clip(store, options.clip, device=options.device)
            ray_engine = options.engine == "ray"  # its writer merges a whole shard in one transaction
            writer = CatalogWriter(store, clip, version, report, sys.maxsize if ray_engine else options.batch_size)
            if ray_engine:
                ray_options = options.ray or RayOptions()
                ingest_on_ray(
                    writer,
                    collected.entries,
                    options.frames,
                    options.batch_size,
                    ray_options,
                    progress=options.progress,
                )
            else:
                _LocalRun(writer, options).run(collected.entries)
        with store.transaction():
            for failure in report.failed:
                store.failures.record(failure["path"], failure["reason"])
    report.seconds = round(time.perf_counter() - started, 3)
    return report


class _LocalRun:
    """The local engine: threads prepare files (and CLIP's preprocessing) while this thread embeds and writes."""

    def __init__(self, writer: CatalogWriter, options: IngestOptions):
        self.writer, self.options = writer, options
        self.done = 0

    def run(self, entries: list[Entry]) -> None:
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
            for entry in entries:  # results are taken in input order
                in_flight.append(pool.submit(self.prepare, entry))
                if len(in_flight) >= 4 * workers:
                    self.take(in_flight.popleft().result(), progress, len(entries))
            while in_flight:
                self.take(in_flight.popleft().result(), progress, len(entries))
        self.writer.flush()
        progress.close()

    def prepare(self, entry: Entry) -> tuple[Prepared, torch.Tensor | None]:
        """Worker side: the per-file step, then CLIP's preprocessing of the kept frames (no model involved)."""
        clip: ClipModel = self.writer.clip
        result = prepare_file(entry, self.options.frames, self.writer.owners)
        if isinstance(result, PreparedVideo):
            return result, pixels(clip, [j for _, j in result.frames])
        return result, None

    def take(self, prepared: tuple[Prepared, torch.Tensor | None], progress: tqdm, total: int) -> None:
        self.writer.take(*prepared)
        self.done += 1
        progress.update(1)
        if self.options.on_progress is not None:
            self.options.on_progress(self.done, total)
