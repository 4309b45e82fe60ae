"""Staged ingest results: one Parquet file (a shard) per batch of input files, written by the cluster's
workers and merged into the catalog by the one writer (docs/formats.md, "Staging shards").

The staging location is a local folder (default `DATA_DIR/staging`) or any URI pyarrow's filesystems
read (`s3://...`, `gs://...`, `hdfs://...`). A shard's name is a digest of what it was made from (the
catalog's CLIP version and weights, frames per video, and each input's path, size, modification time and
manifest fields), so a rerun over the same inputs finds the shards a killed run left and makes only the
missing ones; a changed file or another CLIP gives another name. A shard is written under a temporary
name and renamed when whole, so a reader never sees half a shard.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import uuid
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.fs as pafs
import pyarrow.parquet as pq

from .prepare import AlreadyHeld, Prepared, PreparedVideo, Refused
from .sources import Entry

SUFFIX = ".parquet"
FORMAT = "vidrec-shard-1"
VECTORS = ("frames_emb", "video_emb", "title_emb", "desc_emb", "tags_emb", "text_emb")
SCHEMA = pa.schema(
    [
        ("position", pa.int32()),  # the input's place in its shard
        ("outcome", pa.string()),  # video | held (bytes the catalog already had) | refused
        ("entry", pa.string()),  # JSON: the input's path and manifest fields
        ("video_id", pa.string()),
        ("content_hash", pa.string()),
        ("reason", pa.string()),  # why it was refused
        ("size_bytes", pa.int64()),
        ("probe", pa.string()),  # JSON: duration, fps, width, height, codec, rotation
        ("frame_seconds", pa.list_(pa.float64())),
        ("frames", pa.list_(pa.binary())),  # kept frames, JPEG
        ("thumbnail", pa.binary()),
        *[(name, pa.list_(pa.float32())) for name in VECTORS],  # frames_emb flattened: [frames x dim]
    ]
)


class StagingError(Exception):
    """A staging location that cannot be used, or a shard that cannot be read."""


@dataclass(frozen=True)
class Staging:
    """A staging location: a pyarrow filesystem and the folder in it."""

    location: str  # as the user gave it (shown in reports)
    fs: pafs.FileSystem
    root: str

    @classmethod
    def open(cls, location: str | Path) -> Staging:
        text = str(location)
        try:
            if "://" in text:
                fs, root = pafs.FileSystem.from_uri(text)
            else:
                fs, root = pafs.LocalFileSystem(), os.path.abspath(text)
        except Exception as exc:
            raise StagingError(f"cannot use the staging location {text}: {exc}") from exc
        return cls(text, fs, root.rstrip("/"))

    def path(self, name: str) -> str:
        return f"{self.root}/{name}{SUFFIX}"

    def shards(self) -> dict[str, int]:
        """{shard name: bytes} of the whole shards here."""
        try:
            infos = self.fs.get_file_info(pafs.FileSelector(self.root, allow_not_found=True))
        except Exception as exc:
            raise StagingError(f"cannot list the staging location {self.location}: {exc}") from exc
        return {
            i.base_name.removesuffix(SUFFIX): i.size or 0
            for i in infos
            if i.type == pafs.FileType.File and i.base_name.endswith(SUFFIX) and not i.base_name.startswith(".")
        }

    def summary(self) -> dict:
        """What `vidrec status` says of it: how many shards wait to be merged, and their size."""
        try:
            shards = self.shards()
        except StagingError as exc:
            return {"location": self.location, "error": str(exc)}
        return {"location": self.location, "shards": len(shards), "bytes": sum(shards.values())}

    def readable(self, name: str) -> bool:
        """Whether a staged shard is whole and ours (a damaged one is removed, to be made again)."""
        try:
            with self.fs.open_input_file(self.path(name)) as file:
                whole = (pq.read_metadata(file).metadata or {}).get(b"format") == FORMAT.encode()
        except Exception:
            whole = False
        if not whole:
            self.remove(name)
        return whole

    def write(self, name: str, table: pa.Table) -> None:
        self.fs.create_dir(self.root, recursive=True)
        temporary = f"{self.root}/.{name}.{uuid.uuid4().hex}.tmp"
        try:
            with self.fs.open_output_stream(temporary) as out:
                pq.write_table(table, out, compression="zstd")
            self.fs.move(temporary, self.path(name))
        except BaseException:
            with contextlib.suppress(Exception):
                self.fs.delete_file(temporary)
            raise

    def read(self, name: str) -> pa.Table:
        try:
            with self.fs.open_input_file(self.path(name)) as file:
                return pq.read_table(file)
        except Exception as exc:
            raise StagingError(f"cannot read the staged shard {self.path(name)}: {exc}") from exc

    def remove(self, name: str) -> None:
        with contextlib.suppress(FileNotFoundError):
            self.fs.delete_file(self.path(name))


def shard_name(entries: list[Entry], clip_key: str, frames: int) -> str:
    """The deterministic name of the shard made from these inputs with this CLIP."""
    inputs = []
    for entry in entries:
        try:
            stat = os.stat(entry.path)
            seen = [stat.st_size, stat.st_mtime_ns]
        except OSError:
            seen = None
        inputs.append([entry_json(entry), seen])
    text = json.dumps({"clip": clip_key, "frames": frames, "inputs": inputs}, sort_keys=True)
    return "shard-" + hashlib.sha256(text.encode()).hexdigest()[:24]


def entry_json(entry: Entry) -> str:
    return json.dumps({**asdict(entry), "path": str(entry.path)}, sort_keys=True, ensure_ascii=False)


def entry_from_json(text: str) -> Entry:
    fields = json.loads(text)
    return Entry(**{**fields, "path": Path(fields["path"])})


def shard_table(results: list[Prepared], vectors: list[dict[str, np.ndarray] | None], clip_version: int) -> pa.Table:
    """A shard: one row per input, in input order; `vectors` holds each prepared video's embeddings."""
    columns: dict[str, list] = {name: [] for name in SCHEMA.names}
    for position, (result, own) in enumerate(zip(results, vectors)):
        video = result if isinstance(result, PreparedVideo) else None
        columns["position"].append(position)
        columns["outcome"].append("video" if video else "held" if isinstance(result, AlreadyHeld) else "refused")
        columns["entry"].append(entry_json(result.entry))
        columns["video_id"].append(video.video_id if video else None)
        columns["content_hash"].append(None if isinstance(result, Refused) else result.content_hash)
        columns["reason"].append(result.reason if isinstance(result, Refused) else None)
        columns["size_bytes"].append(video.size_bytes if video else None)
        columns["probe"].append(json.dumps(video.probe) if video else None)
        columns["frame_seconds"].append([t for t, _ in video.frames] if video else None)
        columns["frames"].append([j for _, j in video.frames] if video else None)
        columns["thumbnail"].append(video.thumbnail if video else None)
        for name in VECTORS:
            columns[name].append(None if own is None else np.asarray(own[name], np.float32).reshape(-1))
    metadata = {"format": FORMAT, "clip_version": str(clip_version)}
    return pa.Table.from_pydict(columns, schema=SCHEMA.with_metadata(metadata))


def shard_results(table: pa.Table) -> list[tuple[Prepared, dict[str, np.ndarray] | None]]:
    """A shard's rows back as the prepare step's results, with each prepared video's embeddings."""
    out: list[tuple[Prepared, dict[str, np.ndarray] | None]] = []
    for row in sorted(table.to_pylist(), key=lambda r: r["position"]):
        entry = entry_from_json(row["entry"])
        if row["outcome"] == "refused":
            out.append((Refused(entry, row["reason"]), None))
        elif row["outcome"] == "held":
            out.append((AlreadyHeld(entry, row["content_hash"]), None))
        else:
            frames = list(zip(row["frame_seconds"], row["frames"]))
            video = PreparedVideo(
                entry, row["content_hash"], row["size_bytes"], json.loads(row["probe"]), frames, row["thumbnail"]
            )
            own = None
            if row["video_emb"] is not None:  # a prepared shard has no embeddings yet
                own = {name: np.asarray(row[name], np.float32) for name in VECTORS}
                own["frames_emb"] = own["frames_emb"].reshape(len(frames), -1)
            out.append((video, own))
    return out


def staged_summary(store) -> dict:
    """The shards waiting at the location the last Ray ingest used (default: DATA_DIR/staging)."""
    return Staging.open(store.get_meta("staging") or store.paths.staging).summary()
