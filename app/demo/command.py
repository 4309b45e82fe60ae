"""`vidrec demo`: the whole product on a generated world, end to end, in one command.

It lives in `app/` because it orchestrates every floor below: the world, ingest, tune-clip, training,
the indexes, and (in the command) the web UI. Each step is skipped when its result is already there,
so a second `vidrec demo` goes straight to the UI.
"""

from __future__ import annotations

import json
import logging

from index.api import Vidrec
from ingest.interactions import import_interactions
from ingest.learning import TrainOptions, train_and_save
from ingest.pipeline import IngestOptions, ingest
from ingest.store import Store
from ingest.tune import TuneOptions, tune_catalog_clip

from .truth import Truth, truth_in
from .world import DEFAULT_USERS, DEFAULT_VIDEOS, generate_world

DEMO_CLIP = "tiny"  # self-contained and offline; tune-clip teaches it the world
DEMO_VIDEOS, DEMO_USERS = DEFAULT_VIDEOS, DEFAULT_USERS
logger = logging.getLogger(__name__)


def run_demo(
    store: Store,
    *,
    videos: int = DEMO_VIDEOS,
    users: int = DEMO_USERS,
    seed: int = 0,
    clip: str | None = None,
    progress: bool = True,
) -> dict:
    world_dir = store.paths.demo_world
    params = {"videos": videos, "users": users, "seed": seed}
    params_file = world_dir / "demo-params.json"
    if not (params_file.is_file() and json.loads(params_file.read_text()) == params):
        logger.info("building the demo world (%d videos, %d users) in %s", videos, users, world_dir)
        generate_world(world_dir, videos=videos, users=users, seed=seed, progress=progress)
        params_file.write_text(json.dumps(params))
    manifest, interactions = world_dir / "manifest.csv", world_dir / "interactions.csv"

    logger.info("ingesting the demo world")
    if clip is None and store.clips.current() is None:
        clip = DEMO_CLIP
    report = ingest(store, manifest=manifest, options=IngestOptions(clip=clip, progress=progress))
    logger.info("importing its interaction log")
    imported = import_interactions(store, interactions)
    metrics = {}
    current = store.clips.current()
    assert current is not None
    if current.parent is None and current.spec == DEMO_CLIP:
        logger.info("tuning the tiny CLIP on the demo world's frames and texts")
        tuned = tune_catalog_clip(store, TuneOptions(seed=seed, progress=progress))
        metrics["clip"] = {"before": tuned["before"], "after": tuned["after"], "replaced": tuned["replaced"]}
        current = store.clips.current()
        assert current is not None
    if not store.models.exists_for(current.version):
        logger.info("training the multi-task model")
        trained = train_and_save(store, TrainOptions(seed=seed, progress=progress))
        metrics["model"] = {"model_id": trained["model_id"], "arch": trained["arch"], **trained["metrics"]}
    logger.info("building the indexes")
    Vidrec(store.data_dir).refresh_indexes()
    status = store.status()
    return {
        "videos": status["videos"],
        "users": status["users"],
        "interactions": status["interactions"],
        "metrics": metrics,
        "ingested": report.ingested,
        "failed": report.failed,
        "imported": imported.imported,
        "clip": status["clip"],
        "data_dir": str(store.data_dir),
    }


def demo_truth(store: Store) -> Truth | None:
    """The ground truth of the demo world this data dir holds (made by `vidrec demo`), or None."""
    return truth_in(store.paths.demo_world)


def metric_lines(metrics: dict) -> list[str]:
    """What the demo's tuning and training reached, in two lines for the terminal (the JSON has it all)."""

    def num(value, digits=2):
        return "n/a" if value is None else f"{value:.{digits}f}"

    lines = []
    if "clip" in metrics:
        before, after = metrics["clip"]["before"], metrics["clip"]["after"]
        lines.append(
            f"{'tune-clip':14}held-out category precision@10 {num(before['category_p10'])} -> "
            f"{num(after['category_p10'])}, recall@5 by title {num(before['recall_at_5'])} -> "
            f"{num(after['recall_at_5'])}"
        )
    if "model" in metrics:
        m = metrics["model"]
        lines.append(
            f"{'model':14}{m['arch']}: test click AUC {num(m['click'].get('auc'), 3)}, like AUC "
            f"{num(m['like'].get('auc'), 3)}, category accuracy {num(m['category'].get('accuracy'))}"
        )
    return lines
