"""The catalog's vector indexes, kept current with the store.

An index file is stamped with the catalog it belongs to, the CLIP version of its vectors and the
catalog revision it has seen. On load: another catalog, another CLIP, or a damaged file means a
rebuild; a newer revision means an update in place (new videos added, changed and removed ones
replaced) where the index type allows it, else a rebuild.
"""
from __future__ import annotations

import hashlib
import json
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

import numpy as np

from ingest.store import Store
from models.fusion import FusionWeights, fuse_catalog

from .vector_index import (IndexConfig, IndexFileError, IndexInfo, build_tuned, choose_type, load_index,
                           save_index)

FUSED = "fused"  # frames + text of every video: similar videos, text and image search


def index_folder(store: Store) -> Path:
    return store.data_dir / "indexes"


def catalog_stamp(store: Store) -> dict:
    clip = store.clip_version()
    return {"catalog": store.get_meta("catalog_id"), "clip_version": clip.version if clip else None,
            "revision": store.revision}


def changed_since(store: Store, ids: np.ndarray, since: int | None) -> np.ndarray:
    """Mask of `ids` whose videos changed after catalog revision `since` (all of them for None)."""
    if since is None:
        return np.ones(len(ids), bool)
    changed = [r[0] for r in store.db.execute("SELECT id FROM videos WHERE changed > ?", (since,))]
    return np.isin(ids, np.array(changed, np.int64))


def fused_vectors(store: Store, weights: FusionWeights = FusionWeights(), since: int | None = None
                  ) -> tuple[np.ndarray, np.ndarray]:
    """(int64 ids, fused [N, 2D] vectors) of the catalog's current embeddings (changed after `since`)."""
    ids, _, video = store.embeddings("video_emb")
    _, _, text = store.embeddings("text_emb")
    keep = changed_since(store, ids, since)
    return ids[keep], fuse_catalog(video[keep], text[keep], weights)


@dataclass
class CatalogIndex:
    """One named index over the catalog, loaded or (re)built on demand. `source(since)` gives the
    (ids, vectors) to index, all of them or those changed after a revision (default: fused CLIP
    vectors); `extra_stamp` names whatever else the vectors depend on (e.g. a model id)."""

    store: Store
    name: str = FUSED
    config: IndexConfig = IndexConfig()
    weights: FusionWeights = FusionWeights()
    source: Callable[[int | None], tuple[np.ndarray, np.ndarray]] | None = None
    extra_stamp: dict = field(default_factory=dict)
    index: object = None
    info: IndexInfo | None = None
    held: np.ndarray | None = None  # the ids in the index
    action: str = ""  # what the last `ensure` did: loaded, updated, built

    def vectors(self, since: int | None = None) -> tuple[np.ndarray, np.ndarray]:
        if self.source is not None:
            return self.source(since)
        return fused_vectors(self.store, self.weights, since)

    def stamp(self) -> dict:
        return {**catalog_stamp(self.store), **self.extra_stamp}

    def ensure(self) -> IndexInfo:
        """Make the index current with the store, touching the files only when something changed."""
        stamp = self.stamp()
        if self.info is not None and self.info.stamp == stamp:
            return self.info
        folder = index_folder(self.store)
        try:
            self.index, self.info = load_index(folder, self.name)
            self.held = self._load_ids()
            self.action = "loaded"
        except IndexFileError as exc:
            if (folder / f"{self.name}.faiss").exists():
                print(f"[index] rebuilding {self.name}: {exc}", file=sys.stderr)
            return self._rebuild(stamp)
        old = self.info.stamp
        if {k: v for k, v in old.items() if k != "revision"} != {k: v for k, v in stamp.items() if k != "revision"}:
            return self._rebuild(stamp)  # another catalog, CLIP version or model
        if old.get("revision") != stamp["revision"] and not self._update(stamp):
            return self._rebuild(stamp)
        return self.info

    def _rebuild(self, stamp: dict) -> IndexInfo:
        ids, vectors = self.vectors()
        if len(ids) == 0:
            raise IndexFileError("the catalog has no embedded videos to index")
        self.index, self.info = build_tuned(self.name, vectors, ids, self.config, stamp)
        self.held = ids
        self.action = "built"
        self._save()
        return self.info

    def _update(self, stamp: dict) -> bool:
        """Bring the index to the store's revision in place; False where only a rebuild will do."""
        since = int(self.info.stamp.get("revision", 0))
        current_ids = {r[0] for r in self.store.db.execute("SELECT id FROM videos")}
        indexed = set(self.held.tolist())
        gone = indexed - current_ids
        changed = {r[0] for r in self.store.db.execute("SELECT id FROM videos WHERE changed > ?", (since,))}
        stale = (gone | changed) & indexed
        fresh_ids, fresh = self.vectors(since)
        size = len(current_ids)
        if self.info.type == "hnsw" and stale:
            return False  # HNSW cannot remove
        if choose_type(size, self.info.dim, self.config) != self.info.type or size > 2 * max(1, self.info.size):
            return False  # grown into another kind (or far past what IVF was trained on)
        if stale:
            self.index.remove_ids(np.array(sorted(stale), np.int64))
        if len(fresh_ids):
            self.index.add_with_ids(fresh, fresh_ids)
        self.held = np.array(sorted((indexed - stale) | set(fresh_ids.tolist())), np.int64)
        self.info.size, self.info.stamp = int(self.index.ntotal), stamp
        self.action = "updated"
        self._save()
        return True

    def _load_ids(self) -> np.ndarray:
        path = index_folder(self.store) / f"{self.name}.ids.npy"
        try:
            ids = np.load(path)
        except (OSError, ValueError) as exc:
            raise IndexFileError(f"{path.name} is unreadable: {exc}") from exc
        if _digest(ids) != self.info.ids_digest:
            raise IndexFileError(f"{path.name} does not hold the ids the index was written with")
        return ids

    def _save(self) -> None:
        """The ids file first, then the index and its description (which names the ids' digest)."""
        folder = index_folder(self.store)
        folder.mkdir(parents=True, exist_ok=True)
        tmp = folder / f"{self.name}.ids.tmp.npy"
        np.save(tmp, self.held)
        tmp.replace(folder / f"{self.name}.ids.npy")
        self.info.ids_digest = _digest(self.held)
        save_index(self.index, self.info, folder)
        with self.store.transaction():
            described = [i for i in json.loads(self.store.get_meta("indexes", "[]")) if i["name"] != self.name]
            described.append({k: getattr(self.info, k) for k in ("name", "type", "size", "device", "recall",
                                                                    "params", "search")})
            self.store.set_meta("indexes", json.dumps(sorted(described, key=lambda i: i["name"])))

    def search(self, queries: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
        """Top-k (scores, ids) per query row; k is capped at the index size, misses are dropped by callers (-1)."""
        self.ensure()
        k = max(1, min(int(k), int(self.index.ntotal)))
        return self.index.search(np.ascontiguousarray(queries, np.float32), k)


def _digest(ids: np.ndarray) -> str:
    return hashlib.sha1(np.ascontiguousarray(ids, np.int64).tobytes()).hexdigest()
