"""Recommendations for every user in one context, written as one Parquet file (`vidrec recommend
--all-users`): what a platform precomputes every night instead of answering one request at a time.

Each user's rows are exactly what `recommend` gives that user in that context: the same `Vidrec.recommend`
is called, with the context's missing device and region taken from the user's own usual ones (never "now":
the hour and weekday are required). The engine decides where it runs: `local` loops here over one
read-only API object; `ray` sends batches of users to a pool of Ray Data actors, each holding its own
read-only API object (a model replica), and keeps the input order, so both engines write the same file.
The data dir must then be readable by every node at the same path.
"""

from __future__ import annotations

import json
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
from tqdm import tqdm

from ingest.engine import check_engine, check_room, ray_cluster
from ingest.store import Store

from .api import Vidrec

SCHEMA = pa.schema(
    [
        ("user_id", pa.string()),
        ("rank", pa.int32()),  # 1 = first
        ("video_id", pa.string()),
        ("title", pa.string()),
        ("score", pa.float64()),  # the fused score the list is ranked by (before diversification)
        ("scores", pa.string()),  # JSON: {task: prediction}
        ("reasons", pa.list_(pa.string())),
        ("category", pa.string()),
        ("cold_start", pa.bool_()),
        ("hour", pa.int32()),
        ("weekday", pa.int32()),
        ("device", pa.string()),
        ("region", pa.string()),
        ("model_id", pa.string()),
    ]
)
USERS_PER_BATCH = 256
ACTOR_CPUS = 0.5  # per model replica (Ray): fractions, so that a small cluster holds them


@dataclass(frozen=True)
class BatchContext:
    """The context of a batch: hour and weekday for everyone; device and region where given."""

    hour: int
    weekday: int
    device: str | None = None
    region: str | None = None


def user_rows(api: Vidrec, user_ids: list[str], context: BatchContext, k: int, model_id: str | None) -> pa.Table:
    """The rows of these users' lists, as `recommend` gives them, in the order of `user_ids`."""
    rows: dict[str, list] = {name: [] for name in SCHEMA.names}
    for user_id in user_ids:
        own = api.context(user_id, context.hour, context.weekday, context.device, context.region)
        result = api.recommend(user_id, own, k, model_id=model_id)
        for rank, item in enumerate(result["items"], 1):
            values = {
                "user_id": user_id,
                "rank": rank,
                "video_id": item["video_id"],
                "title": item["title"],
                "score": item["score"],
                "scores": json.dumps(item["scores"], sort_keys=True),
                "reasons": item["reasons"],
                "category": item["category"],
                "cold_start": result["cold_start"],
                "model_id": result["model_id"],
                **own.__dict__,
            }
            for name in SCHEMA.names:
                rows[name].append(values[name])
    return pa.Table.from_pydict(rows, schema=SCHEMA)


class UserBatches:
    """A Ray Data actor: one read-only API object (the model, its indexes) for every batch it is given."""

    def __init__(self, data_dir: str, context: BatchContext, k: int, model_id: str | None):
        self.api = Vidrec(data_dir, read_only=True)
        self.context, self.k, self.model_id = context, k, model_id

    def __call__(self, batch: dict) -> pa.Table:
        return user_rows(self.api, list(batch["user_id"]), self.context, self.k, self.model_id)


def recommend_all_users(
    data_dir: Path | str,
    context: BatchContext,
    out: Path | str,
    k: int,
    *,
    model_id: str | None = None,
    engine: str = "local",
    workers: int | None = None,
    progress: bool = True,
    users_per_batch: int = USERS_PER_BATCH,
) -> dict:
    """Write every user's top k in `context` to `out` (Parquet); returns {users, rows, out, seconds}."""
    check_engine(engine)
    started = time.perf_counter()
    store = Store(data_dir, create=False, read_only=True)
    user_ids = store.interactions.user_ids()
    store.close()
    out = Path(out)
    out.parent.mkdir(parents=True, exist_ok=True)
    temporary = out.with_name(f".{out.name}.partial")
    rows = 0
    try:
        with pq.ParquetWriter(temporary, SCHEMA) as writer, _progress(len(user_ids) * k, progress) as bar:
            for table in _tables(data_dir, user_ids, context, k, model_id, engine, workers, users_per_batch):
                writer.write_table(table)
                rows += table.num_rows
                bar.update(table.num_rows)
    except BaseException:
        temporary.unlink(missing_ok=True)
        raise
    temporary.replace(out)  # a reader never sees half a file
    return {"users": len(user_ids), "rows": rows, "out": str(out), "seconds": round(time.perf_counter() - started, 3)}


def _tables(
    data_dir: Path | str,
    user_ids: list[str],
    context: BatchContext,
    k: int,
    model_id: str | None,
    engine: str,
    workers: int | None,
    size: int,
) -> Iterator[pa.Table]:
    """The rows, a batch of users at a time, in the order of `user_ids`."""
    batches = [user_ids[i : i + size] for i in range(0, len(user_ids), size)]
    if not batches:
        return
    if engine == "local":
        api = Vidrec(data_dir, read_only=True)
        for batch in batches:
            yield user_rows(api, batch, context, k, model_id)
        return
    with ray_cluster() as ray:
        import ray.data

        workers = workers or 1
        check_room(ray, workers, ACTOR_CPUS, "model replicas")
        ray.data.DataContext.get_current().execution_options.preserve_order = True  # the local engine's order
        dataset = ray.data.from_items([{"user_id": u} for u in user_ids], override_num_blocks=max(1, len(batches)))
        dataset = dataset.map_batches(
            UserBatches,
            batch_size=size,
            batch_format="numpy",
            fn_constructor_kwargs={
                "data_dir": str(Path(data_dir).resolve()),
                "context": context,
                "k": k,
                "model_id": model_id,
            },
            compute=ray.data.ActorPoolStrategy(size=workers),
            num_cpus=ACTOR_CPUS,
        )
        for table in dataset.iter_batches(batch_format="pyarrow", batch_size=None):
            yield table.select(SCHEMA.names).cast(SCHEMA)


def _progress(total: int, enabled: bool) -> tqdm:
    return tqdm(total=total, unit="row", desc="recommend", file=sys.stderr, disable=not enabled, dynamic_ncols=True)
