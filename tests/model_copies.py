"""Helpers for tests of which model serves: copies of a trained model's files under another id, and damage."""

from __future__ import annotations

import shutil
from pathlib import Path

from ingest.store import Store


def add_model_copy(data_dir: Path, model_id: str, clip_version: int | None = None, drop: tuple[str, ...] = ()) -> str:
    """The trained model's files again under another id, saved later (as if for `clip_version` when given: the
    tiny CLIP's versions have the same dimensions; its config without the keys in `drop`); returns the
    original's id."""
    store = Store(data_dir)
    good = store.models.all()[-1]
    shutil.copytree(data_dir / good.path, data_dir / "models" / model_id)
    version = good.clip_version if clip_version is None else clip_version
    config = {k: v for k, v in good.config.items() if k not in drop}
    store.models.add(
        model_id,
        version,
        good.arch,
        f"models/{model_id}",
        {**config, "model_id": model_id, "clip_version": version},
        good.metrics,
    )
    store.close()
    return good.model_id


def flip(path: Path) -> None:
    """64 bytes in the middle of the file zeroed: a damaged file of the same size."""
    data = bytearray(path.read_bytes())
    data[len(data) // 2 : len(data) // 2 + 64] = bytes(64)
    path.write_bytes(bytes(data))
