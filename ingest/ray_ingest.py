"""The Ray engine for ingest: the same prepare step and the same embedder as the local engine, run on a
cluster, with the results staged as Parquet shards and merged here by the one writer.

1. This process (the driver) lists the inputs, cuts them into batches of `shard_videos` in input order,
   and names each batch's shard from what it is made of (`staging.shard_name`). Shards already staged by a
   killed run are kept; only the missing ones are made.
2. Ray Data runs the per-file prepare step (`prepare_file`: hash, probe, sample, JPEGs) as CPU tasks, one a
   shard, and CLIP (`embed`) in a pool of actors (one GPU each on GPU nodes, a fraction of a CPU otherwise),
   each built from the catalog's spec and a weights file every node reads; nothing is downloaded on a
   worker. Each actor writes its shard to the staging location. Failed tasks are retried and dead actors
   restarted by Ray; a shard is written whole or not at all, so a retry cannot double anything.
3. The driver merges the shards in input order into the store, in one transaction a shard, and removes
   each once merged. A rerun after any failure redoes only the shards that are missing.
"""

from __future__ import annotations

import sys
import time
from collections import Counter
from dataclasses import dataclass
from typing import Any

from tqdm import tqdm

from .engine import EngineError, check_room, cluster_cpus, cluster_gpus, innermost, ray_cluster
from .ray_workers import ClipSource, ShardEmbedder, prepare_shard
from .sources import Entry
from .staging import Staging, entry_json, shard_name, shard_results
from .writer import CatalogWriter


@dataclass
class RayOptions:
    workers: int | None = None  # --ray-workers: CLIP actors (None: one per GPU, or 1 without GPUs)
    staging: str | None = None  # --staging: a folder or a pyarrow filesystem URI (None: DATA_DIR/staging)
    shard_videos: int = 32  # input files per shard
    prepare_cpus: float = 0.25  # per prepare task; fractions, so that the actors always find room on small nodes
    actor_cpus: float = 0.5  # per CLIP actor on CPU nodes


def ingest_on_ray(
    writer: CatalogWriter,
    entries: list[Entry],
    frames: int,
    batch_frames: int,
    options: RayOptions,
    *,
    progress: bool = True,
) -> None:
    """Stage what is missing on the cluster, then merge every shard in input order."""
    store = writer.store
    staging = Staging.open(options.staging or store.paths.staging)
    record = store.clips.get(writer.version)
    assert record is not None
    clip_key = f"{writer.version}:{record.info.get('sha256') or record.spec}"
    size = max(1, options.shard_videos)
    batches = [entries[i : i + size] for i in range(0, len(entries), size)]
    names = [shard_name(batch, clip_key, frames) for batch in batches]
    staged = staging.shards()
    missing: dict[str, list[Entry]] = {}
    for name, batch in zip(names, batches):
        if name not in missing and not (name in staged and staging.readable(name)):
            missing[name] = batch
    with store.transaction():
        store.set_meta("staging", staging.location)  # so that `vidrec status` can say what waits there
    started = time.perf_counter()
    if missing:
        source = ClipSource(
            record.spec, None if record.weights is None else str(record.weights), record.info.get("sha256")
        )
        job = _StagingJob(writer, staging, source, frames, batch_frames, options, progress)
        job.run(missing)
    staged_at = time.perf_counter()
    unique = len(dict.fromkeys(names))
    writer.report.shards = {
        "location": staging.location,
        "total": unique,
        "reused": unique - len(missing),
        "made": len(missing),
        "merged": 0,
        "stage_seconds": round(staged_at - started, 3),
    }
    _merge(writer, staging, names, progress)
    writer.report.shards["merge_seconds"] = round(time.perf_counter() - staged_at, 3)


@dataclass
class _StagingJob:
    """The shards still missing, made on the cluster: prepare tasks, then the CLIP actors that write them."""

    writer: CatalogWriter
    staging: Staging
    source: ClipSource
    frames: int
    batch_frames: int
    options: RayOptions
    progress: bool

    def run(self, missing: dict[str, list[Entry]]) -> None:
        with ray_cluster() as ray:
            made = self._made_on(ray, missing)
        if made != set(missing):
            raise EngineError(f"the Ray ingest made {len(made)} of {len(missing)} shards: run it again")

    def _made_on(self, ray: Any, missing: dict[str, list[Entry]]) -> set[str]:
        import ray.data

        gpus, cpus = cluster_gpus(ray), cluster_cpus(ray)
        workers = self.options.workers or max(1, gpus)
        if gpus and workers > gpus:
            raise EngineError(f"--ray-workers {workers} asks for one GPU each, and the Ray cluster has {gpus} GPUs")
        if not gpus:
            check_room(ray, workers, self.options.actor_cpus, "CLIP actors", beside=self.options.prepare_cpus)
        context = ray.data.DataContext.get_current()
        context.enable_progress_bars = self.progress
        context.retried_map_errors = True  # a prepare task that raised is tried again (twice) ...
        context.max_map_retries = 2  # ... and a dead worker or actor is retried by Ray itself
        known = ray.put(frozenset(self.writer.owners))
        rows = [{"shard": name, "entries": [entry_json(e) for e in batch]} for name, batch in missing.items()]
        dataset = ray.data.from_items(rows, override_num_blocks=len(rows))
        dataset = dataset.map(
            prepare_shard,
            fn_kwargs={"frames": self.frames, "known": known, "clip_version": self.writer.version},
            num_cpus=self.options.prepare_cpus,
        )
        placement = {"num_gpus": 1, "num_cpus": 1} if gpus else {"num_cpus": self.options.actor_cpus}
        dataset = dataset.map(
            ShardEmbedder,
            fn_constructor_kwargs={
                "source": self.source,
                "staging": self.staging,
                "clip_version": self.writer.version,
                "batch_frames": self.batch_frames,
                "threads": max(1, cpus // workers),
            },
            compute=ray.data.ActorPoolStrategy(size=workers),
            **placement,
        )
        try:
            return {row["shard"] for row in dataset.iter_rows()}
        except Exception as exc:
            raise EngineError(f"the Ray ingest failed: {innermost(exc)}") from exc


def _merge(writer: CatalogWriter, staging: Staging, names: list[str], progress: bool) -> None:
    """The one writer: every shard in input order, one transaction each, removed once merged."""
    assert writer.report.shards is not None
    remaining = Counter(names)
    for name in tqdm(names, unit="shard", desc="merge", file=sys.stderr, disable=not progress, dynamic_ncols=True):
        for result, vectors in shard_results(staging.read(name)):
            writer.take(result, vectors)
        writer.flush()
        remaining[name] -= 1
        if remaining[name] == 0:
            staging.remove(name)
            writer.report.shards["merged"] += 1
