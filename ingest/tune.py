"""`tune-clip`: tune the catalog's CLIP on its own kept frames and texts, keep it only if it retrieves
better on held-out videos, then re-embed the catalog with it as a new CLIP version (docs/formats.md,
Versions).

Re-embedding writes the new version's rows beside the old ones in batches and switches in one
transaction at the end; a run killed half-way leaves the new weights recorded as pending, and the
next `tune-clip` finishes that re-embedding first. The old version's rows stay: `vidrec clip use`
switches back (embedding only the videos it lacks, with the same re-embedding), `clip prune` drops them.
"""

from __future__ import annotations

import contextlib
import logging
import random
import re
import sys
import time
from dataclasses import dataclass

import numpy as np
import torch
from tqdm import tqdm

from models.clip import ClipModel
from models.clip_tuning import PairSet, TuneConfig, precision_at_k, recall_at_k, tune_clip
from models.fusion import fuse_catalog, fuse_text_query

from .catalog_clip import load_catalog_version, save_weights
from .embedding import embed, pixels
from .store import ClipVersion, Store, Video

TUNE_EPOCHS = 12  # passes over the catalog's pairs unless asked otherwise (`tune-clip --epochs`)
WRITE_BATCH = 64  # videos re-embedded per transaction
CJK = re.compile("[\u3040-\u30ff\u3400-\u4dbf\u4e00-\u9fff\uac00-\ud7af]")
logger = logging.getLogger(__name__)


class TuneError(Exception):
    """Tuning that cannot be done; one line for the user."""


@dataclass
class TuneOptions:
    epochs: int = TUNE_EPOCHS
    force: bool = False
    seed: int = 0
    holdout: float = 0.2
    batch_size: int = 64
    lr: float | None = None  # None: 1e-3 for a CLIP trained from scratch, 1e-5 for pretrained towers
    progress: bool = True
    device: str | None = None


def tune_catalog_clip(store: Store, options: TuneOptions | None = None) -> dict:
    """`vidrec tune-clip`: tune, evaluate, and (if better) re-embed the catalog; the command's JSON. One job under
    the writer lock from start to end: an ingest meanwhile would embed with the CLIP being replaced."""
    with store.writing("tune-clip"):
        return _tune(store, options or TuneOptions())


def _tune(store: Store, options: TuneOptions) -> dict:
    started = time.perf_counter()
    current = store.clips.current()
    if current is None or store.videos.count() == 0:
        raise TuneError("the catalog is empty: ingest videos first")
    pending = store.clips.pending()
    if pending is not None:
        logger.info("finishing the re-embedding with CLIP version %d left by an interrupted run", pending.version)
        clip = load_catalog_version(store, pending.version, device=options.device)
        frames = KeptFrames(store, clip)
        reembed(store, pending.version, clip=clip, frames=frames, progress=options.progress)
        return {
            "clip": _clip_json(store),
            "before": pending.info.get("before"),
            "after": pending.info.get("after"),
            "replaced": True,
            "resumed": True,
            "skipped_frames": frames.skipped,
            "seconds": round(time.perf_counter() - started, 3),
        }

    rows = store.videos.all()
    titled = [r for r in rows if r.title.strip()]
    if len(titled) < 2:
        raise TuneError(f"tuning needs at least two videos with a title; the catalog has {len(titled)}")
    rng = random.Random(options.seed)
    holdout = set(rng.sample([r.id for r in titled], max(1, round(len(titled) * options.holdout))))
    clip = load_catalog_version(store, current.version, device=options.device)
    before = evaluate(store_embeddings(store, current.version), rows, holdout, clip)
    training = [r for r in rows if r.id not in holdout]
    frames = KeptFrames(store, clip)
    training = [r for r in training if frames.pixels(r) is not None]  # a video no frame of which decodes sits out
    texts = [training_texts(r) for r in training]
    pairs = PairSet(
        frames=[frames.pixels(r).half() for r in training],  # type: ignore[union-attr]
        texts=texts,
        weights=script_balanced_weights(texts),
    )
    from_scratch = current.parent is None and current.spec == "tiny"
    config = TuneConfig(
        epochs=options.epochs,
        batch_size=options.batch_size,
        seed=options.seed,
        lr=options.lr or (1e-3 if from_scratch else 1e-5),
    )
    history = tune_clip(
        clip.model,
        clip.tokenizer,
        pairs,
        config,
        encode_text=clip.encode_tokens,
        device=clip.device,
        progress=options.progress,
    )

    tuned = embed_videos(clip, rows, frames, progress=options.progress)
    after = evaluate(tuned, rows, holdout, clip)
    replaced = options.force or _score(after) >= _score(before)
    if replaced:
        version = _record_version(store, clip, current, before, after, history, options)
        reembed(store, version, clip=clip, precomputed=tuned, progress=options.progress, frames=frames)
    return {
        "clip": _clip_json(store),
        "before": before,
        "after": after,
        "replaced": replaced,
        "history": history,
        "skipped_frames": frames.skipped,
        "seconds": round(time.perf_counter() - started, 3),
    }


class KeptFrames:
    """The kept frames of the catalog's videos as CLIP input. A frame that will not decode (a damaged JPEG) is
    skipped, named in `skipped` and logged, and the video goes on with the others; decoding stays one pass
    in the usual case (frames are tried one by one only for a video whose batch failed)."""

    def __init__(self, store: Store, clip: ClipModel):
        self.store, self.clip = store, clip
        self.skipped: list[dict] = []  # {video_id, frame, reason}
        self._named: set[tuple[str, int]] = set()

    def pixels(self, video: Video) -> torch.Tensor | None:
        """[K, 3, S, S] of the frames that decode; None when none does."""
        jpegs = [jpeg for _, jpeg in self.store.videos.kept_frames(video.id)]
        with contextlib.suppress(OSError, ValueError, SyntaxError, RuntimeError):
            return pixels(self.clip, jpegs)
        good = []
        for i, jpeg in enumerate(jpegs):
            try:
                good.append(pixels(self.clip, [jpeg]))
            except (OSError, ValueError, SyntaxError, RuntimeError) as exc:
                self._skip(video, i, exc)
        return torch.cat(good) if good else None

    def _skip(self, video: Video, frame: int, exc: Exception) -> None:
        if (video.video_id, frame) in self._named:
            return
        self._named.add((video.video_id, frame))
        reason = " ".join(str(exc).split())[:200] or type(exc).__name__
        logger.warning("skipping kept frame %d of %s, which does not decode: %s", frame, video.video_id, reason)
        self.skipped.append({"video_id": video.video_id, "frame": frame, "reason": reason})


def training_texts(video: Video) -> list[str]:
    """The catalog's own words for a video: its title, description, each description sentence, its tags
    together and one by one, its category label. Short pieces teach the text tower what short queries mean."""
    tags = [t for t in video.tag_list if t.strip()]
    sentences = [s for s in re.split(r"(?<=[.!?。！？])\s*", video.description or "") if s.strip()]
    texts = [video.title, video.description, ", ".join(tags), *tags, video.category or ""]
    texts += sentences if len(sentences) > 1 else []
    return [t.strip() for t in texts if t and t.strip()]


def script_balanced_weights(texts: list[list[str]]) -> list[float]:
    """Draw videos described in a rarer script (CJK vs the rest) as often, in total, as the others, so the
    text tower learns the catalog's minority language too."""
    cjk = [any(CJK.search(t) for t in video) for video in texts]
    share = sum(cjk) / max(1, len(cjk))
    if share in (0, 1):
        return [1.0] * len(texts)
    return [0.5 / share if is_cjk else 0.5 / (1 - share) for is_cjk in cjk]


def evaluate(embeddings: dict[int, dict], rows: list[Video], holdout: set[int], clip: ClipModel | None) -> dict:
    """On held-out videos: recall@1/@5 of each video from its own title among all videos (frames), and
    precision@10 of each category's name as a query over the held-out labelled videos (frames + text)."""
    ids = [r.id for r in rows if r.id in embeddings]
    position = {vid: i for i, vid in enumerate(ids)}
    video = np.stack([embeddings[v]["video_emb"] for v in ids])
    queries = [r.id for r in rows if r.id in holdout and r.title.strip() and r.id in position]
    metrics = recall_at_k(
        np.stack([embeddings[v]["title_emb"] for v in queries]), video, np.array([position[v] for v in queries])
    )
    labelled = [r for r in rows if r.id in holdout and r.category and r.id in position]
    categories = sorted({r.category for r in labelled if r.category})
    metrics["category_p10"] = 0.0
    if clip is not None and categories:
        catalog = fuse_catalog(
            np.stack([embeddings[r.id]["video_emb"] for r in labelled]),
            np.stack([embeddings[r.id]["text_emb"] for r in labelled]),
        )
        scores = fuse_text_query(clip.encode_texts(categories)) @ catalog.T
        relevant = np.array([[r.category == c for r in labelled] for c in categories])
        metrics["category_p10"] = precision_at_k(scores, relevant, 10)
    return metrics


def _score(metrics: dict) -> float:
    return metrics["recall_at_5"] + metrics["category_p10"]


def store_embeddings(store: Store, version: int) -> dict[int, dict]:
    out: dict[int, dict] = {}
    for field in ("video_emb", "title_emb", "text_emb"):
        ids, _, matrix = store.embeddings.matrix(field, version)
        for vid, vector in zip(ids.tolist(), matrix):
            out.setdefault(vid, {})[field] = vector
    return out


def embed_videos(
    clip: ClipModel,
    rows: list[Video],
    frames: KeptFrames,
    *,
    progress: bool = False,
    batch: int = WRITE_BATCH,
) -> dict[int, dict]:
    """All embeddings of these videos, from their kept frames and their text (none for a video no kept frame of
    which decodes)."""
    out: dict[int, dict] = {}
    for start in tqdm(range(0, len(rows), batch), desc="embed", unit="batch", file=sys.stderr, disable=not progress):
        chunk, images = [], []
        for row in rows[start : start + batch]:
            image = frames.pixels(row)
            if image is not None:
                chunk.append(row)
                images.append(image)
        vectors = embed(clip, images, [row.text_fields() for row in chunk])
        out.update({row.id: v for row, v in zip(chunk, vectors)})
    return out


def _record_version(
    store: Store, clip: ClipModel, current: ClipVersion, before, after, history, options: TuneOptions
) -> int:
    with store.transaction():
        version = store.clips.next_version()
        weights, digest = save_weights(store, clip, version)
        store.clips.add(
            version,
            current.spec,
            weights,
            current.version,
            {
                "sha256": digest,
                "tuned": True,
                "pending": True,
                "before": before,
                "after": after,
                "history": history,
                "epochs": options.epochs,
                "seed": options.seed,
                "embed_dim": clip.embed_dim,
                "image_size": clip.image_size,
            },
        )
    return version


def reembed(
    store: Store,
    version: int,
    *,
    clip: ClipModel | None = None,
    precomputed: dict[int, dict] | None = None,
    progress: bool = True,
    device: str | None = None,
    frames: KeptFrames | None = None,
    rerun: str = "tune-clip",
) -> int:
    """Write `version` embeddings for every video lacking them, in batches, then switch to it in one
    transaction. The other versions' rows stay (`clip use` goes back to them, `clip prune` drops them). Safe to
    interrupt and run again (`rerun` is the command that finishes it)."""
    clip = clip or load_catalog_version(store, version, device=device)
    frames = frames or KeptFrames(store, clip)
    precomputed = precomputed or {}
    unreadable: list[str] = []  # videos none of whose kept frames decodes: they cannot move to the new version
    written = 0
    while True:
        missing = [r for r in store.videos.lacking_embeddings(version) if r.video_id not in unreadable]
        if not missing:
            break
        bar = tqdm(total=len(missing), desc=f"re-embed v{version}", unit="video", file=sys.stderr, disable=not progress)
        for start in range(0, len(missing), WRITE_BATCH):
            chunk = missing[start : start + WRITE_BATCH]
            fresh = embed_videos(clip, [r for r in chunk if r.id not in precomputed], frames)
            with store.transaction():
                for row in chunk:
                    vectors = precomputed.get(row.id) or fresh.get(row.id)
                    if vectors is None:
                        unreadable.append(row.video_id)
                    else:
                        store.embeddings.put(row.id, version, vectors)
            written += len(chunk)
            bar.update(len(chunk))
        bar.close()
    if unreadable:
        raise TuneError(
            f"no kept frame of {len(unreadable)} video(s) decodes ({', '.join(unreadable[:5])}): remove them and "
            f"ingest their files again, then run {rerun} again to finish"
        )
    with store.transaction():
        lacking = store.embeddings.count_lacking(version)
        if lacking:  # videos ingested meanwhile: the next run picks them up
            raise TuneError(f"{lacking} videos arrived during re-embedding; run {rerun} again to finish")
        record = store.clips.get(version)
        assert record is not None
        info = {k: v for k, v in record.info.items() if k != "pruned"}  # a version re-embedded is whole again
        store.clips.set_info(version, {**info, "pending": False})
        store.clips.make_current(version)
    return written


def use_clip_version(store: Store, version: int, *, progress: bool = True, device: str | None = None) -> dict:
    """`vidrec clip use`: switch the catalog to one of its CLIP versions, back or forward. Videos that lack that
    version's embeddings (ingested since) are embedded with its CLIP from their kept frames first; then one
    transaction switches, so readers see one version or the other. One job under the writer lock."""
    started = time.perf_counter()
    with store.writing("clip use"):
        record = store.clips.get(version)
        if record is None:
            raise TuneError(f"the catalog has no CLIP version {version} (`vidrec clip list` lists them)")
        if record.pruned and record.weights is not None:
            raise TuneError(f"CLIP version {version} was pruned (its weights are deleted): it cannot be used again")
        previous = store.clip_version
        embedded = 0
        if version != previous:
            embedded = reembed(store, version, progress=progress, device=device, rerun=f"clip use {version}")
    return {
        "clip": _clip_json(store),
        "previous": previous,
        "changed": version != previous,
        "embedded": embedded,
        "seconds": round(time.perf_counter() - started, 3),
    }


def _clip_json(store: Store) -> dict:
    clip = store.clips.current()
    assert clip is not None
    return {"version": clip.version, "spec": clip.spec, "tuned": clip.parent is not None}
