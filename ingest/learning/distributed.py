"""Training on a Ray cluster (`vidrec train --engine ray --ray-workers N`): the same training loop
(`models.trainer.fit`) on N Ray Train workers, data-parallel (docs/architecture.md, "Scaling out").

1. The driver (this process) has built the features and the split as local training does. It cuts the
   training impressions into N shards by user (one user's rows, so each visit's, stay on one worker; users
   go to the lightest shard, largest first, so the shards are about equal) and stages, in a folder every node reads
   (DATA_DIR/staging/train-<id>/): one Parquet file a shard, the validation impressions, the catalog tensors,
   the category split and what must be equal on every worker (which ids training saw, the class weights,
   the batch and steps per epoch, all from the whole training set) as safetensors and JSON. No pickle.
2. Ray Train's TorchTrainer starts N workers (gloo on CPU, NCCL on GPU nodes). Each reads its shard and
   runs `fit` with a `DataParallel` (models/parallel.py): rank 0's initial weights, gradients averaged
   after every backward pass, the same number of steps on every worker, the epoch's losses summed and rank
   0's validation score deciding early stopping. Rank 0 reports the best weights as a safetensors
   checkpoint.
3. The driver loads those weights into its network; training.py then does what it does after local
   training (test metrics, diagnostics, save). The staging folder, Ray's storage with it, is removed
   whatever happens, so a failed run (a dead worker: one error, no retry) leaves no model and no files.
"""

from __future__ import annotations

import contextlib
import json
import math
import os
import shutil
import sys
import tempfile
import uuid
from collections.abc import Sequence
from dataclasses import fields, replace
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import torch
from safetensors.torch import load_file, save_file

from models.data import CatalogTensors, Impressions
from models.multitask import MultiTaskNet, NetConfig
from models.parallel import DataParallel
from models.trainer import ClassWeights, FitResult, TrainConfig, class_weights, effective_batch_size, fit, mark_seen

from ..engine import EngineError, check_room, cluster_gpus, innermost, ray_cluster

WORKER_CPUS = 0.5  # per worker on CPU nodes: a fraction, so that a small cluster holds a pool of them
DEATHS = ("WorkerHealthCheckFailedError", "ActorDiedError", "ActorUnavailableError")  # Ray's words for a lost worker
TEST_EXIT = "VIDREC_TEST_TRAIN_EXIT"  # tests only: the rank that dies (os._exit) in the middle of epoch 2


def shard_by_user(users: torch.Tensor, workers: int) -> list[np.ndarray]:
    """Row indices per worker, in their original order: each user's rows (so each visit's) on one worker, users
    dealt largest first to the shard with the fewest rows so far (ties by user index: the same cut every time)."""
    ids, inverse, counts = np.unique(users.numpy(), return_inverse=True, return_counts=True)
    shard_of = np.zeros(len(ids), dtype=np.int64)
    sizes = np.zeros(workers, dtype=np.int64)
    for user in np.lexsort((ids, -counts)):  # largest first, ties by user index
        shard_of[user] = k = int(np.argmin(sizes))  # the first of the lightest
        sizes[k] += counts[user]
    assigned = shard_of[inverse.reshape(-1)]
    return [np.flatnonzero(assigned == k) for k in range(workers)]


def write_impressions(path: Path, data: Impressions) -> None:
    columns: dict[str, Any] = {}
    for f in fields(data):
        values = getattr(data, f.name).numpy()
        if values.ndim == 2:  # the click history: a fixed-size list a row
            columns[f.name] = pa.FixedSizeListArray.from_arrays(pa.array(values.reshape(-1)), values.shape[1])
        else:
            columns[f.name] = pa.array(values)
    pq.write_table(pa.table(columns), path)


def read_impressions(path: Path) -> Impressions:
    table = pq.read_table(path)
    out = {}
    for f in fields(Impressions):
        column = table.column(f.name).combine_chunks()
        if pa.types.is_fixed_size_list(column.type):
            width = column.type.list_size
            out[f.name] = torch.from_numpy(column.flatten().to_numpy().reshape(len(column), width).copy())
        else:
            out[f.name] = torch.from_numpy(column.to_numpy(zero_copy_only=False).copy())
    return Impressions(**out)


def fit_on_ray(
    net: MultiTaskNet,
    train: Impressions,
    val: Impressions,
    catalog: CatalogTensors,
    category_train: torch.Tensor,
    category_val: torch.Tensor,
    config: TrainConfig,
    description: str = "training",
    *,
    workers: int,
    staging: Path,
) -> FitResult:
    """`fit` on Ray Train workers: on return the network holds the best validation epoch's weights."""
    folder = Path(staging).resolve() / f"train-{uuid.uuid4().hex[:12]}"
    try:
        # Ray prints a lost worker's news on stdout: keep it on stderr, where `--json` output does not go
        with contextlib.redirect_stdout(sys.stderr), ray_cluster() as ray:
            gpus = cluster_gpus(ray)
            if gpus and workers > gpus:
                raise EngineError(f"--ray-workers {workers} asks for one GPU each, and the Ray cluster has {gpus} GPUs")
            if not gpus:
                check_room(ray, workers, WORKER_CPUS, "training workers")
            _stage(folder, net, train, val, catalog, category_train, category_val, config, workers, bool(gpus))
            weights, summary = _run(folder, workers, bool(gpus))
        net.set_catalog(catalog)
        net.load_state_dict(weights)
        net.eval()
        return FitResult(**summary)
    finally:
        shutil.rmtree(folder, ignore_errors=True)
        with contextlib.suppress(OSError):
            folder.parent.rmdir()  # the staging folder, when nothing else waits there


def _stage(
    folder: Path,
    net: MultiTaskNet,
    train: Impressions,
    val: Impressions,
    catalog: CatalogTensors,
    category_train: torch.Tensor,
    category_val: torch.Tensor,
    config: TrainConfig,
    workers: int,
    gpus: bool,
) -> None:
    """Everything the workers read, written to the staging folder (which the caller removes)."""
    folder.mkdir(parents=True)
    shards = shard_by_user(train.group, workers)
    for rank, rows in enumerate(shards):
        write_impressions(folder / f"train-{rank}.parquet", train.take(torch.from_numpy(rows)))
    write_impressions(folder / "val.parquet", val)
    mark_seen(net, train, catalog)
    weights = class_weights(train, catalog, category_train, net.config.n_categories, config.class_weighting)
    tensors = {f"catalog.{f.name}": getattr(catalog, f.name).contiguous() for f in fields(catalog)}
    tensors.update(
        category_train=category_train.contiguous(),
        category_val=category_val.contiguous(),
        user_seen=net.user_seen.clone(),
        video_seen=net.video_seen.clone(),
    )
    if weights.category is not None:
        tensors["category_weights"] = weights.category.contiguous()
    save_file(tensors, str(folder / "tensors.safetensors"))
    batch = math.ceil(effective_batch_size(config.batch_size, len(train)) / workers)
    steps = max(math.ceil(len(rows) / batch) for rows in shards)
    dying = os.environ.get(TEST_EXIT)
    job = {
        "net": net.config.to_dict(),
        "train": config.to_dict(),
        "batch_size": batch,
        "steps": steps,
        "pos_weight": weights.pos_weight,
        "nccl": gpus,
        "exit": None if dying is None else {"rank": int(dying), "step": steps + steps // 2},
    }
    (folder / "job.json").write_text(json.dumps(job), encoding="utf-8")


def _run(folder: Path, workers: int, gpus: bool) -> tuple[dict[str, torch.Tensor], dict]:
    """Run the workers; the best weights and fit's summary from rank 0's checkpoint."""
    from ray.train import Checkpoint, FailureConfig, RunConfig, ScalingConfig
    from ray.train.torch import TorchConfig, TorchTrainer

    trainer = TorchTrainer(
        train_loop_per_worker=_worker,
        train_loop_config={"folder": str(folder)},
        torch_config=TorchConfig(backend="nccl" if gpus else "gloo"),
        scaling_config=ScalingConfig(
            num_workers=workers,
            use_gpu=gpus,
            resources_per_worker={"CPU": 1, "GPU": 1} if gpus else {"CPU": WORKER_CPUS},
        ),
        run_config=RunConfig(
            name=folder.name,
            storage_path=str(folder / "ray"),
            failure_config=FailureConfig(max_failures=0),  # a dead worker fails the run: nothing half-trained
        ),
    )
    try:
        result = trainer.fit()
    except Exception as exc:
        raise EngineError(f"the Ray training failed: {_failure(exc, workers)}; nothing was saved") from exc
    checkpoint: Checkpoint | None = result.checkpoint
    if checkpoint is None:
        raise EngineError("the Ray training ended without a checkpoint from rank 0")
    with checkpoint.as_directory() as where:
        weights = load_file(os.path.join(where, "weights.safetensors"))
        summary = json.loads(Path(where, "fit.json").read_text(encoding="utf-8"))
    return weights, summary


def _failure(exc: Exception, workers: int) -> str:
    """The first cause in one line: a dead worker (whose peers then fail in their collectives) before a worker's
    own exception, else Ray's reason."""
    failures: dict[int, BaseException] = getattr(exc, "worker_failures", None) or {}
    dead = sorted(rank for rank, error in failures.items() if type(error).__name__ in DEATHS)
    if dead:
        return f"worker {dead[0]} of {workers} died (its process ended: out of memory, killed, or its node lost)"
    if failures:
        rank = min(failures)
        return f"worker {rank} of {workers}: {type(failures[rank]).__name__}: {innermost(failures[rank])}"
    return innermost(exc)


def _worker(loop_config: dict) -> None:
    """One Ray Train worker: its shard, `fit` in step with the others, and (rank 0) the best weights reported."""
    import ray.train
    import ray.train.torch

    context = ray.train.get_context()
    rank, world = context.get_world_rank(), context.get_world_size()
    folder = Path(loop_config["folder"])
    job = json.loads((folder / "job.json").read_text(encoding="utf-8"))
    tensors = load_file(str(folder / "tensors.safetensors"))
    catalog = CatalogTensors(**{f.name: tensors[f"catalog.{f.name}"] for f in fields(CatalogTensors)})
    # each worker its own dropout and category batches; rank 0's are the local engine's
    config = replace(TrainConfig(**job["train"]), seed=job["train"]["seed"] + 1_000_003 * rank, progress=False)
    torch.manual_seed(config.seed)
    net = MultiTaskNet(NetConfig(**job["net"]))
    parallel = DataParallel(
        rank=rank,
        world=world,
        batch_size=job["batch_size"],
        steps=job["steps"],
        user_seen=tensors["user_seen"],
        video_seen=tensors["video_seen"],
        class_weights=ClassWeights(job["pos_weight"], tensors.get("category_weights")),
        device=str(ray.train.torch.get_device()) if job["nccl"] else "cpu",
    )
    if job["exit"] and job["exit"]["rank"] == rank:
        _die_at(parallel, job["exit"]["step"])
    result = fit(
        net,
        read_impressions(folder / f"train-{rank}.parquet"),
        read_impressions(folder / "val.parquet"),
        catalog,
        tensors["category_train"],
        tensors["category_val"],
        config,
        parallel=parallel,
    )
    rate = parallel.total(result.examples_per_second)  # every worker's examples count
    metrics = {"best_epoch": result.best_epoch, "epochs_run": result.epochs_run}
    if rank != 0:
        ray.train.report(metrics)  # every worker reports; only rank 0 with the weights
        return
    with tempfile.TemporaryDirectory() as where:
        weights = {k: v.contiguous() for k, v in net.state_dict().items()}
        save_file(weights, os.path.join(where, "weights.safetensors"))
        summary = dict(
            best_epoch=result.best_epoch,
            epochs_run=result.epochs_run,
            curves=result.curves,
            seconds=result.seconds,
            examples_per_second=rate,
        )
        Path(where, "fit.json").write_text(json.dumps(summary), encoding="utf-8")
        ray.train.report(metrics, checkpoint=ray.train.Checkpoint.from_directory(where))


def _die_at(parallel: DataParallel, step: int) -> None:
    """Tests only (VIDREC_TEST_TRAIN_EXIT): this worker's process ends without a word at the given step."""
    average = parallel.gradients
    calls = [0]

    def gradients(params: Sequence[torch.Tensor]) -> None:
        calls[0] += 1
        if calls[0] >= step:
            os._exit(1)
        average(params)

    parallel.gradients = gradients  # type: ignore[method-assign]
