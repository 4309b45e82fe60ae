"""The catalog's vector indexes, kept current with the store.

An index file is stamped with the catalog it belongs to, the CLIP version of its vectors and the
catalog revision it has seen. On load: another catalog, another CLIP, or a damaged file means a
rebuild; a newer revision means an update in place (new videos added, changed and removed ones
replaced) where the index type allows it, else a rebuild; an older revision (a catalog restored from
a backup) means a rebuild too, since videos removed after the backup are back and an update would not
know them.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np

from ingest.store import IndexFiles, Store
from models.fusion import FusionWeights, fuse_catalog

from .shards import ShardedIndex, build_index_for, described_shards, fill_here, load_index, shard_count, sharded_type
from .vector_index import IndexConfig, IndexFileError, IndexInfo, VectorIndex, choose_type

FUSED = "fused"  # frames + text of every video: similar videos, text and image search
logger = logging.getLogger(__name__)

Source = Callable[[int | None], tuple[np.ndarray, np.ndarray]]  # since revision (None: all) -> (ids, vectors)


def catalog_stamp(store: Store) -> dict:
    clip = store.clips.current()
    stamp = {"catalog": store.catalog_id, "clip_version": clip.version if clip else None, "revision": store.revision}
    restored = store.restore_id
    return {**stamp, "restore": restored} if restored else stamp  # a catalog never restored keeps its old stamps


def changed_only(
    store: Store, ids: np.ndarray, vectors: np.ndarray, since: int | None
) -> tuple[np.ndarray, np.ndarray]:
    """The (ids, vectors) of videos changed after catalog revision `since` (all of them for None)."""
    if since is None:
        return ids, vectors
    keep = np.isin(ids, store.videos.changed_since(since))
    return ids[keep], vectors[keep]


def fused_vectors(
    store: Store, weights: FusionWeights = FusionWeights(), since: int | None = None
) -> tuple[np.ndarray, np.ndarray]:
    """(int64 ids, fused [N, 2D] vectors) of the catalog's current embeddings (changed after `since`)."""
    ids, _, video = store.embeddings.matrix("video_emb")
    _, _, text = store.embeddings.matrix("text_emb")
    return changed_only(store, ids, fuse_catalog(video, text, weights), since)


@dataclass
class CatalogIndex:
    """One named index over the catalog, loaded or (re)built on demand. `source(since)` gives the
    (ids, vectors) to index, all of them or those changed after a revision (default: fused CLIP
    vectors); `extra_stamp` names whatever else the vectors depend on (e.g. a model id). With the `ray`
    engine a job fills a sharded index's shards on Ray, and a reader serves it from one actor per shard."""

    store: Store
    name: str = FUSED
    config: IndexConfig = IndexConfig()
    weights: FusionWeights = FusionWeights()
    source: Source | None = None
    extra_stamp: dict = field(default_factory=dict)
    engine: str = "local"
    index: VectorIndex | None = None
    action: str = ""  # what the last `ensure` did: loaded, updated, built
    _lock: threading.Lock = field(default_factory=threading.Lock, repr=False, compare=False)
    _saved: dict | None = field(default=None, repr=False, compare=False)  # the stamp of the files on disk

    @property
    def info(self) -> IndexInfo | None:
        return None if self.index is None else self.index.info

    def vectors(self, since: int | None = None) -> tuple[np.ndarray, np.ndarray]:
        if self.source is not None:
            return self.source(since)
        return fused_vectors(self.store, self.weights, since)

    def stamp(self) -> dict:
        return {**catalog_stamp(self.store), **self.extra_stamp}

    def ensure(self, rebuild: bool = False) -> VectorIndex:
        """Make the index current with the store (`rebuild`: from the store's vectors, whatever is on disk or in
        memory). A reader (any thread) brings its copy in memory up to date; only a job holding the writer lock
        writes the files. Searches meanwhile go on in the previous copy."""
        index, stamp = self.index, self.stamp()
        if not rebuild and index is not None and index.info.stamp == stamp and not self._unsaved(stamp):
            return index
        if index is not None and not self.store.is_writing and not self._lock.acquire(blocking=False):
            return index  # another thread is bringing it up to date; this query goes on in the copy it has
        if index is None or self.store.is_writing:
            self._lock.acquire()
        try:
            with self.store.snapshot():  # what the update reads is one revision
                stamp = self.stamp()
                if rebuild:
                    self.index = self._rebuild(stamp)
                elif self.index is None or self.index.info.stamp != stamp:
                    self.index = self._current(stamp)
                if self._unsaved(stamp):
                    self._save(self.index)
                return self.index
        finally:
            self._lock.release()

    def _unsaved(self, stamp: dict) -> bool:
        """Whether this is a job holding the writer lock and the files on disk are behind (a reader only
        keeps its copy in memory)."""
        return self.store.is_writing and self._saved != stamp

    def _current(self, stamp: dict) -> VectorIndex:
        """The index for `stamp`: the one in memory or on disk, updated where it can be, else rebuilt."""
        index = self.index
        if index is None:
            try:
                index = self._load()
                self.action, self._saved = "loaded", dict(index.info.stamp)
            except IndexFileError as exc:
                if self.files.description.exists():
                    logger.warning("rebuilding the %s index: %s", self.name, exc)
                return self._rebuild(stamp)
        if self.config.shards and self.config.shards != max(1, len(index.info.shards)):
            return self._rebuild(stamp)  # asked for another number of shards
        old = index.info.stamp
        if {k: v for k, v in old.items() if k != "revision"} != {k: v for k, v in stamp.items() if k != "revision"}:
            return self._rebuild(stamp)  # another catalog, CLIP version or model
        if int(old.get("revision") or 0) > stamp["revision"]:
            return self._rebuild(stamp)  # the store went back (a restored backup): its videos may be back too
        if old.get("revision") != stamp["revision"]:
            return self._update(index, stamp) or self._rebuild(stamp)
        return index

    def _load(self) -> VectorIndex:
        if self._serves_from_ray() and described_shards(self.files) > 1:
            from .ray_shards import RayShardedIndex  # imports Ray's pieces only for an engine that uses them

            return RayShardedIndex.load(self.files)
        return load_index(self.files)

    def _serves_from_ray(self) -> bool:
        """A reader with the ray engine searches sharded indexes through actors; a job builds them here."""
        return self.engine == "ray" and self.store.read_only

    def _shards(self, n: int, dim: int) -> int:
        """`config.shards` when given; else as many as the index on disk has, or more if the memory budget
        asks for more: a number chosen with `index --shards` is kept until changed."""
        if self.config.shards:
            return self.config.shards
        current = len(self.index.info.shards) if self.index is not None else described_shards(self.files)
        return max(shard_count(n, dim, self.config), current)

    @property
    def files(self) -> IndexFiles:
        return self.store.paths.index_files(self.name)

    def _rebuild(self, stamp: dict) -> VectorIndex:
        ids, vectors = self.vectors()
        if len(ids) == 0:
            raise IndexFileError("the catalog has no embedded videos to index")
        self.action, self._saved = "built", None  # whatever the files hold, this is not it
        shards = self._shards(len(ids), vectors.shape[1])
        fill = fill_here
        if self.engine == "ray":
            from .ray_shards import fill_on_ray as fill
        index = build_index_for(self.name, vectors, ids, shards, self.config, stamp, fill)
        if self._serves_from_ray() and isinstance(index, ShardedIndex):
            from .ray_shards import RayShardedIndex

            return RayShardedIndex.from_local(index)
        return index

    def _update(self, index: VectorIndex, stamp: dict) -> VectorIndex | None:
        """A copy of the index brought to the store's revision in place; None where only a rebuild will do."""
        since = int(index.info.stamp.get("revision", 0))
        current = self.store.videos.store_ids()
        indexed = set(index.ids.tolist())
        stale = ((indexed - current) | set(self.store.videos.changed_since(since).tolist())) & indexed
        if index.info.type == "hnsw" and stale:
            return None  # HNSW cannot remove
        size, shards = len(current), max(1, len(index.info.shards))
        if self._shards(size, index.info.dim) != shards:
            return None  # the memory budget asks for more shards
        kind = (sharded_type if shards > 1 else choose_type)(size, index.info.dim, self.config)
        if kind != index.info.type or size > 2 * max(1, index.info.size):
            return None  # grown into another kind (or far past what IVF was trained on)
        fresh_ids, fresh = self.vectors(since)
        updated = index.copy() if index is self.index else index
        updated.remove(np.array(sorted(stale), np.int64))
        updated.add(fresh_ids, fresh)
        updated.info.stamp = stamp
        self.action = "updated"
        return updated

    def _save(self, index: VectorIndex) -> None:
        index.save(self.files)
        self.store.describe_index(index.describe())
        self._saved = dict(index.info.stamp)

    def search(self, queries: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
        """Top-k (scores, ids) per query row; k is capped at the index size, misses are dropped by callers (-1)."""
        return self.ensure().search(queries, k)
