"""What the web UI's AppTest files share: the app under test, its checks, and the catalog a test opens.
The fixtures `ui_base` and `ui_data` are in conftest.py."""

from __future__ import annotations

import sqlite3
from pathlib import Path

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
    """The video ids of one grid, in order (each card's Watch button is keyed by its video id)."""
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
