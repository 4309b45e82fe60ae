"""FAISS indexes with stable int64 ids: a type chosen by size and memory budget, search parameters tuned
to a recall target against exact search, the GPU when there is one, crash-safe files.

One code path for CPU and GPU: the index is built on the CPU, moved to the GPU when faiss can see
one, and moved back before it is written.
"""
from __future__ import annotations

import json
import os
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path

import faiss
import numpy as np

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
    vectors, ids = _check(vectors, ids)
    n, dim = vectors.shape
    params: dict = {}
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
            index = faiss.IndexIVFScalarQuantizer(quantizer, dim, nlist, faiss.ScalarQuantizer.QT_8bit,
                                                  faiss.METRIC_INNER_PRODUCT)
        else:
            m = _pq_subquantizers(dim)
            nbits = 8 if n >= 256 * 39 else 4  # 8-bit codebooks need ~10k training points
            index = faiss.IndexIVFPQ(quantizer, dim, nlist, m, nbits, faiss.METRIC_INNER_PRODUCT)
            params.update(m=m, nbits=nbits)
        params["nlist"] = nlist
        train = vectors if n <= 64 * nlist else vectors[np.random.default_rng(0).choice(n, 64 * nlist, replace=False)]
        index.train(train)
    else:
        raise ValueError(f"unknown index type {kind!r}; one of {', '.join(TYPES)}")
    index.add_with_ids(vectors, ids)
    return index, params


def _pq_subquantizers(dim: int) -> int:
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


def tune_search(index, kind: str, params: dict, vectors: np.ndarray, ids: np.ndarray,
                config: IndexConfig) -> tuple[dict, float]:
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
    flat = faiss.IndexFlatIP(vectors.shape[1])
    flat.add(vectors)
    _, rows = flat.search(queries, k)
    return np.where(rows >= 0, ids[np.clip(rows, 0, None)], -1)


def build_tuned(name: str, vectors: np.ndarray, ids: np.ndarray, config: IndexConfig = IndexConfig(),
                stamp: dict | None = None):
    """Choose, build, tune, and (when there is a GPU) move an index; returns (index, IndexInfo)."""
    vectors, ids = _check(vectors, ids)
    started = time.perf_counter()
    kind = choose_type(len(vectors), vectors.shape[1], config)
    index, params = build_index(vectors, ids, kind, config)
    search, recall = tune_search(index, kind, params, vectors, ids, config) if len(vectors) else ({}, 1.0)
    index, device = to_device(index)
    info = IndexInfo(name=name, type=kind, size=int(index.ntotal), dim=int(vectors.shape[1]), params=params,
                     search=search, recall=recall, device=device,
                     build_seconds=round(time.perf_counter() - started, 3), stamp=stamp or {})
    return index, info


def to_device(index):
    """Onto the GPU when faiss sees one (HNSW has no GPU form and stays on the CPU)."""
    if not gpu_available() or isinstance(_inner(index), faiss.IndexHNSWFlat):
        return index, "cpu"
    resources = faiss.StandardGpuResources()
    return faiss.index_cpu_to_gpu(resources, 0, index), "cuda"


def _inner(index):
    return faiss.downcast_index(index.index) if isinstance(index, faiss.IndexIDMap2) else index


def _check(vectors: np.ndarray, ids: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    vectors = np.ascontiguousarray(vectors, dtype=np.float32)
    ids = np.ascontiguousarray(ids, dtype=np.int64)
    if vectors.ndim != 2 or len(vectors) != len(ids):
        raise ValueError(f"expected vectors [N, D] and N ids, got {vectors.shape} and {ids.shape}")
    if len(np.unique(ids)) != len(ids):
        raise ValueError("index ids must be unique")
    return vectors, ids


# ---- persistence -------------------------------------------------------------------------------

def save_index(index, info: IndexInfo, folder: Path) -> None:
    """Write `<name>.faiss` and `<name>.json` each to a temporary name and rename: a crash leaves either
    the old pair or the new one. The JSON goes last and names the size, so a mismatch is detectable."""
    folder.mkdir(parents=True, exist_ok=True)
    cpu = faiss.index_gpu_to_cpu(index) if info.device != "cpu" else index
    data = folder / f"{info.name}.faiss"
    tmp = data.with_suffix(".faiss.tmp")
    faiss.write_index(cpu, str(tmp))
    os.replace(tmp, data)
    meta = folder / f"{info.name}.json"
    tmp = meta.with_suffix(".json.tmp")
    tmp.write_text(json.dumps({**info.to_json(), "bytes": data.stat().st_size}))
    os.replace(tmp, meta)


class IndexFileError(Exception):
    """An index file that is missing, truncated, or does not match its description."""


def load_index(folder: Path, name: str):
    """Read an index and its description; IndexFileError if anything about the pair is off."""
    data, meta = folder / f"{name}.faiss", folder / f"{name}.json"
    if not data.is_file() or not meta.is_file():
        raise IndexFileError(f"no {name} index in {folder}")
    try:
        described = json.loads(meta.read_text())
        info = IndexInfo(**{k: v for k, v in described.items() if k != "bytes"})
    except (ValueError, TypeError) as exc:
        raise IndexFileError(f"{meta.name} is unreadable: {exc}") from exc
    if data.stat().st_size != described.get("bytes"):
        raise IndexFileError(f"{data.name} has {data.stat().st_size} bytes, its description says {described.get('bytes')}")
    try:
        index = faiss.read_index(str(data))
    except RuntimeError as exc:
        raise IndexFileError(f"{data.name} is unreadable: {' '.join(str(exc).split())[:200]}") from exc
    if index.ntotal != info.size or index.d != info.dim:
        raise IndexFileError(f"{data.name} holds {index.ntotal}x{index.d}, its description says {info.size}x{info.dim}")
    set_search_params(index, info.search)
    index, info.device = to_device(index)
    return index, info
