"""Forgetting a user in a demo world kept inside a data dir (`demo-world/`): after `vidrec forget-user`, no
file under the data dir may hold their id, the demo's own source files included.

Their rows leave the world's interaction log; in its truth their id is replaced by an opaque one (the
oracle is only ever asked about rows of the store, where they no longer are).
"""

from __future__ import annotations

import csv
import io
import json
import uuid
from pathlib import Path

from ingest.store import write_text_atomically

from .truth import TRUTH_FILE
from .world import INTERACTIONS_FILE


def forget_in_world(world_dir: Path, user_id: str) -> bool:
    """Remove `user_id` from the world's files; whether the world held them."""
    found = False
    log = world_dir / INTERACTIONS_FILE
    if log.is_file():
        with open(log, newline="", encoding="utf-8") as f:
            rows = list(csv.reader(f))
        kept = [row for row in rows[1:] if not row or row[0] != user_id]
        if len(kept) < len(rows) - 1:
            found = True
            out = io.StringIO()
            csv.writer(out).writerows([rows[0], *kept])
            write_text_atomically(log, out.getvalue())
    truth = world_dir / TRUTH_FILE
    if truth.is_file():
        document = json.loads(truth.read_text(encoding="utf-8"))
        ids = document["users"]["id"]
        if user_id in ids:
            found = True
            ids[ids.index(user_id)] = f"forgotten-{uuid.uuid4().hex[:12]}"
            write_text_atomically(truth, json.dumps(document, ensure_ascii=False, indent=1))
    return found
