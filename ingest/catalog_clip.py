"""Which CLIP a catalog uses: the first ingest fixes it, later ingests must match it (DESIGN.md, Versions).

Weights that exist nowhere else (a fresh tiny CLIP, a local checkpoint that may move, a tuned
version) are kept as safetensors under `clip/` in the data directory, so the catalog is self-contained.
"""
from __future__ import annotations

from pathlib import Path

from models.clip import DEFAULT_SPEC, ClipError, ClipModel, ClipSpec, load_clip, parse_clip_spec

from .store import Store


class ClipMismatch(ClipError):
    """A --clip that differs from the one the catalog's embeddings were made with."""


def open_catalog_clip(store: Store, requested: str | None = None, *, device: str | None = None) -> tuple[ClipModel, int]:
    """Load the catalog's current CLIP (recording one on first use) and return it with its version."""
    current = store.clip_version()
    wanted = parse_clip_spec(requested) if requested else None
    if current is not None:
        base = parse_clip_spec(current.spec)
        has_embeddings = store.db.execute("SELECT 1 FROM embeddings LIMIT 1").fetchone() is not None
        if wanted is None or wanted == base:
            return load_catalog_version(store, current.version, device=device), current.version
        if has_embeddings:
            raise ClipMismatch(
                f"this catalog's embeddings were made with CLIP {current.spec} (version {current.version}); "
                f"ingest without --clip to use it, or use another --data-dir for {wanted}")
    spec = wanted or parse_clip_spec(DEFAULT_SPEC)
    clip = load_clip(spec, device=device)
    with store.transaction():
        version = _next_version(store)
        weights = None
        if spec.kind in ("tiny", "checkpoint"):
            weights = f"clip/v{version}.safetensors"
            clip.save(store.path(weights))
        store.add_clip_version(version, str(spec), weights, None,
                               {"embed_dim": clip.embed_dim, "image_size": clip.image_size, "tuned": False})
        store.set_current_clip(version)
    return clip, version


def load_catalog_version(store: Store, version: int, *, device: str | None = None) -> ClipModel:
    record = store.clip_version(version)
    if record is None:
        raise ClipError(f"the catalog has no CLIP version {version}")
    weights: Path | None = record.weights
    if weights is not None and not weights.is_file():
        raise ClipError(f"the catalog's CLIP weights are missing: {weights}")
    spec: ClipSpec = parse_clip_spec(record.spec)
    return load_clip(spec, weights=weights, device=device)


def _next_version(store: Store) -> int:
    row = store.db.execute("SELECT COALESCE(MAX(version), 0) + 1 FROM clip_versions").fetchone()
    return int(row[0])
