"""A sharded index against one index over the same vectors (python bench/bench_shards.py [--vectors N]
[--shards S] [--dim D] [--ray]).

Synthetic clustered, normalised vectors (bench_index.py's generator) and 1,000 held-out queries. The index
type is the one the memory rule chooses for N vectors (HNSW becomes IVF when sharded: index/shards.py).
One template is trained once; it is then filled as S shards (here, and with --ray by Ray tasks on a local
cluster) and as one index, and both get the search setting tuned on the shards. Prints: the training,
fill and tuning seconds; recall@10 of both against exact search; queries/s one query at a time on one
thread (the serving setting) for one index, the shards in this process (faiss IndexShards) and, with
--ray, one Ray actor per shard with the caller merging; the bytes per vector of the written shards
against index/shards.py's estimate; peak RSS. Ratios are measured in the same run.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import resource
import sys
import tempfile
import time
from pathlib import Path

import faiss
import numpy as np

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "bench"))

from bench_index import clustered  # noqa: E402

from index.shards import ShardedIndex, fill_here, index_bytes, sharded_type  # noqa: E402
from index.vector_index import (  # noqa: E402
    IndexConfig,
    IndexInfo,
    recall_at_k,
    set_search_params,
    trained_index,
    tune_search,
)


def peak_rss_mb() -> int:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss // 1024


def timed(fn, *args):
    started = time.perf_counter()
    out = fn(*args)
    return out, round(time.perf_counter() - started, 1)


def exact_top10(vectors: np.ndarray, queries: np.ndarray) -> np.ndarray:
    flat = faiss.IndexFlatIP(vectors.shape[1])
    flat.add(vectors)
    return flat.search(queries, 10)[1]


def one_query_at_a_time(search, queries: np.ndarray, seconds: float = 10.0) -> float:
    """Queries/s answering one query per call, for about `seconds`."""
    done, started = 0, time.perf_counter()
    while time.perf_counter() - started < seconds:
        search(queries[done % len(queries)][None], 10)
        done += 1
    return round(done / (time.perf_counter() - started), 1)


def batches(search, queries: np.ndarray, seconds: float = 10.0) -> float:
    """Queries/s answering 100 queries per call, for about `seconds`."""
    done, started = 0, time.perf_counter()
    while time.perf_counter() - started < seconds:
        start = done % (len(queries) - 100)
        search(queries[start : start + 100], 10)
        done += 100
    return round(done / (time.perf_counter() - started), 1)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--vectors", type=int, default=2_000_000)
    parser.add_argument("--dim", type=int, default=128)
    parser.add_argument("--shards", type=int, default=4)
    parser.add_argument("--ray", action="store_true", help="also fill on Ray tasks and search through Ray actors")
    args = parser.parse_args()
    n, dim, shards = args.vectors, args.dim, args.shards
    config = IndexConfig(sample_queries=200)
    out: dict = {"machine": f"{platform.machine()}, {os.cpu_count()} cores", "vectors": n, "dim": dim, "shards": shards}

    (vectors, queries), out["generate_seconds"] = timed(clustered, n, 1000, 0, dim)
    ids = np.arange(n, dtype=np.int64)
    exact, out["exact_seconds"] = timed(exact_top10, vectors, queries)

    kind = sharded_type(n, dim, config)
    (template, params), out["train_seconds"] = timed(trained_index, vectors, kind, config)
    out.update(type=kind, params=params)
    parts, out["fill_shards_seconds"] = timed(fill_here, template, vectors, ids, shards)
    info = IndexInfo(name="bench", type=kind, size=n, dim=dim, params=params, shards=[{} for _ in parts])
    sharded = ShardedIndex(parts, info, ids)
    (search, recall_sample), out["tune_seconds"] = timed(
        tune_search, sharded.native, kind, params, vectors, ids, config
    )
    info.search = search
    out["search"] = search

    def fill_one():
        one = faiss.clone_index(template)
        one.add_with_ids(vectors, ids)
        return one

    one, out["fill_one_index_seconds"] = timed(fill_one)
    for index in [one, *parts]:
        set_search_params(index, search)

    out["recall_at_10"] = {
        "one_index": recall_at_k(one.search(queries, 10)[1], exact),
        "shards": recall_at_k(sharded.search(queries, 10)[1], exact),
    }
    out["same_top10_as_one_index"] = float((one.search(queries, 10)[1] == sharded.search(queries, 10)[1]).mean())

    with tempfile.TemporaryDirectory() as folder:
        written = []
        for k, part in enumerate(parts):
            faiss.write_index(part, f"{folder}/{k}.faiss")
            written.append(os.path.getsize(f"{folder}/{k}.faiss"))
    out["bytes_per_vector"] = {
        "written": round(sum(written) / n, 1),
        "estimated": round(index_bytes(kind, n, dim, config) / n, 1),
    }

    out["batch_of_100_queries_per_second"] = {  # all threads, as a batch job (recommend --all-users) would
        "one_index": batches(lambda q, k: one.search(q, k), queries),
        "shards_here": batches(sharded.search, queries),
    }
    faiss.omp_set_num_threads(1)  # the serving setting: one thread per query
    qps = {
        "one_index": one_query_at_a_time(lambda q, k: one.search(q, k), queries),
        "shards_here": one_query_at_a_time(sharded.search, queries),
    }
    if args.ray:
        qps["ray_actors"] = ray_figures(out, template, vectors, ids, shards, sharded, queries)
    qps["shards_here_over_one_index"] = round(qps["shards_here"] / qps["one_index"], 2)
    if "ray_actors" in qps:
        qps["ray_actors_over_one_index"] = round(qps["ray_actors"] / qps["one_index"], 2)
    out["queries_per_second_one_thread"] = qps
    out["peak_rss_mb"] = peak_rss_mb()
    print(json.dumps(out, indent=2))


def ray_figures(out: dict, template, vectors, ids, shards: int, sharded: ShardedIndex, queries: np.ndarray) -> float:
    """Fill the shards with Ray tasks (checked equal to the ones filled here) and search through actors."""
    import ray

    from index.ray_shards import RayShardedIndex, fill_on_ray

    os.environ["RAY_USAGE_STATS_ENABLED"] = "0"
    ray.init(num_cpus=os.cpu_count(), include_dashboard=False, _temp_dir=tempfile.mkdtemp(), log_to_driver=False)
    parts, out["fill_shards_on_ray_seconds"] = timed(fill_on_ray, template, vectors, ids, shards)
    for part in parts:
        set_search_params(part, sharded.info.search)
    filled_on_ray = ShardedIndex(parts, sharded.info, sharded.ids)
    same_fill = filled_on_ray.search(queries, 10)[1] == sharded.search(queries, 10)[1]
    out["ray_filled_same_top10"] = float(same_fill.mean())  # one thread per task: ties at list borders may differ
    del parts, filled_on_ray
    actors, out["ray_actors_start_seconds"] = timed(RayShardedIndex.from_local, sharded)
    same = actors.search(queries, 10)[1] == sharded.search(queries, 10)[1]
    out["ray_actors_same_top10"] = float(same.mean())
    qps = one_query_at_a_time(actors.search, queries)
    out["batch_of_100_queries_per_second"]["ray_actors"] = batches(actors.search, queries)
    ray.shutdown()
    return qps


if __name__ == "__main__":
    main()
