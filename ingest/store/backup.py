"""Back up a data directory while it is in use, and restore one (`vidrec backup`, `vidrec restore`).

A backup folder is laid out as a data directory (catalog.db, clip/, models/, indexes/, uploads/, demo-world/)
plus `backup.json`, its manifest: the catalog's schema, id and revision, and every file's bytes and SHA-256.
The manifest is written last, so a folder without one is not a backup.

Why the backup takes no writer lock: a job may hold the lock for many minutes, and the backup should go on
beside it. Consistency comes from the store itself. The database is copied through SQLite's online backup API
from a read transaction begun first, so the copy is one committed revision whatever writers do meanwhile (WAL:
they are not blocked either). The files beside it never change once written (they are written whole and
renamed before the row that names them is committed). What a job may do to them meanwhile is delete one
(`forget-user` deletes affected models, `clip prune` unused CLIP weights) or rewrite an index (a refresh), so
CLIP weights, model folders and indexes are copied before the snapshot, and then kept or left out by what it
says (one saved in between is copied after it). An index stamped with another catalog, CLIP version or a
revision above the snapshot's is left out, as is one whose bytes differ from its description (indexes are
rebuilt from the store).
A CLIP or model weights file whose checksum differs from the one recorded is not copied: it is named in
`damaged` and the backup finishes.

Restore verifies every file of the backup against the manifest before it changes anything, then, holding the
data directory's writer lock (no job writes meanwhile), puts the files in place and writes the backup's
database into the existing catalog.db through the same backup API: one transaction, so readers that have the
catalog open (the web UI) simply see a new revision on their next read, and the UI's feedback connection
waits for it like for any commit. Only when there is no catalog.db, or it is not a database SQLite can write
into, is the file replaced by a rename (the stale -wal and -shm removed first); a reader that still had the
old file open keeps reading it until restarted. Index files the backup does not hold are removed: they
describe the replaced catalog.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import shutil
import sqlite3
import time
from dataclasses import dataclass, field, replace
from importlib import metadata
from pathlib import Path, PurePosixPath

import numpy as np

from . import schema
from .checksums import CHUNK, sha256_file
from .database import BUSY_TIMEOUT_SECONDS
from .encoding import now_iso
from .errors import DamagedCatalog, StoreError, damaged_message, database_failure, is_disk_full
from .layout import DataDir, ensure, replacing, write_text_atomically
from .lock import WriterLock
from .store import Store

MANIFEST = "backup.json"
FORMAT = 1
logger = logging.getLogger(__name__)


class BackupError(StoreError):
    """A backup or restore that cannot be done as asked (one line)."""


# ---- backup ------------------------------------------------------------------------------------------------


@dataclass
class _Copy:
    """What has been copied into the backup folder so far."""

    dest: DataDir
    files: dict[str, dict] = field(default_factory=dict)  # relative path -> {bytes, sha256}
    damaged: list[dict] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)

    def add(self, source: Path, root: Path) -> dict | None:
        """Copy one file; None when it is gone (deleted since it was listed: an upload used as a query, a model
        that forget-user deletes)."""
        relative = source.relative_to(root).as_posix()
        try:
            self.files[relative] = _copy(source, self.dest.resolve(relative))
        except FileNotFoundError:
            self.dest.resolve(relative).unlink(missing_ok=True)
            return None
        return self.files[relative]

    def drop(self, relative: str) -> None:
        if self.files.pop(relative, None) is not None:
            self.dest.resolve(relative).unlink(missing_ok=True)


def backup_data_dir(data_dir: Path | str, dest: Path | str) -> dict:
    """Copy the data directory's catalog and files into `dest` (a new or empty folder); the command's JSON."""
    started = time.perf_counter()
    paths = DataDir(data_dir)
    if not paths.database.is_file():
        raise StoreError(f"no catalog in {paths.root} (run `vidrec ingest` or `vidrec demo` first)")
    target = Path(dest).expanduser().resolve()
    created = _claim_destination(target, paths)
    try:
        out = _Copy(DataDir(target))
        # Before the snapshot: what a job may delete or rewrite meanwhile (the snapshot then says what to keep).
        indexes = _copy_indexes(paths, out)
        for folder in (_clip_folder(paths), paths.models):
            _copy_folder(paths, out, folder)
        _snapshot(paths.database, out.dest.database)
        snap = Store(target, read_only=True)
        try:
            facts = {
                "schema": _schema_of(out.dest.database),
                "catalog_id": snap.catalog_id,
                "revision": snap.revision,
                "videos": snap.videos.count(),
            }
            clip_version = snap.clip_version
            clips = [c for c in map(snap.clips.get, range(1, snap.clips.next_version())) if c is not None]
            clips = [replace(c, weights=_in_source(c.weights, target, paths)) for c in clips]
            models = snap.models.all()
        finally:
            snap.close()
        _keep_named(paths, out, clips, models)
        _keep_indexes(out, indexes, facts, clip_version, {m.model_id for m in models})
        for folder in (paths.uploads, paths.demo_world):
            _copy_folder(paths, out, folder)
        out.files[out.dest.database.name] = {
            "bytes": out.dest.database.stat().st_size,
            "sha256": sha256_file(out.dest.database),
        }
        manifest = {
            "format": FORMAT,
            "vidrec": _version(),
            **facts,
            "created_at": now_iso(),
            "source": str(paths.root),
            "files": [{"path": p, **f} for p, f in sorted(out.files.items())],
            "damaged": out.damaged,
            "warnings": out.warnings,
        }
        write_text_atomically(target / MANIFEST, json.dumps(manifest, indent=1))
    except BaseException:
        _clear(target, created)
        raise
    return {
        "path": str(target),
        "bytes": sum(f["bytes"] for f in out.files.values()),
        "revision": facts["revision"],
        "seconds": round(time.perf_counter() - started, 3),
        "catalog_id": facts["catalog_id"],
        "videos": facts["videos"],
        "files": len(out.files),
        "damaged": out.damaged,
        "warnings": out.warnings,
    }


def _claim_destination(target: Path, paths: DataDir) -> bool:
    """Check that `target` is a new or empty folder outside the data dir, and make it; whether it was made."""
    if target == paths.root or target.is_relative_to(paths.root):
        raise BackupError(f"{target} is inside the data dir {paths.root}: back up to another folder")
    if target.exists() and not target.is_dir():
        raise BackupError(f"{target} is a file: back up to a new or empty folder")
    if target.is_dir() and any(target.iterdir()):
        raise BackupError(f"{target} is not empty: back up to a new or empty folder")
    created = not target.exists()
    target.mkdir(parents=True, exist_ok=True)
    return created


def _clear(target: Path, created: bool) -> None:
    """Remove what a failed backup wrote (the folder too, when it made it)."""
    if created:
        shutil.rmtree(target, ignore_errors=True)
        return
    for child in target.iterdir():
        if child.is_dir() and not child.is_symlink():
            shutil.rmtree(child, ignore_errors=True)
        else:
            child.unlink(missing_ok=True)


def _snapshot(source: Path, target: Path) -> None:
    """One committed revision of the catalog, through SQLite's backup API from a read transaction (writers go
    on); the copy is a plain single file (no -wal) that passed quick_check."""
    src = sqlite3.connect(f"file:{source}?mode=ro", uri=True, timeout=BUSY_TIMEOUT_SECONDS, isolation_level=None)
    dst = sqlite3.connect(target, isolation_level=None)
    try:
        src.execute("BEGIN")
        src.execute("SELECT 1 FROM meta LIMIT 1")  # the snapshot starts here; the copy is of it
        src.backup(dst)
        src.execute("COMMIT")
        dst.execute("PRAGMA journal_mode=DELETE")
        problems = [row[0] for row in dst.execute("PRAGMA quick_check(3)")]
    except sqlite3.Error as exc:
        raise database_failure(exc, target if is_disk_full(exc) else source) from None
    finally:
        src.close()
        dst.close()
    if problems != ["ok"]:
        raise DamagedCatalog(damaged_message(source, "; ".join(problems)))


def _copy_indexes(paths: DataDir, out: _Copy) -> dict[str, dict]:
    """Each index whose files agree with its description, by name -> the description (a job rewriting one
    meanwhile: tried twice, then left out)."""
    described: dict[str, dict] = {}
    if not paths.indexes.is_dir():
        return described
    for description in sorted(paths.indexes.glob("*.json")):
        name = description.name.removesuffix(".json")
        for _ in range(2):
            found = _copy_index(paths, out, name)
            if found is not None:
                described[name] = found
                break
        else:
            out.warnings.append(f"index {name} left out: its files differ from its description (rebuilt on use)")
    return described


def _copy_index(paths: DataDir, out: _Copy, name: str) -> dict | None:
    """Copy an index's files (its FAISS file, or each shard's) and ids; None, leaving none of them, when they
    differ from its description (changed while being copied, or damaged)."""
    files = paths.index_files(name)
    copied_names: list[str] = [files.ids.relative_to(paths.root).as_posix()]
    try:
        text = files.description.read_bytes()
        described = json.loads(text)
        # each FAISS file with the (bytes, sha256) its description gives it
        expected = [(files.data, described.get("bytes"), described.get("sha256"))]
        if described.get("shards"):
            expected = [(files.data.with_name(s["file"]), s["bytes"], s["sha256"]) for s in described["shards"]]
        good = True
        for path, size, sha256 in expected:
            copied_names.append(path.relative_to(paths.root).as_posix())
            copied = out.add(path, paths.root)
            good = good and copied is not None and copied["bytes"] == size and copied["sha256"] == sha256
        good = (
            good
            and out.add(files.ids, paths.root) is not None
            and _ids_digest(out.dest.resolve(copied_names[0])) == described.get("ids_digest")
        )
    except (OSError, ValueError, KeyError, TypeError):
        good = False
    if not good:
        for copied_name in copied_names:
            out.drop(copied_name)
        return None
    description = files.description.relative_to(paths.root).as_posix()
    out.dest.resolve(description).write_bytes(text)  # the description as read, the one the copies match
    out.files[description] = {"bytes": len(text), "sha256": hashlib.sha256(text).hexdigest()}
    return described


def _ids_digest(path: Path) -> str:
    """The digest an index's description keeps of its ids (index/vector_index.py writes it)."""
    return hashlib.sha1(np.ascontiguousarray(np.load(path), np.int64).tobytes()).hexdigest()


def _keep_indexes(out: _Copy, indexes: dict[str, dict], facts: dict, clip_version: int | None, models: set) -> None:
    """Leave out the indexes that do not belong to the snapshot (another catalog or CLIP, a later revision, a
    model it does not hold)."""
    for name, described in indexes.items():
        stamp = described.get("stamp") or {}
        fits = (
            stamp.get("catalog") == facts["catalog_id"]
            and stamp.get("clip_version") == clip_version
            and int(stamp.get("revision") or 0) <= facts["revision"]
            and stamp.get("model") in models | {None}
        )
        if not fits:
            for path in out.dest.index_files(name).all():
                out.drop(path.relative_to(out.dest.root).as_posix())
            out.warnings.append(f"index {name} left out: it was built for another revision (rebuilt on use)")


def _clip_folder(paths: DataDir) -> Path:
    return paths.resolve(paths.clip_weights_name(1)).parent


def _copy_folder(paths: DataDir, out: _Copy, folder: Path) -> None:
    for source in _files_under(folder):
        out.add(source, paths.root)


def _keep_named(paths: DataDir, out: _Copy, clips: list, models: list) -> None:
    """Keep the CLIP weights and model folders the snapshot names (copying any saved since the first pass),
    drop the others (deleted or saved around it), and check each weights file against its recorded SHA-256."""
    weights: dict[str, tuple[str | None, str]] = {}  # relative path -> (recorded SHA-256, what it is)
    for clip in clips:
        if clip.weights is None or clip.info.get("pruned"):
            continue
        if not clip.weights.is_relative_to(paths.root):
            out.warnings.append(f"CLIP version {clip.version}'s weights are outside the data dir: not copied")
            continue
        weights[_relative(clip.weights, paths)] = (clip.info.get("sha256"), f"CLIP version {clip.version}'s weights")
    folders = {}
    for model in models:
        files = paths.model_files(model.path)
        folders[_relative(files.folder, paths)] = model
        weights[_relative(files.weights, paths)] = (
            model.config.get("weights_sha256"),
            f"model {model.model_id}'s weights",
        )
    clip_folder, models_folder = _relative(_clip_folder(paths), paths), _relative(paths.models, paths)
    for relative in list(out.files):
        parts = relative.split("/")
        if parts[0] == clip_folder and relative not in weights:
            out.drop(relative)  # a pruned version's, or written for a version recorded after the snapshot
        elif parts[0] == models_folder and len(parts) > 2 and "/".join(parts[:2]) not in folders:
            out.drop(relative)  # a model deleted since the first pass, or saved after the snapshot
    for folder in folders:
        if not any(p.startswith(folder + "/") for p in out.files):
            _copy_folder(paths, out, paths.resolve(folder))
    for relative, (expected, what) in weights.items():
        if relative not in out.files and _regular(paths.resolve(relative)):
            out.add(paths.resolve(relative), paths.root)
        copied = out.files.get(relative)
        if copied is None:
            out.damaged.append({"path": relative, "reason": f"{what} are missing"})
        elif expected and copied["sha256"] != expected:
            out.drop(relative)
            out.damaged.append(
                {"path": relative, "reason": f"{what} are damaged (the checksum differs from the record)"}
            )


def _in_source(weights: Path | None, target: Path, paths: DataDir) -> Path | None:
    """The snapshot resolves a version's weights in the backup folder; the file to copy is the data dir's."""
    return paths.root / weights.relative_to(target) if weights and weights.is_relative_to(target) else weights


def _relative(path: Path, paths: DataDir) -> str:
    return path.relative_to(paths.root).as_posix()


def _files_under(folder: Path) -> list[Path]:
    """Regular files under a folder, hidden ones (temporary names) and links left out."""
    if not folder.is_dir():
        return []
    return sorted(
        p
        for p in folder.rglob("*")
        if _regular(p) and not any(part.startswith(".") for part in p.relative_to(folder).parts)
    )


def _regular(path: Path) -> bool:
    return path.is_file() and not path.is_symlink()


def _copy(source: Path, target: Path) -> dict:
    """Copy a file, hashing what was read, and make it durable (a backup is what one relies on)."""
    digest, size = hashlib.sha256(), 0
    with open(source, "rb") as src, open(ensure(target), "wb") as dst:
        while chunk := src.read(CHUNK):
            digest.update(chunk)
            dst.write(chunk)
            size += len(chunk)
        dst.flush()
        os.fsync(dst.fileno())
    return {"bytes": size, "sha256": digest.hexdigest()}


def _schema_of(database: Path) -> int:
    db = sqlite3.connect(f"file:{database}?mode=ro", uri=True)
    try:
        return schema.applied(db)
    finally:
        db.close()


def _version() -> str:
    try:
        return metadata.version("vidrec")
    except metadata.PackageNotFoundError:
        return "unknown"


# ---- restore -----------------------------------------------------------------------------------------------


def _forgotten_in(paths: DataDir) -> set[str]:
    """The users the catalog being replaced has forgotten (by hash); none when it cannot be read."""
    if not paths.database.is_file():
        return set()
    try:
        store = Store(paths.root, create=False, read_only=True)
        try:
            return store.interactions.forgotten_hashes()
        finally:
            store.close()
    except (StoreError, sqlite3.Error):
        return set()


def restore_data_dir(source: Path | str, data_dir: Path | str, force: bool = False) -> dict:
    """Put a backup in place in `data_dir` (an empty one, or with `force` any); the command's JSON."""
    started = time.perf_counter()
    folder = Path(source).expanduser().resolve()
    paths = DataDir(data_dir)
    if folder == paths.root or folder.is_relative_to(paths.root) or paths.root.is_relative_to(folder):
        raise BackupError(f"the backup {folder} and the data dir {paths.root} overlap: restore elsewhere")
    manifest = _read_manifest(folder)
    entries = _entries(manifest, folder, paths)
    for relative, entry in entries.items():  # nothing is changed before every file is known good
        _verify(folder, relative, entry)
    paths.root.mkdir(parents=True, exist_ok=True)
    with WriterLock(paths.writer_lock).hold("restore"):
        if not force and any(p.name != paths.writer_lock.name for p in paths.root.iterdir()):
            raise BackupError(
                f"{paths.root} is not empty: restore into a new data dir, or give --force to replace its catalog"
            )
        for relative, entry in entries.items():
            if relative != paths.database.name:
                _install(folder / relative, paths.resolve(relative), entry)
        if paths.indexes.is_dir():  # index files of the replaced catalog: rebuilt from the restored one
            for stale in paths.indexes.iterdir():
                if stale.is_file() and stale.relative_to(paths.root).as_posix() not in entries:
                    stale.unlink(missing_ok=True)
        forgotten = _forgotten_in(paths)
        revision = _install_database(folder / paths.database.name, paths.database)
        store = Store(paths.root, create=False)  # a backup of an older schema is brought up to date, as on open
        store.interactions.remember_forgotten(forgotten)  # a restore brings nobody back (see ingest/forget.py)
        store.mark_restored()  # readers drop what they hold of the replaced catalog, whatever its revision
        store.close()
    return {
        "path": str(paths.root),
        "bytes": sum(int(e["bytes"]) for e in entries.values()),
        "revision": revision,
        "seconds": round(time.perf_counter() - started, 3),
        "catalog_id": manifest.get("catalog_id"),
        "backup": str(folder),
        "files": len(entries),
        "damaged": manifest.get("damaged", []),
    }


def _read_manifest(folder: Path) -> dict:
    path = folder / MANIFEST
    if not path.is_file():
        raise BackupError(f"{folder} holds no {MANIFEST}: not a vidrec backup, or one that did not finish")
    try:
        manifest = json.loads(path.read_text(encoding="utf-8"))
        if not isinstance(manifest, dict) or not isinstance(manifest.get("files"), list):
            raise ValueError("no list of files")
        if not all(isinstance(entry, dict) for entry in manifest["files"]):
            raise ValueError("a file that is not {path, bytes, sha256}")
        newer = int(manifest.get("schema") or 0) > schema.LATEST
    except (OSError, ValueError, TypeError) as exc:
        raise BackupError(f"{path} is unreadable ({' '.join(str(exc).split())}): the backup is damaged") from None
    if manifest.get("format") != FORMAT:
        raise BackupError(f"{path} is of format {manifest.get('format')!r}; this vidrec reads format {FORMAT}")
    if newer:
        raise BackupError(
            f"the backup in {folder} holds catalog schema {manifest['schema']}, newer than this vidrec knows "
            f"({schema.LATEST}): upgrade vidrec"
        )
    return manifest


def _entries(manifest: dict, folder: Path, paths: DataDir) -> dict[str, dict]:
    """The manifest's files by relative path; each must land inside the data dir's own folders."""
    allowed = [
        paths.models,
        paths.indexes,
        paths.uploads,
        paths.demo_world,
        paths.resolve(paths.clip_weights_name(1)).parent,
    ]
    entries = {}
    for entry in manifest["files"]:
        relative = PurePosixPath(str(entry.get("path", "")))
        target = paths.resolve(str(relative))
        inside = target == paths.database or any(target.is_relative_to(a) for a in allowed)
        if relative.is_absolute() or ".." in relative.parts or not inside:
            raise BackupError(f"{folder / MANIFEST} names {str(relative)!r}, not a file of a data dir: refused")
        entries[relative.as_posix()] = entry
    if paths.database.name not in entries:
        raise BackupError(f"{folder / MANIFEST} lists no {paths.database.name}: the backup is damaged")
    return entries


def _verify(folder: Path, relative: str, entry: dict) -> None:
    path = folder / relative
    if not _regular(path):
        raise BackupError(f"the backup in {folder} is damaged: {relative} is missing; nothing was restored")
    if path.stat().st_size != entry.get("bytes") or sha256_file(path) != entry.get("sha256"):
        raise BackupError(
            f"the backup in {folder} is damaged: {relative} differs from its manifest (size or checksum); "
            "nothing was restored"
        )


def _install(source: Path, target: Path, entry: dict) -> None:
    """A file in place (under a temporary name, renamed), unless the same bytes are there already."""
    if _regular(target) and target.stat().st_size == entry["bytes"] and sha256_file(target) == entry["sha256"]:
        return
    with replacing(target) as tmp:
        shutil.copyfile(source, tmp)


def _install_database(source: Path, target: Path) -> int:
    """The backup's database as the catalog; its revision. Written into the existing catalog.db as one
    transaction where SQLite can, else the file is replaced."""
    try:
        if not target.exists() or not _write_into(source, target):
            with replacing(target) as tmp:
                shutil.copyfile(source, tmp)
                db = sqlite3.connect(tmp)
                db.execute("PRAGMA journal_mode=WAL")  # like every catalog
                db.close()
                for suffix in ("-wal", "-shm"):  # the old file's: they must not be read as the new one's
                    target.with_name(target.name + suffix).unlink(missing_ok=True)
        db = sqlite3.connect(f"file:{target}?mode=ro", uri=True, timeout=BUSY_TIMEOUT_SECONDS)
        try:
            problems = [row[0] for row in db.execute("PRAGMA quick_check(3)")]
            revision = db.execute("SELECT value FROM meta WHERE key = 'revision'").fetchone()
        finally:
            db.close()
    except sqlite3.Error as exc:
        raise database_failure(exc, target) from None
    if problems != ["ok"]:
        raise DamagedCatalog(damaged_message(target, "; ".join(problems)))
    return int(revision[0]) if revision else 0


def _write_into(source: Path, target: Path) -> bool:
    """The backup API from the backup's file into the live catalog.db: one write transaction, which readers
    see as a new revision. False when the file is not a database SQLite can write into (a damaged first page,
    another page size)."""
    src = sqlite3.connect(f"file:{source}?mode=ro", uri=True)
    dst = sqlite3.connect(target, timeout=BUSY_TIMEOUT_SECONDS, isolation_level=None)
    try:
        src.backup(dst)
        dst.execute("PRAGMA wal_checkpoint(PASSIVE)")
        return True
    except sqlite3.DatabaseError as exc:
        code = (getattr(exc, "sqlite_errorcode", 0) or 0) & 0xFF
        if code not in (sqlite3.SQLITE_CORRUPT, sqlite3.SQLITE_NOTADB, sqlite3.SQLITE_READONLY):
            raise
        logger.warning("%s cannot be written in place (%s): replacing the file; restart the web UI", target, exc)
        return False
    finally:
        src.close()
        dst.close()
