"""Read-only views of a catalog for the web UI: counts, pages of videos, one video, its category, a 2-D
map of the embeddings, and the model report read from the model's saved files.

They live here rather than in the UI so that they are plain functions a test can call, and rather than
in `index/api.py` because only the UI needs them. Nothing here writes to the store.
"""
from __future__ import annotations

import json
import sqlite3
from pathlib import Path

import numpy as np

from ingest.evaluation import ABLATIONS_FILE
from ingest.store import DB_NAME, Store

UNLABELLED = "(unlabelled)"


# ---- the cache key ----------------------------------------------------------------------------------------
def version_key(data_dir: Path | str) -> tuple:
    """(catalog revision, CLIP version, newest model id, index descriptions): what the cached API
    object depends on. Read with a read-only connection so that it is cheap on every page run and never
    takes the store's write lock; None when there is no catalog yet."""
    path = Path(data_dir).expanduser().resolve() / DB_NAME
    if not path.is_file():
        return (None,)
    db = sqlite3.connect(f"file:{path}?mode=ro", uri=True, timeout=10)
    try:
        meta = dict(db.execute("SELECT key, value FROM meta WHERE key IN ('revision', 'clip_version', 'indexes')"))
        newest = db.execute("SELECT model_id FROM models ORDER BY created_at DESC, rowid DESC LIMIT 1").fetchone()
    except sqlite3.Error:
        return (None,)
    finally:
        db.close()
    return (meta.get("revision"), meta.get("clip_version"), newest[0] if newest else None, meta.get("indexes"))


# ---- catalog --------------------------------------------------------------------------------------------
def catalog_summary(store: Store) -> dict:
    """The store's status plus videos per category and the failed files with their reasons."""
    status = store.status()
    categories = store.db.execute(
        "SELECT COALESCE(category, ?), COUNT(*) FROM videos GROUP BY 1 ORDER BY 2 DESC, 1", (UNLABELLED,)).fetchall()
    status["categories"] = {c: n for c, n in categories}
    status["failures"] = store.failures()
    return status


def categories(store: Store) -> list[str]:
    return [r[0] for r in store.db.execute("SELECT DISTINCT category FROM videos WHERE category IS NOT NULL ORDER BY 1")]


def video_page(store: Store, offset: int = 0, limit: int = 20, category: str | None = None,
               text: str | None = None) -> tuple[int, list[dict]]:
    """(how many match, one page of them, newest first): a category filter and a plain substring match on
    title and tags, for browsing (semantic search is `Vidrec.search`)."""
    where, args = [], []
    if category == UNLABELLED:
        where.append("category IS NULL")
    elif category:
        where.append("category = ?")
        args.append(category)
    if text and text.strip():
        where.append("(title LIKE ? ESCAPE '\\' OR tags LIKE ? ESCAPE '\\')")
        like = "%" + text.strip().replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_") + "%"
        args += [like, like]
    clause = f"WHERE {' AND '.join(where)}" if where else ""
    total = store.db.execute(f"SELECT COUNT(*) FROM videos {clause}", args).fetchone()[0]
    rows = store.db.execute(
        f"SELECT video_id, title, category, duration FROM videos {clause} ORDER BY id DESC LIMIT ? OFFSET ?",
        [*args, max(1, limit), max(0, offset)]).fetchall()
    return int(total), [dict(r) for r in rows]


def thumbnails(store: Store, video_ids: list[str]) -> dict[str, bytes]:
    """JPEG thumbnails of several videos in one query."""
    if not video_ids:
        return {}
    marks = ",".join("?" * len(video_ids))
    return dict(store.db.execute(f"SELECT v.video_id, t.jpeg FROM thumbnails t JOIN videos v ON v.id = t.video "
                                 f"WHERE v.video_id IN ({marks})", list(video_ids)).fetchall())


def video_details(store: Store, video_id: str) -> dict | None:
    """One video's metadata, its file path and whether that file is still there, and its audience."""
    row = store.video(video_id)
    if row is None:
        return None
    out = {k: row[k] for k in ("video_id", "title", "description", "category", "published_at", "duration", "fps",
                               "width", "height", "codec", "rotation", "size_bytes", "added_at", "path")}
    out["tags"] = [t for t in (row["tags"] or "").split("|") if t]
    path = Path(row["path"])
    out["file_exists"] = path.is_file()
    seen = store.db.execute("SELECT COUNT(*), COALESCE(SUM(clicked), 0), COALESCE(SUM(liked), 0) FROM interactions "
                            "WHERE video_id = ?", (video_id,)).fetchone()
    out["impressions"], out["clicks"], out["likes"] = (int(x) for x in seen)
    return out


def more_from_category(store: Store, video_id: str, k: int = 10) -> list[dict]:
    """Other videos of the same labelled category, the most clicked first; empty for an unlabelled video."""
    row = store.video(video_id)
    if row is None or not row["category"]:
        return []
    rows = store.db.execute(
        "SELECT v.video_id, v.title, v.category, COALESCE(SUM(i.clicked), 0) AS clicks FROM videos v "
        "LEFT JOIN interactions i ON i.video_id = v.video_id WHERE v.category = ? AND v.video_id != ? "
        "GROUP BY v.id ORDER BY clicks DESC, v.id DESC LIMIT ?", (row["category"], video_id, max(1, k))).fetchall()
    return [dict(r) for r in rows]


def categories_of(store: Store, video_ids: list[str]) -> dict[str, str | None]:
    if not video_ids:
        return {}
    marks = ",".join("?" * len(video_ids))
    return dict(store.db.execute(f"SELECT video_id, category FROM videos WHERE video_id IN ({marks})",
                                 list(video_ids)).fetchall())


# ---- users and contexts ---------------------------------------------------------------------------------
def known_users(store: Store, limit: int = 500) -> list[str]:
    """Users with interactions, the most active first (a selectbox's options)."""
    return [r[0] for r in store.db.execute(
        "SELECT user_id FROM interactions GROUP BY user_id ORDER BY COUNT(*) DESC, user_id LIMIT ?", (limit,))]


def context_choices(store: Store) -> dict[str, list[str]]:
    """The devices and regions the interaction log knows, the most common first."""
    out = {}
    for column in ("device", "region"):
        out[column] = [r[0] for r in store.db.execute(
            f"SELECT {column} FROM interactions WHERE {column} IS NOT NULL GROUP BY 1 ORDER BY COUNT(*) DESC, 1")]
    return out


# ---- the embedding map ----------------------------------------------------------------------------------
def embedding_map(store: Store, field: str = "video_emb") -> list[dict]:
    """Every video's embedding projected to 2-D with PCA, with its category (or UNLABELLED) and title.
    PCA rather than t-SNE or UMAP: deterministic, instant, and enough to see whether categories separate."""
    from sklearn.decomposition import PCA

    _, video_ids, matrix = store.embeddings(field)
    if len(video_ids) == 0:
        return []
    if len(video_ids) >= 3:
        xy = PCA(n_components=2, random_state=0).fit_transform(matrix.astype(np.float64))
    else:
        xy = np.zeros((len(video_ids), 2))
    rows = dict(store.db.execute("SELECT video_id, title || char(31) || COALESCE(category, '') FROM videos"))
    out = []
    for video_id, (x, y) in zip(video_ids, xy):
        title, _, category = rows.get(video_id, "\x1f").partition("\x1f")
        out.append({"video_id": video_id, "title": title, "category": category or UNLABELLED,
                    "x": round(float(x), 5), "y": round(float(y), 5)})
    return out


# ---- the model report ---------------------------------------------------------------------------------------
def model_rows(store: Store) -> list[dict]:
    """The store's models, newest first (without their bulky config)."""
    return [{"model_id": r[0], "arch": r[1], "clip_version": r[2], "created_at": r[3], "path": r[4]} for r in
            store.db.execute("SELECT model_id, arch, clip_version, created_at, path FROM models "
                             "ORDER BY created_at DESC, rowid DESC")]


def _read_json(path: Path):
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None


def model_report(store: Store, model_id: str | None = None) -> dict | None:
    """What the model's folder says about it (DATA_DIR/models/<id>/: config.json, metrics.json, curves.json,
    and any ablation or diagnostic files the evaluation left there), flattened into rows for tables and
    charts. None when the catalog has no model."""
    models = model_rows(store)
    if model_id is not None:
        models = [m for m in models if m["model_id"] == model_id]
    if not models:
        return None
    row = models[0]
    folder = store.data_dir / row["path"]
    config = _read_json(folder / "config.json") or {}
    metrics = _read_json(folder / "metrics.json") or {}
    curves = _read_json(folder / "curves.json") or {}
    diagnostics = _read_json(folder / "diagnostics.json") or {}
    report = {"model_id": row["model_id"], "arch": row["arch"], "clip_version": row["clip_version"],
              "created_at": row["created_at"], "stale": row["clip_version"] != (store.clip_version() or _NoClip).version,
              "split": config.get("split", {}), "best_epochs": config.get("best_epochs", {}),
              "seconds": config.get("seconds"), "options": config.get("options", {}),
              "metrics": metric_rows(metrics), "curves": curve_rows(curves),
              "gates": diagnostic_gates(diagnostics) or gate_rows(curves, config),
              "importance": importance_rows(diagnostics), "experts": expert_rows(diagnostics),
              "warnings": [w for d in diagnostics.values() if isinstance(d, dict)
                           for w in ((d.get("experts") or {}).get("warnings") or [])],
              "ablations": None, "ablations_file": None}
    ablations = store.data_dir / "models" / ABLATIONS_FILE  # written by `vidrec eval --ablations`
    found = _read_json(ablations)
    if isinstance(found, dict) and found.get("rows"):
        report["ablations"], report["ablations_file"] = found["rows"], str(ablations)
    return report


class _NoClip:
    version = None


def metric_rows(metrics: dict) -> list[dict]:
    """{task: {metric: value}} -> rows {task, metric, value}; counts and nested values left out."""
    rows = []
    for task, values in metrics.items():
        if not isinstance(values, dict):
            continue
        for metric, value in values.items():
            if isinstance(value, (int, float)) and not isinstance(value, bool) and metric not in ("n", "seeds"):
                rows.append({"task": task, "metric": metric, "value": float(value)})
    return rows


def curve_rows(curves: dict) -> list[dict]:
    """Per network and epoch: each task's training loss and the validation score, long format
    {net, epoch, series, value} for a line chart."""
    rows = []
    for net, epochs in (curves or {}).items():
        for e in epochs if isinstance(epochs, list) else []:
            epoch = e.get("epoch")
            for task, loss in (e.get("train_loss") or {}).items():
                rows.append({"net": net, "epoch": epoch, "series": f"train loss: {task}", "value": float(loss)})
            if e.get("validation_score") is not None:
                rows.append({"net": net, "epoch": epoch, "series": "validation score",
                             "value": float(e["validation_score"])})
            for task, values in (e.get("validation") or {}).items():
                primary = next((values[m] for m in ("auc", "accuracy", "ndcg_at_10", "mae") if
                                isinstance(values, dict) and values.get(m) is not None), None)
                if primary is not None:
                    rows.append({"net": net, "epoch": epoch, "series": f"validation: {task}", "value": float(primary)})
    return rows


def gate_rows(curves: dict, config: dict) -> list[dict]:
    """The learned feature-group gates (0: switched off, 1: fully on) at each network's best epoch: the
    model's own account of which feature groups it uses."""
    rows = []
    best = config.get("best_epochs", {})
    for net, epochs in (curves or {}).items():
        if not isinstance(epochs, list) or not epochs:
            continue
        chosen = next((e for e in epochs if e.get("epoch") == best.get(net)), epochs[-1])
        for group, value in (chosen.get("gates") or {}).items():
            rows.append({"net": net, "group": group, "gate": float(value)})
    return rows


def _per_net(diagnostics: dict, part: str):
    for net, d in (diagnostics or {}).items():
        if isinstance(d, dict) and isinstance(d.get(part), dict):
            yield net, d[part]


def diagnostic_gates(diagnostics: dict) -> list[dict]:
    """diagnostics.json's learnt gates {net: {"gates": {group: value}}} -> rows {net, group, gate}."""
    return [{"net": net, "group": g, "gate": float(v)} for net, gates in _per_net(diagnostics, "gates")
            for g, v in gates.items()]


def importance_rows(diagnostics: dict) -> list[dict]:
    """Permutation importance {net: {"importance": {task: {group: drop}}}} -> rows {net, task, group, drop}
    (the drop of the task's primary metric when the group is shuffled)."""
    return [{"net": net, "task": task, "group": g, "drop": float(v)} for net, tasks in _per_net(diagnostics, "importance")
            for task, groups in tasks.items() if isinstance(groups, dict) for g, v in groups.items()]


def expert_rows(diagnostics: dict) -> list[dict]:
    """Expert utilisation {net: {"experts": {"usage": {task: [weight per expert]}, "experts": {task: [names]}}}}
    -> rows {net, task, expert, share}."""
    rows = []
    for net, experts in _per_net(diagnostics, "experts"):
        names = experts.get("experts") or {}
        for task, weights in (experts.get("usage") or {}).items():
            labels = names.get(task) if isinstance(names, dict) else names
            for i, w in enumerate(weights):
                rows.append({"net": net, "task": task, "expert": labels[i] if labels and i < len(labels) else f"expert {i}",
                             "share": float(w)})
    return rows
