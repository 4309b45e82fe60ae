"""How values are kept in the database: times as ISO 8601 UTC text, float32 arrays as BLOBs."""

from __future__ import annotations

import time

import numpy as np


def now_iso() -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())


def to_blob(array: np.ndarray) -> bytes:
    return np.ascontiguousarray(array, dtype=np.float32).tobytes()


def vector_from_blob(blob: bytes) -> np.ndarray:
    """A BLOB of one vector back to float32 [D]."""
    return np.frombuffer(blob, dtype=np.float32)


def from_blob(blob: bytes, dim: int) -> np.ndarray:
    """A BLOB back to float32 rows of `dim` ([1, dim] for a vector, [K, dim] for per-frame embeddings)."""
    return np.frombuffer(blob, dtype=np.float32).reshape(-1, dim)
