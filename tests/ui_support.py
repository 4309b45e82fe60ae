"""What the web UI's AppTest files share: the app under test, its checks, and the catalog a test opens.
The fixtures `ui_base` and `ui_data` are in conftest.py."""

from __future__ import annotations

import sqlite3
from pathlib import Path
from urllib.parse import parse_qs

from streamlit.testing.v1 import AppTest

from index import browse
from ingest.store import Store

MAIN = Path(__file__).resolve().parent.parent / "app" / "ui" / "main.py"
EVIL = "<script>alert(1)</script> [x](javascript:alert(1)) **bold** :red[red]"


def app(**query) -> AppTest:
    at = AppTest.from_file(str(MAIN), default_timeout=90)
    at.query_params.update({k: str(v) for k, v in query.items()})
    return at.run()


def ok(at: AppTest) -> AppTest:
    assert not at.exception, [e.value for e in at.exception]
    return at


def shown(at: AppTest, prefix: str = "rec") -> list[str]:
    """The video ids of one list, in order: its cards (containers keyed `<prefix>-card-<n>`, each opening its
    video by a page link), else buttons keyed `<prefix>-open-<video id>`."""
    cards: list[tuple[int, str]] = []

    def walk(node) -> None:
        key = getattr(node, "key", None) or ""
        if key.startswith(f"{prefix}-card-") and key[len(prefix) + 6 :].isdigit():
            links = node.get("page_link")
            if links:
                query = parse_qs(links[0].proto.query_string)
                cards.append((int(key[len(prefix) + 6 :]), query["video"][0]))
                return
        for child in getattr(node, "children", {}).values():
            walk(child)

    walk(at._tree)
    if cards:
        return [video for _, video in sorted(cards)]
    return [b.key.split(f"{prefix}-open-", 1)[1] for b in at.button if b.key and b.key.startswith(f"{prefix}-open-")]


def user_and_region(data_dir: Path) -> tuple[str, str]:
    store = Store(data_dir)
    user = store.interactions.users()[0]
    region = browse.context_choices(store)["region"][0]
    store.close()
    return user, region


def ui_rows(data_dir: Path, user: str) -> list[sqlite3.Row]:
    db = sqlite3.connect(data_dir / "catalog.db")
    db.row_factory = sqlite3.Row
    try:
        return db.execute("SELECT * FROM interactions WHERE user_id = ? AND source = 'ui'", (user,)).fetchall()
    finally:
        db.close()


def interaction_count(data_dir: Path) -> int:
    """Every interaction row in the catalog (what a view that must write nothing leaves as it was)."""
    db = sqlite3.connect(data_dir / "catalog.db")
    try:
        return db.execute("SELECT COUNT(*) FROM interactions").fetchone()[0]
    finally:
        db.close()
