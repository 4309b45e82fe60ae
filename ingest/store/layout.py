"""The data directory's layout: every path and file name under it, in one place.

Nothing else in vidrec joins a name onto the data directory; it asks a `DataDir` instead. Paths are
plain `Path`s (no folder is created until a writer asks for one with `ensure`).
"""

from __future__ import annotations

import glob
import os
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

DATABASE = "catalog.db"


@dataclass(frozen=True)
class IndexFiles:
    """One vector index on disk: the FAISS file (or, for a sharded index, one file per shard), its JSON
    description and its int64 ids."""

    data: Path
    description: Path
    ids: Path

    def shard(self, k: int, n: int) -> Path:
        """Shard k (from 0) of a sharded index in n shards: `<name>.shard-<k>-of-<n>.faiss`."""
        return self.data.with_name(f"{self.data.stem}.shard-{k}-of-{n}.faiss")

    def shard_files(self) -> list[Path]:
        """The shard files of this name on disk (of any shard count)."""
        return sorted(self.data.parent.glob(f"{glob.escape(self.data.stem)}.shard-*-of-*.faiss"))

    def all(self) -> list[Path]:
        """Every file the index may have on disk, to copy or delete it whole."""
        return [self.data, self.description, self.ids, *self.shard_files()]


@dataclass(frozen=True)
class ModelFiles:
    """One trained model's folder."""

    folder: Path

    @property
    def weights(self) -> Path:
        return self.folder / "weights.safetensors"

    @property
    def graph(self) -> Path:
        """The click graph's embeddings (ingest/learning/graph.py), where the model has them."""
        return self.folder / "graph.safetensors"

    @property
    def config(self) -> Path:
        return self.folder / "config.json"

    @property
    def metrics(self) -> Path:
        return self.folder / "metrics.json"

    @property
    def curves(self) -> Path:
        return self.folder / "curves.json"

    @property
    def diagnostics(self) -> Path:
        return self.folder / "diagnostics.json"


class DataDir:
    """`catalog.db`, `clip/`, `models/`, `indexes/`, `uploads/` and (made by `vidrec demo`) `demo-world/`."""

    def __init__(self, root: Path | str):
        self.root = Path(root).expanduser().resolve()

    def __repr__(self) -> str:
        return f"DataDir({str(self.root)!r})"

    @property
    def database(self) -> Path:
        return self.root / DATABASE

    @property
    def writer_lock(self) -> Path:
        """The file jobs lock while they write (lock.py); it holds nothing."""
        return self.root / "writer.lock"

    # ---- CLIP weights: recorded in the store relative to the root, so a data dir can move --------------
    def clip_weights_name(self, version: int) -> str:
        return f"clip/v{version}.safetensors"

    def resolve(self, relative: str) -> Path:
        return self.root / relative

    # ---- models ----------------------------------------------------------------------------------------
    @property
    def models(self) -> Path:
        return self.root / "models"

    def model_name(self, model_id: str) -> str:
        """The model's folder relative to the root, as the store records it."""
        return f"models/{model_id}"

    def model_files(self, relative: str) -> ModelFiles:
        return ModelFiles(self.resolve(relative))

    @property
    def ablations(self) -> Path:
        """The latest `vidrec eval --ablations` table, for the UI's Model page."""
        return self.models / "ablations.json"

    # ---- indexes ---------------------------------------------------------------------------------------
    @property
    def indexes(self) -> Path:
        return self.root / "indexes"

    def model_index_name(self, model_id: str) -> str:
        """The name of the index of a model's retrieval vectors."""
        return f"model-{model_id}"[:60]

    def index_files(self, name: str) -> IndexFiles:
        return IndexFiles(
            self.indexes / f"{name}.faiss", self.indexes / f"{name}.json", self.indexes / f"{name}.ids.npy"
        )

    # ---- what the Ray engine stages ---------------------------------------------------------------------
    @property
    def staging(self) -> Path:
        """The default staging location of `ingest --engine ray`: shards waiting to be merged."""
        return self.root / "staging"

    # ---- what people and the demo bring ---------------------------------------------------------------
    @property
    def uploads(self) -> Path:
        return self.root / "uploads"

    @property
    def demo_world(self) -> Path:
        """Where `vidrec demo` generates its world (and evaluation finds the world's truth)."""
        return self.root / "demo-world"


def ensure(path: Path) -> Path:
    """`path` with its parent folder created: for a writer about to write the file."""
    path.parent.mkdir(parents=True, exist_ok=True)
    return path


@contextmanager
def replacing(path: Path) -> Iterator[Path]:
    """A temporary name beside `path` to write to; renamed over `path` when the block ends (removed if it
    fails). The name is unique, so two writers never write into one temporary file."""
    tmp = ensure(path).with_name(f".{path.name}.{os.getpid()}-{uuid.uuid4().hex[:8]}.tmp")
    try:
        yield tmp
        os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)


def write_text_atomically(path: Path, text: str) -> Path:
    """Readers see the old file or the new one, never half of it."""
    with replacing(path) as tmp:
        tmp.write_text(text, encoding="utf-8")
    return path
