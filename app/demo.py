"""`vidrec demo`: the whole product on a generated world, end to end, in one command.

It lives in `app/` because it orchestrates every floor below: the world, ingest, tune-clip, training,
the indexes, and (in the command) the web UI. Each step is skipped when its result is already there,
so a second `vidrec demo` goes straight to the UI.
"""
from __future__ import annotations

import json
import sys

from index.api import Vidrec
from ingest.demo import WORLD_DIR, generate_world
from ingest.interactions import import_interactions
from ingest.pipeline import IngestOptions, ingest
from ingest.store import Store
from ingest.training import TrainOptions, train_and_save
from ingest.tune import TuneOptions, tune_catalog_clip

DEMO_CLIP = "tiny"  # self-contained and offline; tune-clip teaches it the world


def run_demo(store: Store, *, videos: int, users: int, seed: int, clip: str | None = None,
             progress: bool = True) -> dict:
    world_dir = store.data_dir / WORLD_DIR
    params = {"videos": videos, "users": users, "seed": seed}
    params_file = world_dir / "demo-params.json"
    if not (params_file.is_file() and json.loads(params_file.read_text()) == params):
        _say(f"building the demo world ({videos} videos, {users} users) in {world_dir}", progress)
        generate_world(world_dir, videos=videos, users=users, seed=seed, progress=progress)
        params_file.write_text(json.dumps(params))
    manifest, log = world_dir / "manifest.csv", world_dir / "interactions.csv"

    _say("ingesting the demo world", progress)
    if clip is None and store.clip_version() is None:
        clip = DEMO_CLIP
    report = ingest(store, manifest=manifest, options=IngestOptions(clip=clip, progress=progress))
    _say("importing its interaction log", progress)
    imported = import_interactions(store, log)
    metrics = {}
    clip = store.clip_version()
    if clip.parent is None and clip.spec == DEMO_CLIP:
        _say("tuning the tiny CLIP on the demo world's frames and texts", progress)
        tuned = tune_catalog_clip(store, TuneOptions(seed=seed, progress=progress))
        metrics["clip"] = {"before": tuned["before"], "after": tuned["after"], "replaced": tuned["replaced"]}
    current = store.clip_version().version
    if not store.db.execute("SELECT 1 FROM models WHERE clip_version = ?", (current,)).fetchone():
        _say("training the multi-task model", progress)
        trained = train_and_save(store, TrainOptions(seed=seed, progress=progress))
        metrics["model"] = {"model_id": trained["model_id"], "arch": trained["arch"], **trained["metrics"]}
    _say("building the indexes", progress)
    Vidrec(store.data_dir).refresh_indexes()
    status = store.status()
    return {"videos": status["videos"], "users": status["users"], "interactions": status["interactions"],
            "metrics": metrics, "ingested": report.ingested, "failed": report.failed,
            "imported": imported.imported, "clip": status["clip"], "data_dir": str(store.data_dir)}


def metric_lines(metrics: dict) -> list[str]:
    """What the demo's tuning and training reached, in two lines for the terminal (the JSON has it all)."""
    def num(value, digits=2):
        return "n/a" if value is None else f"{value:.{digits}f}"

    lines = []
    if "clip" in metrics:
        before, after = metrics["clip"]["before"], metrics["clip"]["after"]
        lines.append(f"{'tune-clip':14}held-out category precision@10 {num(before['category_p10'])} -> "
                     f"{num(after['category_p10'])}, recall@5 by title {num(before['recall_at_5'])} -> "
                     f"{num(after['recall_at_5'])}")
    if "model" in metrics:
        m = metrics["model"]
        lines.append(f"{'model':14}{m['arch']}: test click AUC {num(m['click'].get('auc'), 3)}, like AUC "
                     f"{num(m['like'].get('auc'), 3)}, category accuracy {num(m['category'].get('accuracy'))}")
    return lines


def _say(message: str, progress: bool) -> None:
    if progress:
        print(f"[demo] {message}", file=sys.stderr)
