"""How many threads one query may use on the serving path, chosen here for the whole process.

FAISS searches a single query with an OpenMP team as wide as the machine, and torch runs a few-hundred-row
forward pass on every core; with concurrent requests, or one other busy process on the cores, those teams
fight and latency collapses (HNSW at 100k on 2 busy cores: 124 queries/s with all threads, 10,669 with
one: bench/RESULTS.md). Serving runs each query on one thread and gets its parallelism from concurrent
requests; batch work (ingest, training, index builds) keeps the libraries' defaults.
"""

from __future__ import annotations

import faiss
import torch


def serve_one_thread_per_query() -> None:
    """One FAISS (OpenMP) thread and one torch intra-op thread per query, process-wide."""
    faiss.omp_set_num_threads(1)
    torch.set_num_threads(1)
