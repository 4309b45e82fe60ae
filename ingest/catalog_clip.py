"""Which CLIP a catalog uses: the first ingest fixes it, later ingests must match it (docs/formats.md,
Versions).

Weights that exist nowhere else (a fresh tiny CLIP, a local checkpoint that may move, a tuned
version) are kept as safetensors under `clip/` in the data directory, so the catalog is self-contained.
"""

from __future__ import annotations

from models.clip import DEFAULT_SPEC, ClipError, ClipModel, load_clip, parse_clip_spec

from .store import Store, ensure, sha256_file


class ClipMismatch(ClipError):
    """A --clip that differs from the one the catalog's embeddings were made with."""


def open_catalog_clip(
    store: Store, requested: str | None = None, *, device: str | None = None
) -> tuple[ClipModel, int]:
    """Load the catalog's current CLIP (recording one on first use) and return it with its version."""
    current = store.clips.current()
    wanted = parse_clip_spec(requested) if requested else None
    if current is not None:
        if wanted is None or wanted == parse_clip_spec(current.spec):
            return load_catalog_version(store, current.version, device=device), current.version
        if store.embeddings.exist():
            raise ClipMismatch(
                f"this catalog's embeddings were made with CLIP {current.spec} (version {current.version}); "
                f"ingest without --clip to use it, or use another --data-dir for {wanted}"
            )
    spec = wanted or parse_clip_spec(DEFAULT_SPEC)
    clip = load_clip(spec, device=device)
    with store.transaction():
        version = store.clips.next_version()
        weights, digest = save_weights(store, clip, version) if spec.kind in ("tiny", "checkpoint") else (None, None)
        store.clips.add(
            version,
            str(spec),
            weights,
            None,
            {"embed_dim": clip.embed_dim, "image_size": clip.image_size, "tuned": False, "sha256": digest},
        )
        store.clips.make_current(version)
    return clip, version


def save_weights(store: Store, clip: ClipModel, version: int) -> tuple[str, str]:
    """Keep a CLIP's weights in the data dir as version `version`; returns the name the store records and the
    file's SHA-256, which loading checks."""
    name = store.paths.clip_weights_name(version)
    path = ensure(store.paths.resolve(name))
    clip.save(path)
    return name, sha256_file(path)


def load_catalog_version(store: Store, version: int, *, device: str | None = None) -> ClipModel:
    record = store.clips.get(version)
    if record is None:
        raise ClipError(f"the catalog has no CLIP version {version}")
    if record.weights is not None:
        if not record.weights.is_file():
            raise ClipError(f"the catalog's CLIP weights are missing: {record.weights}")
        if record.info.get("sha256") and sha256_file(record.weights) != record.info["sha256"]:
            raise ClipError(
                f"the catalog's CLIP weights {record.weights} are damaged (their checksum differs from the one "
                f"recorded when they were written): restore them from a backup of the data dir"
            )
    return load_clip(parse_clip_spec(record.spec), weights=record.weights, device=device)
