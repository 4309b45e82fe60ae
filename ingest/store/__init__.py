"""The catalog store: the one place that speaks SQL and knows the data directory's layout.

store = Store(data_dir)
store.videos.get("v0001"); store.embeddings.matrix("video_emb"); store.interactions.clicks("u1")
store.clips.current(); store.models.all(); store.paths.index_files("fused")
"""

from .backup import BackupError, backup_data_dir, restore_data_dir
from .checksums import checksum_differs, sha256_bytes, sha256_file
from .clips import ClipVersion
from .embeddings import FIELDS as EMBEDDING_FIELDS
from .encoding import from_blob, now_iso, to_blob
from .errors import DamagedCatalog, DatabaseError, LockTimeout, StoreError, database_failure, is_disk_full
from .interactions import UI_SOURCE, Interaction, Outcome, forgotten_hash
from .layout import DataDir, IndexFiles, ModelFiles, ensure, replacing, write_text_atomically
from .registry import ModelRecord
from .store import Store, catalog_version
from .videos import UNLABELLED, VIDEO_COLUMNS, Video

__all__ = [
    "Store",
    "backup_data_dir",
    "restore_data_dir",
    "BackupError",
    "StoreError",
    "LockTimeout",
    "DatabaseError",
    "DamagedCatalog",
    "database_failure",
    "is_disk_full",
    "sha256_file",
    "checksum_differs",
    "sha256_bytes",
    "catalog_version",
    "DataDir",
    "IndexFiles",
    "ModelFiles",
    "ensure",
    "replacing",
    "write_text_atomically",
    "ClipVersion",
    "ModelRecord",
    "Video",
    "VIDEO_COLUMNS",
    "UNLABELLED",
    "Interaction",
    "Outcome",
    "UI_SOURCE",
    "forgotten_hash",
    "EMBEDDING_FIELDS",
    "now_iso",
    "to_blob",
    "from_blob",
]
