"""Vector indexes with stable int64 ids, behind one interface (`VectorIndex`: add, remove, search, save,
load, describe) that search, similar videos and recommendations reach vectors through.

`FaissIndex` is the one kept on this machine: a FAISS type chosen by size and memory budget, search
parameters tuned to a recall target against exact search, the GPU when there is one, crash-safe files.
One code path for CPU and GPU: the index is built on the CPU, moved to the GPU when faiss can see one,
and moved back before it is written.
"""

from __future__ import annotations

import copy
import hashlib
import json
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Protocol

import faiss
import numpy as np

from ingest.store import IndexFiles, checksum_differs, replacing, sha256_file, write_text_atomically

TYPES = ("flat", "hnsw", "ivf", "ivfsq", "ivfpq")


@dataclass(frozen=True)
class IndexConfig:
    """How indexes are chosen and tuned (data, not code: override per call or per catalog)."""

    memory_budget_mb: int = 4096
    target_recall: float = 0.95  # recall@10 against exact search, measured on a sample
    recall_plateau: float = 0.01  # where the target is out of reach: settle within this of the best recall
    flat_max: int = 20_000  # exact search below this size: as fast as anything and always right
    hnsw_max: int = 500_000
    ivf_max: int = 2_000_000
    hnsw_m: int = 32
    sample_queries: int = 500
    k: int = 10
    force_type: str | None = None  # one of TYPES, to override the choice (tests, benchmarks)
    shards: int | None = None  # None: as the memory budget asks (one shard for any index that fits it)


class IndexFileError(Exception):
    """An index file that is missing, truncated, or does not match its description."""


@dataclass
class IndexInfo:
    """What an index is, written beside it as JSON and reported by `vidrec index --json`."""

    name: str
    type: str
    size: int
    dim: int
    params: dict = field(default_factory=dict)
    search: dict = field(default_factory=dict)
    recall: float | None = None  # measured recall@k against exact search
    device: str = "cpu"
    build_seconds: float = 0.0
    stamp: dict = field(default_factory=dict)  # what it was built from (catalog revision, CLIP version)
    ids_digest: str = ""  # sha1 of the int64 ids it holds, kept in a file beside it
    sha256: str = ""  # of the FAISS file: a flipped byte inside it is found on load, not served
    shards: list[dict] = field(default_factory=list)  # a sharded index's files: {file, size, bytes, sha256} each

    def to_json(self) -> dict:
        return asdict(self)


def gpu_available() -> bool:
    return hasattr(faiss, "StandardGpuResources") and faiss.get_num_gpus() > 0


def choose_type(n: int, dim: int, config: IndexConfig) -> str:
    """Exact while small; then HNSW, IVF, IVF with 8-bit scalar codes, IVF-PQ as size or memory demand."""
    if config.force_type:
        if config.force_type not in TYPES:
            raise ValueError(f"unknown index type {config.force_type!r}; one of {', '.join(TYPES)}")
        return config.force_type
    budget = config.memory_budget_mb * 2**20
    raw = n * dim * 4
    if n <= config.flat_max:
        return "flat"
    if n <= config.hnsw_max and raw + n * config.hnsw_m * 8 <= budget:
        return "hnsw"
    if n <= config.ivf_max and raw <= budget:
        return "ivf"
    if n * dim <= budget:
        return "ivfsq"
    return "ivfpq"


def build_index(vectors: np.ndarray, ids: np.ndarray, kind: str, config: IndexConfig = IndexConfig()):
    """A CPU index of `kind` over float32 vectors [N, D] with int64 ids, inner-product metric."""
    vectors, ids = check_vectors(vectors, ids)
    index, params = trained_index(vectors, kind, config)
    index.add_with_ids(vectors, ids)
    return index, params


def trained_index(vectors: np.ndarray, kind: str, config: IndexConfig = IndexConfig()):
    """An empty CPU index of `kind`, trained on (a sample of) `vectors` where the type needs training: the
    template that one index, or every shard of a sharded one, is filled from."""
    n, dim = vectors.shape
    params: dict = {}
    index: faiss.Index
    if kind == "flat":
        index = faiss.IndexIDMap2(faiss.IndexFlatIP(dim))
    elif kind == "hnsw":
        inner = faiss.IndexHNSWFlat(dim, config.hnsw_m, faiss.METRIC_INNER_PRODUCT)
        inner.hnsw.efConstruction = 80
        index = faiss.IndexIDMap2(inner)
        params = {"M": config.hnsw_m, "efConstruction": 80}
    elif kind in ("ivf", "ivfsq", "ivfpq"):
        nlist = int(max(1, min(4 * np.sqrt(n), n // 39)))  # faiss wants ~39 training points per list
        quantizer = faiss.IndexFlatIP(dim)
        if kind == "ivf":
            index = faiss.IndexIVFFlat(quantizer, dim, nlist, faiss.METRIC_INNER_PRODUCT)
        elif kind == "ivfsq":
            index = faiss.IndexIVFScalarQuantizer(
                quantizer, dim, nlist, faiss.ScalarQuantizer.QT_8bit, faiss.METRIC_INNER_PRODUCT
            )
        else:
            m = pq_subquantizers(dim)
            nbits = pq_bits(n)
            index = faiss.IndexIVFPQ(quantizer, dim, nlist, m, nbits, faiss.METRIC_INNER_PRODUCT)
            params.update(m=m, nbits=nbits)
        params["nlist"] = nlist
        train = vectors if n <= 64 * nlist else vectors[np.random.default_rng(0).choice(n, 64 * nlist, replace=False)]
        index.train(train)
    else:
        raise ValueError(f"unknown index type {kind!r}; one of {', '.join(TYPES)}")
    return index, params


def pq_bits(n: int) -> int:
    """Bits per PQ code: 8-bit codebooks need ~10k training points (256 centroids x 39), else 4."""
    return 8 if n >= 256 * 39 else 4


def pq_subquantizers(dim: int) -> int:
    """PQ codes of about 4 dimensions each (dim must divide evenly): 16x smaller than float32 vectors."""
    for m in (dim // 4, dim // 2, dim):
        if m >= 1 and dim % m == 0:
            return m
    return dim


def set_search_params(index, search: dict) -> None:
    for key, value in search.items():
        faiss.ParameterSpace().set_index_parameter(index, key, value)


def search_candidates(kind: str, params: dict) -> list[dict]:
    """The settings tried, cheapest first, when tuning to the recall target."""
    if kind == "hnsw":
        return [{"efSearch": e} for e in (16, 32, 64, 128, 256, 512)]
    if kind in ("ivf", "ivfsq", "ivfpq"):
        nlist = params["nlist"]
        return [{"nprobe": p} for p in sorted({min(nlist, p) for p in (1, 2, 4, 8, 16, 32, 64, 128, 256, nlist)})]
    return [{}]


def recall_at_k(found: np.ndarray, exact: np.ndarray) -> float:
    """Share of the exact top-k ids that the index found (ids of -1 are misses)."""
    hits = [len(set(f[f >= 0]) & set(e[e >= 0])) / max(1, (e >= 0).sum()) for f, e in zip(found, exact)]
    return round(float(np.mean(hits)), 4) if hits else 1.0


def tune_search(
    index, kind: str, params: dict, vectors: np.ndarray, ids: np.ndarray, config: IndexConfig
) -> tuple[dict, float]:
    """The cheapest search setting whose recall@k on a sample of queries reaches the target; where none
    does (PQ codes cap recall), the cheapest within `recall_plateau` of the best, rather than a search
    of every list that buys nothing."""
    rng = np.random.default_rng(0)
    sample = rng.choice(len(vectors), min(config.sample_queries, len(vectors)), replace=False)
    queries = vectors[sample]
    k = min(config.k, len(vectors))
    exact = _exact_topk(vectors, ids, queries, k)
    tried: list[tuple[dict, float]] = []
    for setting in search_candidates(kind, params):
        set_search_params(index, setting)
        _, found = index.search(queries, k)
        tried.append((setting, recall_at_k(found, exact)))
        if tried[-1][1] >= config.target_recall:
            return tried[-1]
    top = max(recall for _, recall in tried)
    best = next((s, r) for s, r in tried if r >= top - config.recall_plateau)
    set_search_params(index, best[0])
    return best


def _exact_topk(vectors: np.ndarray, ids: np.ndarray, queries: np.ndarray, k: int) -> np.ndarray:
    """The exact top-k ids, searched over the vectors where they are (a flat index would copy them: 1 GB at 1M)."""
    _, rows = faiss.knn(queries, vectors, k, metric=faiss.METRIC_INNER_PRODUCT)
    return np.where(rows >= 0, ids[np.clip(rows, 0, None)], -1)


def to_device(index):
    """Onto the GPU when faiss sees one (HNSW has no GPU form and stays on the CPU)."""
    if not gpu_available() or isinstance(_inner(index), faiss.IndexHNSWFlat):
        return index, "cpu"
    resources = faiss.StandardGpuResources()
    return faiss.index_cpu_to_gpu(resources, 0, index), "cuda"


def _inner(index):
    return faiss.downcast_index(index.index) if isinstance(index, faiss.IndexIDMap2) else index


def check_vectors(vectors: np.ndarray, ids: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    vectors = np.ascontiguousarray(vectors, dtype=np.float32)
    ids = np.ascontiguousarray(ids, dtype=np.int64)
    if vectors.ndim != 2 or len(vectors) != len(ids):
        raise ValueError(f"expected vectors [N, D] and N ids, got {vectors.shape} and {ids.shape}")
    if len(np.unique(ids)) != len(ids):
        raise ValueError("index ids must be unique")
    return vectors, ids


class VectorIndex(Protocol):
    """What the read path needs of an index over (int64 id, float32 vector) pairs, inner-product metric."""

    info: IndexInfo

    @property
    def ids(self) -> np.ndarray:
        """The ids it holds, ascending."""

    def copy(self) -> VectorIndex:
        """An independent copy, to change while searches go on in this one."""

    def add(self, ids: np.ndarray, vectors: np.ndarray) -> None:
        """Add vectors under new ids."""

    def remove(self, ids: np.ndarray) -> None:
        """Drop these ids (ValueError where the index type cannot: rebuild it instead)."""

    def search(self, queries: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
        """Top-k (scores, ids) per query row; k is capped at the index size; misses have id -1."""

    def save(self, files: IndexFiles) -> None:
        """Write the index, its ids and its description so that a crash leaves the old set or the new one."""

    def describe(self) -> dict:
        """What `vidrec index` and `status` report of it."""


class FaissIndex:
    """One FAISS index with its description and the ids it holds."""

    def __init__(self, native, info: IndexInfo, ids: np.ndarray):
        self.native, self.info, self._ids = native, info, np.sort(np.asarray(ids, np.int64))

    @classmethod
    def build(
        cls,
        name: str,
        vectors: np.ndarray,
        ids: np.ndarray,
        config: IndexConfig = IndexConfig(),
        stamp: dict | None = None,
    ) -> FaissIndex:
        """Choose, build, tune, and (when there is a GPU) move an index."""
        vectors, ids = check_vectors(vectors, ids)
        started = time.perf_counter()
        kind = choose_type(len(vectors), vectors.shape[1], config)
        native, params = build_index(vectors, ids, kind, config)
        search, recall = tune_search(native, kind, params, vectors, ids, config) if len(vectors) else ({}, 1.0)
        native, device = to_device(native)
        info = IndexInfo(
            name=name,
            type=kind,
            size=int(native.ntotal),
            dim=int(vectors.shape[1]),
            params=params,
            search=search,
            recall=recall,
            device=device,
            build_seconds=round(time.perf_counter() - started, 3),
            stamp=stamp or {},
        )
        return cls(native, info, ids)

    @classmethod
    def load(cls, files: IndexFiles) -> FaissIndex:
        """Read an index, its description and its ids; IndexFileError if anything about them is off."""
        if not files.data.is_file():
            raise IndexFileError(f"no index at {files.data}")
        info, described = read_description(files)
        native = read_native(files.data, described.get("bytes"), info.sha256)
        if native.ntotal != info.size or native.d != info.dim:
            raise IndexFileError(
                f"{files.data.name} holds {native.ntotal}x{native.d}, its description says {info.size}x{info.dim}"
            )
        ids = read_ids(files, info)
        set_search_params(native, info.search)
        native, info.device = to_device(native)
        return cls(native, info, ids)

    @property
    def ids(self) -> np.ndarray:
        return self._ids

    def copy(self) -> FaissIndex:
        """FAISS indexes are not safe to change while another thread searches them: readers update a copy and
        swap it in."""
        return FaissIndex(clone_native(self.native, self.info), copy.deepcopy(self.info), self._ids.copy())

    def add(self, ids: np.ndarray, vectors: np.ndarray) -> None:
        vectors, ids = check_vectors(vectors, ids)
        if len(ids):
            self.native.add_with_ids(vectors, ids)
            self._ids = np.union1d(self._ids, ids)
            self.info.size = int(self.native.ntotal)

    def remove(self, ids: np.ndarray) -> None:
        """Drop these ids (an HNSW index cannot: ValueError, rebuild it instead)."""
        ids = np.ascontiguousarray(ids, np.int64)
        if not len(ids):
            return
        if self.info.type == "hnsw":
            raise ValueError("an HNSW index cannot remove vectors: rebuild it")
        self.native.remove_ids(ids)
        self._ids = np.setdiff1d(self._ids, ids)
        self.info.size = int(self.native.ntotal)

    def search(self, queries: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
        k = max(1, min(int(k), int(self.native.ntotal)))
        return self.native.search(np.ascontiguousarray(queries, np.float32), k)

    def save(self, files: IndexFiles) -> None:
        """The ids first, then the index, then its description, each to a temporary name and renamed: a crash
        (or a full disk) leaves the old set or the new one and no temporary file, and the description (written
        last) names the others' size and checksums, so a mismatch or a damaged byte is detected on load."""
        write_ids(files, self._ids, self.info)
        size, self.info.sha256 = write_native(self.native, files.data, self.info.device)
        self.info.shards = []
        write_text_atomically(files.description, json.dumps({**self.info.to_json(), "bytes": size}))
        for stale in files.shard_files():  # what a sharded index of this name left
            stale.unlink(missing_ok=True)

    def describe(self) -> dict:
        return describe_info(self.info)


def describe_info(info: IndexInfo) -> dict:
    """What `vidrec index` and `status` report of an index."""
    described = {k: getattr(info, k) for k in ("name", "type", "size", "device", "recall", "params", "search")}
    return described | {"shards": max(1, len(info.shards))}


def read_description(files: IndexFiles) -> tuple[IndexInfo, dict]:
    """The description written beside an index, as an IndexInfo and as written."""
    if not files.description.is_file():
        raise IndexFileError(f"no index at {files.data}")
    try:
        described = json.loads(files.description.read_text())
        return IndexInfo(**{k: v for k, v in described.items() if k != "bytes"}), described
    except (ValueError, TypeError) as exc:
        raise IndexFileError(f"{files.description.name} is unreadable: {exc}") from exc


def read_native(path: Path, size: int | None, sha256: str):
    """A FAISS file checked against the size and checksum its description gives."""
    if not path.is_file():
        raise IndexFileError(f"{path.name} is missing")
    if path.stat().st_size != size:
        raise IndexFileError(f"{path.name} has {path.stat().st_size} bytes, its description says {size}")
    if checksum_differs(path, sha256):
        raise IndexFileError(f"{path.name} is damaged (its checksum differs from its description's)")
    try:
        return faiss.read_index(str(path))
    except RuntimeError as exc:
        raise IndexFileError(f"{path.name} is unreadable: {' '.join(str(exc).split())[:200]}") from exc


def read_ids(files: IndexFiles, info: IndexInfo) -> np.ndarray:
    try:
        ids = np.load(files.ids)
    except (OSError, ValueError) as exc:
        raise IndexFileError(f"{files.ids.name} is unreadable: {exc}") from exc
    if _digest(ids) != info.ids_digest:
        raise IndexFileError(f"{files.ids.name} does not hold the ids the index was written with")
    return ids


def write_ids(files: IndexFiles, ids: np.ndarray, info: IndexInfo) -> None:
    with replacing(files.ids) as tmp, open(tmp, "wb") as f:
        np.save(f, ids)
    info.ids_digest = _digest(ids)


def write_native(native, path: Path, device: str) -> tuple[int, str]:
    """Write a FAISS index (from the CPU) to a temporary name and rename it; its (bytes, sha256)."""
    cpu = faiss.index_gpu_to_cpu(native) if device != "cpu" else native
    with replacing(path) as tmp:
        faiss.write_index(cpu, str(tmp))
        sha256 = sha256_file(tmp)
    return path.stat().st_size, sha256


def clone_native(native, info: IndexInfo):
    """An independent copy of a FAISS index with the same search settings, on the same device."""
    if info.device == "cpu":
        cloned = faiss.clone_index(native)
    else:
        cloned, _ = to_device(faiss.index_gpu_to_cpu(native))
    set_search_params(cloned, info.search)
    return cloned


def _digest(ids: np.ndarray) -> str:
    return hashlib.sha1(np.ascontiguousarray(ids, np.int64).tobytes()).hexdigest()
