"""A sharded index on Ray (`index --engine ray`, `serve --engine ray`, `Vidrec(..., engine="ray")`): Ray
tasks fill the shards from one trained template, and one named actor per shard answers searches, on a GPU
where the cluster has one; the caller merges each shard's top k, as faiss's IndexShards does in one process.

Actors read their shard files from the data dir, so every node must see it at the same path (as for
`ingest --engine ray`), and check each file against its description before answering. An actor is named
after its file's checksum, so servers in one Ray job share the actors of the same files; a file-backed
actor that dies is started again on the next search. What a serving process changes in memory (new videos
added between two saves) lives in its own, unnamed actors.
"""

from __future__ import annotations

import copy
from pathlib import Path
from typing import Any

import faiss
import numpy as np

from ingest.engine import EngineError, cluster_gpus, ray_cluster, ray_for_process
from ingest.store import IndexFiles

from .shards import ShardedIndex, shard_of
from .vector_index import (
    IndexFileError,
    IndexInfo,
    check_vectors,
    describe_info,
    read_description,
    read_ids,
    read_native,
    set_search_params,
    to_device,
)

ACTOR_CPUS = 0.1  # a search actor mostly waits (and a copy of every actor is made to update them); on GPU
# nodes each takes a share of a GPU instead
FILL_CPUS = 1.0
NAMESPACE = "vidrec"


def fill_on_ray(template, vectors: np.ndarray, ids: np.ndarray, shards: int) -> list:
    """Each shard filled by a Ray task from the serialized template (the `Fill` of ShardedIndex.build_sharded)."""
    with ray_cluster() as ray:
        template_ref = ray.put(faiss.serialize_index(template))
        task = ray.remote(num_cpus=FILL_CPUS)(_fill_one)
        where = shard_of(ids, shards)
        refs = [task.remote(template_ref, vectors[where == k], ids[where == k]) for k in range(shards)]
        return [faiss.deserialize_index(data) for data in ray.get(refs)]


def _fill_one(template: np.ndarray, vectors: np.ndarray, ids: np.ndarray) -> np.ndarray:
    part = faiss.deserialize_index(template)
    part.add_with_ids(vectors, ids)
    return faiss.serialize_index(part)


class ShardSearcher:
    """One shard in a Ray actor: loaded from its file (checked against size and checksum) or from serialized
    bytes, on the node's GPU when faiss sees one, searched one thread per query."""

    def __init__(self, source: str | np.ndarray, size: int, sha256: str, search: dict):
        faiss.omp_set_num_threads(1)
        self.error: IndexFileError | None = None
        self.device = "cpu"
        try:
            part = (
                read_native(Path(source), size, sha256) if isinstance(source, str) else faiss.deserialize_index(source)
            )
        except IndexFileError as exc:
            self.error = exc
            return
        set_search_params(part, search)
        self.part, self.device = to_device(part)

    def ready(self) -> str:
        if self.error is not None:
            raise self.error
        return self.device

    def search(self, queries: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
        return self.part.search(queries, k)

    def add(self, ids: np.ndarray, vectors: np.ndarray) -> int:
        self.part.add_with_ids(vectors, ids)
        return int(self.part.ntotal)

    def remove(self, ids: np.ndarray) -> int:
        self.part.remove_ids(ids)
        return int(self.part.ntotal)

    def serialized(self) -> np.ndarray:
        return faiss.serialize_index(faiss.index_gpu_to_cpu(self.part) if self.device != "cpu" else self.part)


def merge_top_k(results: list[tuple[np.ndarray, np.ndarray]], k: int) -> tuple[np.ndarray, np.ndarray]:
    """The best k of every shard's top k, per query row, best first (misses, id -1, score -inf-like, last)."""
    scores = np.concatenate([s for s, _ in results], axis=1)
    ids = np.concatenate([i for _, i in results], axis=1)
    order = np.argsort(-scores, axis=1, kind="stable")[:, :k]
    return np.take_along_axis(scores, order, axis=1), np.take_along_axis(ids, order, axis=1)


class RayShardedIndex:
    """A sharded index whose shards live in Ray actors (the VectorIndex interface, as ShardedIndex)."""

    def __init__(self, ray: Any, actors: list, info: IndexInfo, ids: np.ndarray, files: list[Path | None]):
        self.ray, self.actors, self.info, self._ids, self.files = ray, actors, info, np.sort(ids), files

    @classmethod
    def load(cls, files: IndexFiles) -> RayShardedIndex:
        ray = ray_for_process()
        info, _ = read_description(files)
        if not info.shards:
            raise IndexFileError(f"{files.description.name} describes an index in one file, not in shards")
        ids = read_ids(files, info)
        paths: list[Path | None] = [files.data.with_name(entry["file"]) for entry in info.shards]
        index = cls(ray, [None] * len(paths), info, ids, paths)
        index.actors = [index._start(k) for k in range(len(paths))]
        index._ready()
        return index

    @classmethod
    def from_local(cls, local: ShardedIndex) -> RayShardedIndex:
        """Actors holding the shards of an index built (or updated) in this process."""
        ray = ray_for_process()
        info = copy.deepcopy(local.info)
        index = cls(ray, [], info, local.ids.copy(), [None] * len(local.parts))
        actor_class = index._actor_class(len(local.parts), len(local.parts))
        index.actors = [
            actor_class.remote(faiss.serialize_index(_cpu(part, info)), 0, "", info.search) for part in local.parts
        ]
        index._ready()
        return index

    def _actor_class(self, count: int, shards: int, name: str | None = None) -> Any:
        """The actor class for `count` new actors of an index in `shards` shards: a share of a GPU each where
        the cluster has GPUs, else a tenth of a CPU. A cluster without room for them is refused here (Ray
        would wait for ever)."""
        gpus = cluster_gpus(self.ray)
        resources = {"num_gpus": min(1.0, gpus / shards)} if gpus else {"num_cpus": ACTOR_CPUS}
        each = next(iter(resources.values()))
        free = self.ray.available_resources().get("GPU" if gpus else "CPU", 0.0)
        if free + 1e-9 < each * count:
            raise EngineError(
                f"the Ray cluster has {free:g} {'GPUs' if gpus else 'CPUs'} free and {count} more shard actors "
                f"need {each * count:g}: add nodes, or use fewer shards (vidrec index --shards)"
            )
        named = {"name": name, "namespace": NAMESPACE, "get_if_exists": True} if name else {}
        return self.ray.remote(ShardSearcher).options(**resources, **named)

    def _start(self, k: int) -> Any:
        """The named actor of shard k's file: the one already running for the same file, else a new one."""
        entry, path = self.info.shards[k], self.files[k]
        assert path is not None
        name = f"shard-{entry['sha256'][:32]}"
        try:
            return self.ray.get_actor(name, namespace=NAMESPACE)
        except ValueError:  # none of that name
            actor_class = self._actor_class(1, len(self.info.shards), name)
            return actor_class.remote(str(path), entry["bytes"], entry["sha256"], self.info.search)

    def _ready(self) -> None:
        """Wait for the actors to hold their shards (IndexFileError where a file is off)."""
        devices = sorted(set(self.ray.get([actor.ready.remote() for actor in self.actors])))
        self.info.device = "ray/" + "+".join(devices)

    @property
    def ids(self) -> np.ndarray:
        return self._ids

    def search(self, queries: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
        k = max(1, min(int(k), self.info.size))
        queries_ref = self.ray.put(np.ascontiguousarray(queries, np.float32))
        asked = [actor.search.remote(queries_ref, k) for actor in self.actors]  # every shard at once
        results = []
        for shard, answer in enumerate(asked):
            try:
                results.append(self.ray.get(answer))
            except self.ray.exceptions.RayActorError:
                if self.files[shard] is None:
                    raise  # an actor holding changes made in this process: nothing to start it again from
                self.actors[shard] = self._start(shard)
                results.append(self.ray.get(self.actors[shard].search.remote(queries_ref, k)))
        return merge_top_k(results, k)

    def copy(self) -> RayShardedIndex:
        """New, unnamed actors started from these actors' shards (the bytes go from actor to actor)."""
        info = copy.deepcopy(self.info)
        actor_class = self._actor_class(len(self.actors), len(self.actors))
        actors = [actor_class.remote(actor.serialized.remote(), 0, "", info.search) for actor in self.actors]
        index = RayShardedIndex(self.ray, actors, info, self._ids.copy(), [None] * len(actors))
        index._ready()
        return index

    def add(self, ids: np.ndarray, vectors: np.ndarray) -> None:
        vectors, ids = check_vectors(vectors, ids)
        where = shard_of(ids, len(self.actors))
        sizes = {k: self.actors[k].add.remote(ids[where == k], vectors[where == k]) for k in set(where.tolist())}
        self._changed(sizes, np.union1d(self._ids, ids))

    def remove(self, ids: np.ndarray) -> None:
        ids = np.ascontiguousarray(ids, np.int64)
        where = shard_of(ids, len(self.actors))
        sizes = {k: self.actors[k].remove.remote(ids[where == k]) for k in set(where.tolist())}
        self._changed(sizes, np.setdiff1d(self._ids, ids))

    def _changed(self, sizes: dict, ids: np.ndarray) -> None:
        for k, size in zip(sizes, self.ray.get(list(sizes.values()))):
            self.info.shards[k]["size"] = size
            self.files[k] = None  # its actor no longer holds what the file holds
        self._ids = ids
        self.info.size = len(ids)

    def save(self, files: IndexFiles) -> None:
        """Written from this process, as a ShardedIndex of the actors' shards."""
        parts = [faiss.deserialize_index(data) for data in self.ray.get([a.serialized.remote() for a in self.actors])]
        info = copy.deepcopy(self.info)
        info.device = "cpu"
        local = ShardedIndex(parts, info, self._ids)
        local.save(files)
        self.info.shards, self.info.ids_digest = local.info.shards, local.info.ids_digest

    def describe(self) -> dict:
        return describe_info(self.info)


def _cpu(part, info: IndexInfo):
    return faiss.index_gpu_to_cpu(part) if info.device != "cpu" else part
