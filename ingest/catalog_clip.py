"""Which CLIP a catalog uses: the first ingest fixes it, later ingests must match it (docs/formats.md,
Versions).

Weights that exist nowhere else (a fresh tiny CLIP, a local checkpoint that may move, a tuned
version) are kept as safetensors under `clip/` in the data directory, so the catalog is self-contained.
The versions a catalog has had are listed here (`vidrec clip list`) and the unused ones pruned
(`vidrec clip prune`); switching between them re-embeds (`ingest/tune.py`).
"""

from __future__ import annotations

from collections import Counter
from pathlib import Path

from models.clip import DEFAULT_SPEC, ClipError, ClipModel, load_clip, parse_clip_spec

from .store import Store, ensure, now_iso, sha256_file


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
    return load_checked(record.spec, record.weights, record.info.get("sha256"), device=device)


def load_checked(spec: str, weights: Path | None, sha256: str | None, *, device: str | None = None) -> ClipModel:
    """A CLIP version from its spec and the catalog's weights file, refused when the file is missing or its
    checksum differs from the one recorded when it was written (also what a Ray worker loads)."""
    if weights is not None:
        if not weights.is_file():
            raise ClipError(f"the catalog's CLIP weights are missing: {weights}")
        if sha256 and sha256_file(weights) != sha256:
            raise ClipError(
                f"the catalog's CLIP weights {weights} are damaged (their checksum differs from the one "
                f"recorded when they were written): restore them from a backup of the data dir"
            )
    return load_clip(parse_clip_spec(spec), weights=weights, device=device)


def clip_versions(store: Store) -> list[dict]:
    """`vidrec clip list`: every CLIP version the catalog has had, oldest first, with how many videos have its
    embeddings, how many models were trained on it, and tuning's before/after metrics where recorded."""
    with store.snapshot():
        current = store.clip_version
        videos = store.embeddings.videos_per_version()
        models = Counter(r.clip_version for r in store.models.all())
        return [
            {
                "version": v.version,
                "spec": v.spec,
                "tuned_from": v.parent,
                "created_at": v.created_at,
                "current": v.version == current,
                "videos": videos.get(v.version, 0),
                "models": models.get(v.version, 0),
                "pending": v.pending,
                "pruned": v.pruned,
                "before": v.info.get("before"),
                "after": v.info.get("after"),
            }
            for v in store.clips.all()
        ]


def prune_clip_versions(store: Store) -> dict:
    """`vidrec clip prune`: delete the embeddings and weights file of every version not in use. In use: the
    current one, a pending one (an interrupted tune-clip finishes it) and one a kept model was trained on (so
    `clip use` can bring that model back). A pruned version stays listed; one whose own weights went cannot be
    used again. The rows go in one transaction, the files after it."""
    with store.writing("clip prune"):
        current = store.clip_version
        trained_on = {r.clip_version for r in store.models.all()}
        pruned, kept, unused = [], [], []
        with store.transaction():
            for v in store.clips.all():
                if v.version == current or v.pending or v.version in trained_on:
                    kept.append(v.version)
                    continue
                unused.append(v)
                if store.embeddings.drop_version(v.version) or not v.pruned:
                    store.clips.set_info(v.version, {**v.info, "pruned": v.info.get("pruned") or now_iso()})
                    pruned.append(v)
        for v in unused:
            if v.weights == store.paths.resolve(store.paths.clip_weights_name(v.version)):  # only a file we wrote
                v.weights.unlink(missing_ok=True)
    return {"pruned": [v.version for v in pruned], "kept": kept, "current": current}
