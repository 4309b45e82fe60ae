"""The Python API that the command line and the web UI share: one object per data directory.

Work that spans floors (ingest, then bring the indexes up to date) is orchestrated here, above
`ingest/`, which never imports `index/`.
"""
from __future__ import annotations

from pathlib import Path

from ingest.pipeline import IngestOptions, IngestReport, ingest
from ingest.store import Store

from .catalog_index import FUSED, CatalogIndex
from .search import Searcher
from .vector_index import IndexConfig, IndexFileError


class Vidrec:
    def __init__(self, data_dir: Path | str, *, create: bool = False, index_config: IndexConfig = IndexConfig()):
        self.store = Store(data_dir, create=create)
        self.indexes = {FUSED: CatalogIndex(self.store, FUSED, index_config)}
        self.searcher = Searcher(self.store, index=self.indexes[FUSED])

    # ---- catalog ------------------------------------------------------------------------------
    def status(self) -> dict:
        return self.store.status()

    def ingest(self, paths=(), manifest=None, options: IngestOptions | None = None) -> IngestReport:
        """Ingest, then bring the indexes up to date so the new videos are searchable at once."""
        report = ingest(self.store, paths, manifest, options)
        if report.ingested or report.updated:
            self.refresh_indexes()
        return report

    def remove(self, video_ids: list[str]) -> list[str]:
        removed = self.store.remove_videos(video_ids)
        if removed and self.store.count("videos"):
            self.refresh_indexes()
        return removed

    def refresh_indexes(self) -> list[dict]:
        """Build or update every index; returns their descriptions."""
        if not self.store.count("videos"):
            raise IndexFileError("the catalog is empty: ingest videos first")
        return [index.ensure().to_json() | {"action": index.action} for index in self.indexes.values()]

    # ---- search -------------------------------------------------------------------------------
    def search(self, text: str, k: int = 10) -> list[dict]:
        return self.searcher.text(text, k)

    def similar(self, video_id: str, k: int = 10) -> list[dict]:
        return self.searcher.similar(video_id, k)

    def similar_to_file(self, path: Path | str, k: int = 10) -> list[dict]:
        return self.searcher.similar_to_file(path, k)
