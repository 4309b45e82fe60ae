"""Read-only views of a catalog for the web UI: counts, pages of videos, one video, its category, how alike
two videos are in frames and in text, two ranked lists compared, a 2-D map of the embeddings, and the model
report read from the model's saved files.

They live here rather than in the UI so that they are plain functions a test can call, and rather than
in `index/api.py` because only the UI needs them. Nothing here writes to the store.
"""

from __future__ import annotations

import json
from dataclasses import asdict
from pathlib import Path

import numpy as np

from ingest.store import UNLABELLED, Store, Video

from .search import DEFAULT_K


# ---- catalog --------------------------------------------------------------------------------------------
def catalog_summary(store: Store) -> dict:
    """The store's status plus videos per category and the failed files with their reasons."""
    status = store.status()
    status["categories"] = store.videos.category_counts()
    status["failures"] = store.failures.all()
    return status


def _card(video: Video) -> dict:
    return {"video_id": video.video_id, "title": video.title, "category": video.category, "duration": video.duration}


def video_page(
    store: Store, offset: int = 0, limit: int = 20, category: str | None = None, text: str | None = None
) -> tuple[int, list[dict]]:
    """(how many match, one page of them, newest first): a category filter and a plain substring match on
    title and tags, for browsing (semantic search is `Vidrec.search`)."""
    total, videos = store.videos.page(offset, limit, category, text)
    return total, [_card(v) for v in videos]


def video_details(store: Store, video_id: str) -> dict | None:
    """One video's metadata, its file path and whether that file is still there, and its audience."""
    video = store.videos.get(video_id)
    if video is None:
        return None
    out = {k: v for k, v in asdict(video).items() if k not in ("id", "content_hash", "tags", "changed")}
    out["tags"] = video.tag_list
    out["file_exists"] = Path(video.path).is_file()
    out["impressions"], out["clicks"], out["likes"] = store.interactions.audience(video_id)
    return out


def more_from_category(store: Store, video_id: str, k: int = DEFAULT_K) -> list[dict]:
    """Other videos of the same labelled category, the most clicked first; empty for an unlabelled video."""
    video = store.videos.get(video_id)
    if video is None or not video.category:
        return []
    return [
        _card(v) | {"clicks": clicks}
        for v, clicks in store.videos.most_clicked_in_category(video.category, k, exclude=video_id)
    ]


def similarity_split(store: Store, video_id: str, others: list[str]) -> dict[str, dict[str, float]]:
    """{other video_id: {"frames": cosine, "text": cosine}}: how alike each other video is to `video_id` in
    its frames (their `video_emb`) and in its text (their `text_emb`), the two halves the fused index mixes.
    Current CLIP version; videos without embeddings are left out (all of them when `video_id` has none)."""
    ids = list(dict.fromkeys([video_id, *others]))
    halves: dict[str, dict[str, float]] = {}
    for field, half in (("video_emb", "frames"), ("text_emb", "text")):
        vectors = store.embeddings.of_videos(ids, field)
        if video_id not in vectors:
            return {}
        own = _unit(vectors[video_id])
        halves[half] = {v: float(_unit(x) @ own) for v, x in vectors.items() if v != video_id}
    return {
        v: {"frames": halves["frames"][v], "text": halves["text"][v]}
        for v in others
        if v in halves["frames"] and v in halves["text"]
    }


def _unit(vector: np.ndarray) -> np.ndarray:
    vector = np.asarray(vector, np.float64)
    norm = float(np.linalg.norm(vector))
    return vector / norm if norm > 0 else vector


# ---- comparing two lists ------------------------------------------------------------------------------------
def compare_lists(a: list[str], b: list[str]) -> dict:
    """Two ranked lists of video ids (A, then B) -> {"both": the ids in both, in B's order; "moved": {id of B:
    how many places it rose from A (negative: fell; None: new in B)}; "left": the ids of A not in B, in A's
    order}."""
    rank_a = {v: i for i, v in enumerate(a)}
    in_b = set(b)
    return {
        "both": [v for v in b if v in rank_a],
        "moved": {v: (rank_a[v] - i if v in rank_a else None) for i, v in enumerate(b)},
        "left": [v for v in a if v not in in_b],
    }


# ---- users and contexts ---------------------------------------------------------------------------------
def context_choices(store: Store) -> dict[str, list[str]]:
    """The devices and regions the interaction log knows, the most common first."""
    return {column: store.interactions.by_frequency(column) for column in ("device", "region")}


# ---- the embedding map ----------------------------------------------------------------------------------
def embedding_map(store: Store, field: str = "video_emb") -> list[dict]:
    """Every video's embedding projected to 2-D with PCA, with its category (or UNLABELLED) and title.
    PCA rather than t-SNE or UMAP: deterministic, instant, and enough to see whether categories separate."""
    from sklearn.decomposition import PCA

    _, video_ids, matrix = store.embeddings.matrix(field)
    if len(video_ids) == 0:
        return []
    if len(video_ids) >= 3:
        xy = PCA(n_components=2, random_state=0).fit_transform(matrix.astype(np.float64))
    else:
        xy = np.zeros((len(video_ids), 2))
    videos = {v.video_id: v for v in store.videos.all()}
    out = []
    for video_id, (x, y) in zip(video_ids, xy):
        video = videos.get(video_id)
        out.append(
            {
                "video_id": video_id,
                "title": video.title if video else "",
                "category": (video.category if video else None) or UNLABELLED,
                "x": round(float(x), 5),
                "y": round(float(y), 5),
            }
        )
    return out


# ---- the model report ---------------------------------------------------------------------------------------
def _read_json(path: Path):
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None


def model_report(store: Store, model_id: str | None = None) -> dict | None:
    """What the model's folder says about it (DATA_DIR/models/<id>/: config.json, metrics.json, curves.json,
    and any ablation or diagnostic files the evaluation left there), flattened into rows for tables and
    charts. None when the catalog has no model."""
    models = store.models.all()
    if model_id is not None:
        models = [m for m in models if m.model_id == model_id]
    if not models:
        return None
    record = models[0]
    files = store.paths.model_files(record.path)
    config = _read_json(files.config) or {}
    metrics = _read_json(files.metrics) or {}
    curves = _read_json(files.curves) or {}
    diagnostics = _read_json(files.diagnostics) or {}
    clip = store.clips.current()
    report = {
        "model_id": record.model_id,
        "arch": record.arch,
        "clip_version": record.clip_version,
        "created_at": record.created_at,
        "stale": clip is None or record.clip_version != clip.version,
        "split": config.get("split", {}),
        "best_epochs": config.get("best_epochs", {}),
        "seconds": config.get("seconds"),
        "options": config.get("options", {}),
        "metrics": metric_rows(metrics),
        "curves": curve_rows(curves),
        "gates": diagnostic_gates(diagnostics) or gate_rows(curves, config),
        "importance": importance_rows(diagnostics),
        "experts": expert_rows(diagnostics),
        "warnings": [
            w
            for d in diagnostics.values()
            if isinstance(d, dict)
            for w in ((d.get("experts") or {}).get("warnings") or [])
        ],
        "ablations": None,
        "ablations_file": None,
    }
    ablations = store.paths.ablations  # written by `vidrec eval --ablations`
    found = _read_json(ablations)
    if isinstance(found, dict) and found.get("rows"):
        report["ablations"], report["ablations_file"] = found["rows"], str(ablations)
    return report


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
                rows.append(
                    {"net": net, "epoch": epoch, "series": "validation score", "value": float(e["validation_score"])}
                )
            for task, values in (e.get("validation") or {}).items():
                primary = next(
                    (
                        values[m]
                        for m in ("auc", "accuracy", "ndcg_at_10", "mae")
                        if isinstance(values, dict) and values.get(m) is not None
                    ),
                    None,
                )
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
    return [
        {"net": net, "group": g, "gate": float(v)}
        for net, gates in _per_net(diagnostics, "gates")
        for g, v in gates.items()
    ]


def importance_rows(diagnostics: dict) -> list[dict]:
    """Permutation importance {net: {"importance": {task: {group: drop}}}} -> rows {net, task, group, drop}
    (the drop of the task's primary metric when the group is shuffled)."""
    return [
        {"net": net, "task": task, "group": g, "drop": float(v)}
        for net, tasks in _per_net(diagnostics, "importance")
        for task, groups in tasks.items()
        if isinstance(groups, dict)
        for g, v in groups.items()
    ]


def expert_rows(diagnostics: dict) -> list[dict]:
    """Expert utilisation {net: {"experts": {"usage": {task: [weight per expert]}, "experts": {task: [names]}}}}
    -> rows {net, task, expert, share}."""
    rows = []
    for net, experts in _per_net(diagnostics, "experts"):
        names = experts.get("experts") or {}
        for task, weights in (experts.get("usage") or {}).items():
            labels = names.get(task) if isinstance(names, dict) else names
            for i, w in enumerate(weights):
                rows.append(
                    {
                        "net": net,
                        "task": task,
                        "expert": labels[i] if labels and i < len(labels) else f"expert {i}",
                        "share": float(w),
                    }
                )
    return rows
