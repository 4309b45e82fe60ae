"""The last step of ingest, the same for every engine: the one writer takes the prepared results in input
order, decides what each is (new, a duplicate, a metadata update of a known video, refused) and writes new
videos to the store in bulk, one transaction a batch.

A result comes with what its embeddings are made from: the preprocessed frames (the local engine embeds
them here, in batches gathered across videos) or the embeddings themselves (the Ray engine's workers made
them). Taking results in input order is what makes the engines agree: the first of two copies of the same
bytes is the video, the second a duplicate, whichever finished first.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field

import numpy as np
import torch

from models.clip import ClipModel

from .embedding import embed, text_embeddings
from .prepare import AlreadyHeld, Prepared, PreparedVideo, Refused
from .sources import Entry
from .store import Store

NON_FINITE = "CLIP gave non-finite embeddings (NaN or infinity) for it: nothing stored"
Vectors = dict[str, np.ndarray]


@dataclass
class IngestReport:
    ingested: int = 0
    duplicates: int = 0
    updated: int = 0
    failed: list[dict] = field(default_factory=list)  # {path, reason}
    seconds: float = 0.0
    shards: dict | None = None  # the Ray engine's staging: {location, total, reused, made, merged}

    def to_json(self) -> dict:
        out = asdict(self)
        if self.shards is None:
            del out["shards"]
        return out


def all_finite(vectors: Vectors) -> bool:
    return all(bool(np.isfinite(v).all()) for v in vectors.values())


def write(
    store: Store,
    version: int,
    videos: list[PreparedVideo],
    embeddings: list[Vectors],
    updates: list[tuple[str, dict, Vectors]],
    report: IngestReport,
) -> None:
    """The store step: new videos (whole) and text updates of known ones, in one transaction. What the store
    already holds is checked inside it: the same bytes are a duplicate, another file under a taken id a failure."""
    with store.transaction():
        for video, vectors in zip(videos, embeddings):
            row = video.row()
            if store.videos.owner_of(video.content_hash) is not None:
                report.duplicates += 1
                continue
            if store.videos.get(row["video_id"]) is not None:
                report.failed.append(
                    {"path": row["path"], "reason": f"video_id {row['video_id']!r} already names another file"}
                )
                continue
            if not all_finite(vectors):
                report.failed.append({"path": row["path"], "reason": NON_FINITE})
                continue
            store.videos.add(row, video.frames, video.thumbnail, vectors, version)
            report.ingested += 1
        for video_id, changes, text in updates:
            if all_finite(text):
                store.videos.update_text(video_id, changes, text, version)
            else:
                report.failed.append({"path": video_id, "reason": NON_FINITE})


class CatalogWriter:
    """Takes prepared results in input order and writes them; `flush()` writes what is pending."""

    def __init__(self, store: Store, clip: ClipModel, version: int, report: IngestReport, batch_frames: int):
        self.store, self.clip, self.version, self.report = store, clip, version, report
        self.batch_frames = batch_frames  # pending frames that make a batch (local engine: a CLIP batch)
        self.owners = store.videos.owners_by_hash()  # content hash -> video_id, this run's videos added as taken
        self.pending: list[tuple[PreparedVideo, torch.Tensor | Vectors]] = []
        self.pending_updates: list[tuple[str, dict]] = []

    def take(self, result: Prepared, made_from: torch.Tensor | Vectors | None) -> None:
        """One input's result, with its preprocessed frames or its embeddings when it is a prepared video."""
        if isinstance(result, Refused):
            self.report.failed.append(result.to_json())
        elif isinstance(result, AlreadyHeld) or result.content_hash in self.owners:
            self.known(result.entry, result.content_hash)  # the same bytes twice in one run: a duplicate too
        else:
            assert made_from is not None
            self.owners[result.content_hash] = result.video_id
            self.pending.append((result, made_from))
            if sum(len(p.frames) for p, _ in self.pending) >= self.batch_frames:
                self.flush()

    def known(self, entry: Entry, content_hash: str) -> None:
        """Same bytes as a catalog video: a duplicate; new manifest metadata for the same id updates it."""
        owner = self.owners.get(content_hash)
        if owner is None:  # staged as held, but removed from the catalog since: its frames were not kept
            self.report.failed.append(
                {"path": str(entry.path), "reason": "removed from the catalog while staged: ingest it again"}
            )
            return
        self.report.duplicates += 1
        if entry.video_id not in (None, owner):
            return  # the same bytes under another id are one video
        video = self.store.videos.get(owner)
        changes = {} if video is None else {k: v for k, v in entry.metadata().items() if getattr(video, k) != v}
        if changes:
            self.pending_updates.append((owner, changes))
            self.report.updated += 1

    def flush(self) -> None:
        """Embed what is pending (where the embeddings are not made yet) and write it."""
        if not self.pending and not self.pending_updates:
            return
        batch, self.pending = self.pending, []
        updates, self.pending_updates = self.pending_updates, []
        to_embed = [(video, frames) for video, frames in batch if isinstance(frames, torch.Tensor)]
        made = iter(embed(self.clip, [frames for _, frames in to_embed], [video.row() for video, _ in to_embed]))
        vectors = [m if isinstance(m, dict) else next(made) for _, m in batch]
        merged = []
        for video_id, changes in updates:
            video = self.store.videos.get(video_id)
            merged.append({**(video.text_fields() if video else {}), **changes})
        text = text_embeddings(self.clip, merged)
        write(
            self.store,
            self.version,
            [video for video, _ in batch],
            vectors,
            [(video_id, changes, t) for (video_id, changes), t in zip(updates, text)],
            self.report,
        )
