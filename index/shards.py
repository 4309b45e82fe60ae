"""An index cut into shards by id, for catalogs whose vectors outgrow one machine's memory budget.

One template is trained once on a sample of all the vectors (an IVF quantizer, or a flat index while the
catalog is small), cloned once per shard and filled with the vectors whose id falls in it (id mod N), so
every shard holds global ids and a search is each shard's top k, merged. Since every shard shares the
template's lists, the merged top k is what one index over the same vectors with the same search
parameters finds. On one machine the shard files load into faiss's `IndexShards`; over Ray each shard is
an actor (index/ray_shards.py). HNSW has no shared template (each graph is its own), so a sharded index
that would be HNSW is IVF instead.
"""

from __future__ import annotations

import copy
import json
import math
import time
from collections.abc import Callable
from typing import Any

import faiss
import numpy as np

from ingest.store import IndexFiles, write_text_atomically

from .vector_index import (
    FaissIndex,
    IndexConfig,
    IndexFileError,
    IndexInfo,
    VectorIndex,
    check_vectors,
    choose_type,
    clone_native,
    pq_bits,
    pq_subquantizers,
    read_description,
    read_ids,
    read_native,
    set_search_params,
    to_device,
    trained_index,
    tune_search,
    write_ids,
    write_native,
)

# (template, vectors, ids, shards) -> one filled CPU index per shard; index/ray_shards.py fills them on Ray
Fill = Callable[[faiss.Index, np.ndarray, np.ndarray, int], list]


def shard_of(ids: np.ndarray, shards: int) -> np.ndarray:
    """Which shard each id lives in."""
    return np.asarray(ids, np.int64) % shards


def index_bytes(kind: str, n: int, dim: int, config: IndexConfig = IndexConfig()) -> int:
    """About how much memory an index of `kind` over n vectors takes (vectors or codes, ids, graph links);
    bench/bench_shards.py compares these with the files it writes."""
    per_vector = {
        "flat": dim * 4 + 8,
        "hnsw": dim * 4 + 8 + config.hnsw_m * 2 * 4,  # level 0 holds 2M links of 4 bytes
        "ivf": dim * 4 + 8,
        "ivfsq": dim + 8,
        "ivfpq": _pq_bytes(n, dim) + 8,
    }[kind]
    return n * per_vector


def _pq_bytes(n: int, dim: int) -> int:
    m = pq_subquantizers(dim)
    return math.ceil(m * pq_bits(n) / 8)


def shard_count(n: int, dim: int, config: IndexConfig) -> int:
    """`config.shards` when given, else as many shards as the memory budget asks for (one for any catalog
    whose index fits it)."""
    if config.shards:
        return config.shards
    kind = choose_type(n, dim, config)
    return max(1, math.ceil(index_bytes(kind, n, dim, config) / (config.memory_budget_mb * 2**20)))


def sharded_type(n: int, dim: int, config: IndexConfig) -> str:
    """The type of each shard: the usual choice, except HNSW (no template to share), which becomes IVF."""
    kind = choose_type(n, dim, config)
    return "ivf" if kind == "hnsw" else kind


def fill_here(template, vectors: np.ndarray, ids: np.ndarray, shards: int) -> list:
    """Each shard a clone of the template holding its own vectors, filled in this process."""
    where = shard_of(ids, shards)
    parts = []
    for k in range(shards):
        part = faiss.clone_index(template)
        mine = where == k
        part.add_with_ids(vectors[mine], ids[mine])
        parts.append(part)
    return parts


class ShardedIndex(FaissIndex):
    """The shards of one index in this process, searched through faiss's IndexShards (which merges the top k)."""

    def __init__(self, parts: list, info: IndexInfo, ids: np.ndarray):
        combined: Any
        if info.type in ("ivf", "ivfsq", "ivfpq") and info.device == "cpu":
            # IVF shards on the CPU share one coarse quantizer search: a query scans the centroids once, not once
            # a shard (0.79x of one index's queries/s at 2M against 0.41x with plain IndexShards, bench/RESULTS.md)
            ivf = faiss.extract_index_ivf(parts[0])
            quantizer = faiss.clone_index(ivf.quantizer)
            combined = faiss.IndexShardsIVF(quantizer, ivf.nlist, False, False)
        else:
            quantizer = None
            combined = faiss.IndexShards(info.dim, False, False)  # type: ignore[call-arg]
        for part in parts:  # not threaded; the ids are the shards' own (global)
            combined.add_shard(part)
        combined.referenced_objects = [quantizer, *parts]  # faiss's way: the wrapper owns neither
        set_search_params(combined, info.search)
        super().__init__(combined, info, ids)
        self.parts = parts

    @classmethod
    def build_sharded(
        cls,
        name: str,
        vectors: np.ndarray,
        ids: np.ndarray,
        shards: int,
        config: IndexConfig = IndexConfig(),
        stamp: dict | None = None,
        fill: Fill = fill_here,
    ) -> ShardedIndex:
        """Train one template on a sample, fill `shards` clones of it (`fill`: here, or on Ray), tune the search
        on the merged whole, and move the shards to the GPU when there is one."""
        vectors, ids = check_vectors(vectors, ids)
        started = time.perf_counter()
        kind = sharded_type(len(vectors), vectors.shape[1], config)
        template, params = trained_index(vectors, kind, config)
        parts = fill(template, vectors, ids, shards)
        info = IndexInfo(name=name, type=kind, size=len(ids), dim=int(vectors.shape[1]), params=params)
        info.shards = [{"size": int(p.ntotal)} for p in parts]
        info.search, info.recall = tune_search(cls(parts, info, ids).native, kind, params, vectors, ids, config)
        info.build_seconds = round(time.perf_counter() - started, 3)
        info.stamp = stamp or {}
        return cls(_on_device(parts, info), info, ids)

    @classmethod
    def load(cls, files: IndexFiles) -> ShardedIndex:
        info, _ = read_description(files)
        if not info.shards:
            raise IndexFileError(f"{files.description.name} describes an index in one file, not in shards")
        parts = []
        for entry in info.shards:
            part = read_native(files.data.with_name(entry["file"]), entry["bytes"], entry["sha256"])
            if part.ntotal != entry["size"] or part.d != info.dim:
                raise IndexFileError(f"{entry['file']} holds {part.ntotal}x{part.d}, its description says otherwise")
            parts.append(part)
        ids = read_ids(files, info)
        return cls(_on_device(parts, info), info, ids)

    def copy(self) -> ShardedIndex:
        parts = [clone_native(part, self.info) for part in self.parts]
        return ShardedIndex(parts, copy.deepcopy(self.info), self._ids.copy())

    def add(self, ids: np.ndarray, vectors: np.ndarray) -> None:
        vectors, ids = check_vectors(vectors, ids)
        where = shard_of(ids, len(self.parts))
        for k, part in enumerate(self.parts):
            mine = where == k
            if mine.any():
                part.add_with_ids(vectors[mine], ids[mine])
        self._changed(np.union1d(self._ids, ids))

    def remove(self, ids: np.ndarray) -> None:
        ids = np.ascontiguousarray(ids, np.int64)
        if not len(ids):
            return
        where = shard_of(ids, len(self.parts))
        for k, part in enumerate(self.parts):
            part.remove_ids(np.ascontiguousarray(ids[where == k]))
        self._changed(np.setdiff1d(self._ids, ids))

    def _changed(self, ids: np.ndarray) -> None:
        self.native.syncWithSubIndexes()  # IndexShards keeps its own count of what its shards hold
        self._ids = ids
        self.info.size = int(self.native.ntotal)
        for entry, part in zip(self.info.shards, self.parts):
            entry["size"] = int(part.ntotal)

    def save(self, files: IndexFiles) -> None:
        """The ids, then each shard file, then the description naming every file's size and checksum (as for
        one index: a crash leaves files that disagree with the description, found on load and rebuilt), then
        whatever an earlier layout of this name left."""
        write_ids(files, self._ids, self.info)
        n = len(self.parts)
        total = 0
        for k, (entry, part) in enumerate(zip(self.info.shards, self.parts)):
            path = files.shard(k, n)
            size, sha256 = write_native(part, path, self.info.device)
            entry.update(file=path.name, size=int(part.ntotal), bytes=size, sha256=sha256)
            total += size
        self.info.sha256 = ""
        write_text_atomically(files.description, json.dumps({**self.info.to_json(), "bytes": total}))
        keep = {files.shard(k, n) for k in range(n)}
        for stale in [files.data, *files.shard_files()]:
            if stale not in keep:
                stale.unlink(missing_ok=True)


def _on_device(parts: list, info: IndexInfo) -> list:
    """CPU shards with their search settings, moved to the GPU when faiss sees one (`info.device` says where)."""
    moved = []
    for part in parts:
        set_search_params(part, info.search)
        part, info.device = to_device(part)
        moved.append(part)
    return moved


def load_index(files: IndexFiles) -> FaissIndex:
    """The index on disk under these names, in one file or in shards (as its description says)."""
    info, _ = read_description(files)
    return ShardedIndex.load(files) if info.shards else FaissIndex.load(files)


def build_index_for(
    name: str,
    vectors: np.ndarray,
    ids: np.ndarray,
    shards: int,
    config: IndexConfig,
    stamp: dict,
    fill: Fill = fill_here,
) -> VectorIndex:
    """One index, or a sharded one where `shards` > 1."""
    if shards > 1:
        return ShardedIndex.build_sharded(name, vectors, ids, shards, config, stamp, fill)
    return FaissIndex.build(name, vectors, ids, config, stamp)


def described_shards(files: IndexFiles) -> int:
    """How many shards the index on disk has (0 where there is none or it cannot be read)."""
    try:
        info, _ = read_description(files)
    except IndexFileError:
        return 0
    return max(1, len(info.shards))
