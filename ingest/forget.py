"""`vidrec forget-user`: erase a person on request.

Their interactions and the UI's impressions of them are deleted with SQLite's secure delete and the WAL is
checkpointed and emptied, so no file of the catalog keeps their id. The catalog keeps a hash of it among the
forgotten: an import of an old log refuses their rows, and a restored older backup forgets them again. A
model trained since their first impression has learnt from them (a hashed embedding row, a "seen" flag): it
is affected. The model that serves keeps serving (nobody else's lists break) until it is retrained
(`--retrain` does it now, with the options it was trained with), less the user's click-graph row (a running
server drops it at its next request); affected models that do not serve are
deleted, files, index and row.
"""

from __future__ import annotations

import shutil
import time
from datetime import datetime, timezone

from .learning import load_model, train_and_save
from .learning.checkpoint import options_of, serving_model_id
from .store import UI_SOURCE, Store


def forget_user(store: Store, user_id: str, retrain: bool = False, progress: bool = False) -> dict:
    """Forget `user_id`; the command's JSON (docs/cli.md, `forget-user`). One job under the writer lock, retraining
    included, so that no import brings the user back half-way."""
    started = time.perf_counter()
    with store.writing("forget-user"):
        first = store.interactions.first_ts(user_id)
        since = None if first is None else datetime.fromtimestamp(first, timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")
        affected = [m.model_id for m in store.models.all() if since is not None and m.created_at >= since]
        counts = store.interactions.forget(user_id)
        retrained: list[str] = []
        try:
            if retrain and affected and serving_model_id(store) in affected:
                options = options_of(load_model(store))
                options.progress = progress
                retrained.append(train_and_save(store, options)["model_id"])
                store.models.pin_if_pinned(retrained[0])
        finally:  # a retraining that fails still leaves no unserved model and no WAL that knew the user
            serving = serving_model_id(store)
            deleted = [model_id for model_id in affected if model_id != serving]
            for model_id in deleted:
                _delete_model(store, model_id)
            emptied = _empty_the_wal(store)
    return {
        "user": user_id,
        "interactions": sum(n for source, n in counts.items() if source != UI_SOURCE),
        "impressions": counts.get(UI_SOURCE, 0),
        "models_affected": affected,
        "models_retrained": retrained,
        "models_deleted": deleted,
        "warnings": [] if emptied else [WAL_BUSY],
        "seconds": round(time.perf_counter() - started, 3),
    }


WAL_BUSY = (
    "a reader kept its snapshot open for 30 s (a backup running?), so catalog.db-wal may still hold the deleted "
    "rows: run forget-user again when it is done (it empties the WAL then)"
)


def _empty_the_wal(store: Store, seconds: float = 30.0) -> bool:
    """Checkpoint until the WAL is empty: a reader's snapshot (a request, a backup) holds part of it for a while."""
    deadline = time.monotonic() + seconds
    while not store.checkpoint():
        if time.monotonic() > deadline:
            return False
        time.sleep(0.2)
    return True


def _delete_model(store: Store, model_id: str) -> None:
    """A model's row, folder and index files."""
    record = next(m for m in store.models.all() if m.model_id == model_id)
    store.models.remove(model_id)
    shutil.rmtree(store.paths.model_files(record.path).folder, ignore_errors=True)
    name = store.paths.model_index_name(model_id)
    for path in store.paths.index_files(name).all():
        path.unlink(missing_ok=True)
    store.forget_index(name)


def forget_again(store: Store) -> int:
    """After a restore of a backup older than a `forget-user`: the users forgotten since are forgotten again (the
    catalog keeps the forgotten by hash only; restore carries the list over). Returns how many."""
    users = store.interactions.users_forgotten()
    for user_id in users:
        forget_user(store, user_id)
    return len(users)
