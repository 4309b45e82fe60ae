"""Checksums of the files a catalog keeps beside its database (CLIP weights, model weights, index files).

A flipped byte inside a weights or index file still loads and then serves nonsense (similarities of
1e37, scores of NaN): each such file's SHA-256 is recorded when it is written (in the store, or in the
index's description) and compared when it is loaded.
"""

from __future__ import annotations

import hashlib
from pathlib import Path

CHUNK = 1 << 20


def sha256_file(path: Path | str) -> str:
    """The SHA-256 of a file's bytes, read in chunks (weights files can be gigabytes)."""
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        while chunk := f.read(CHUNK):
            digest.update(chunk)
    return digest.hexdigest()


def sha256_bytes(data: bytes | memoryview) -> str:
    return hashlib.sha256(data).hexdigest()


def checksum_differs(path: Path | str, expected: str | None) -> bool:
    """Whether the file's bytes differ from those recorded (False when nothing was recorded: files written
    by a vidrec that kept no checksum)."""
    return bool(expected) and sha256_file(path) != expected
