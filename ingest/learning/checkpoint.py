"""A trained model on disk and back: the folder `models/<model_id>/` (safetensors weights, JSON config,
metrics, curves and diagnostics) plus the store's models row.

Loading checks everything a checkpoint could get wrong (format, CLIP version, weights that do not fit
the configuration) and says in one line what to do: retrain.
"""

from __future__ import annotations

import json
import logging
import shutil
import time
import uuid
from dataclasses import asdict
from typing import Any

import torch
from safetensors import SafetensorError
from safetensors.torch import load_file, save_file

from models.multitask import MultiTaskNet, NetConfig

from ..store import ModelFiles, ModelRecord, Store, checksum_differs, ensure, sha256_file
from .errors import ModelError
from .features import HISTORY_LENGTH, Vocabulary, read_catalog
from .scoring import LoadedModel
from .training import Trained, TrainOptions, train_config, train_model

FORMAT = 1  # of config.json and the weights' names
logger = logging.getLogger(__name__)


def save_model(store: Store, trained: Trained) -> str:
    """Write the model's folder and record it in the store; returns its model_id. The folder is written under a
    temporary name and renamed when whole, so a failed save (a full disk) leaves no half-written model."""
    model_id = f"{time.strftime('%Y%m%d-%H%M%S', time.gmtime())}-{trained.options.arch}-{uuid.uuid4().hex[:6]}"
    relative = store.paths.model_name(model_id)
    files = store.paths.model_files(relative)
    partial = ModelFiles(files.folder.with_name(f".{model_id}.partial"))
    weights = {
        f"{name}.{key}": value.contiguous()
        for name, net in trained.nets.items()
        for key, value in net.state_dict().items()
    }
    try:
        save_file(weights, str(ensure(partial.weights)))
        config = _config(model_id, trained, sha256_file(partial.weights))
        partial.config.write_text(json.dumps(config, indent=1), encoding="utf-8")
        partial.metrics.write_text(json.dumps(trained.metrics, indent=1), encoding="utf-8")
        partial.curves.write_text(json.dumps(trained.curves), encoding="utf-8")
        partial.diagnostics.write_text(json.dumps(trained.diagnostics, indent=1), encoding="utf-8")
        partial.folder.rename(files.folder)
        store.models.add(
            model_id, trained.features.catalog.clip_version, trained.options.arch, relative, config, trained.metrics
        )
    except BaseException:
        shutil.rmtree(partial.folder, ignore_errors=True)
        shutil.rmtree(files.folder, ignore_errors=True)
        raise
    return model_id


def _config(model_id: str, trained: Trained, weights_sha256: str) -> dict:
    """What a model is (config.json, and the models row that loading reads)."""
    options = asdict(trained.options)
    options["groups"] = list(options["groups"])
    return {
        "format": FORMAT,
        "model_id": model_id,
        "arch": trained.options.arch,
        "clip_version": trained.features.catalog.clip_version,
        "nets": {name: net.config.to_dict() for name, net in trained.nets.items()},
        "vocabulary": trained.features.vocabulary.to_dict(),
        "options": options,
        "history_length": int(trained.features.impressions.history.shape[1]),
        "train": train_config(trained.options).to_dict(),
        "split": trained.split.summary(),
        "best_epochs": {n: f.best_epoch for n, f in trained.fits.items()},
        "seconds": round(trained.seconds, 1),
        "examples_per_second": {n: round(f.examples_per_second) for n, f in trained.fits.items()},
        "weights_sha256": weights_sha256,
    }


def load_model(store: Store, model_id: str | None = None) -> LoadedModel:
    """The newest model trained on the catalog's current CLIP version (or the one named), ready to score. A newest
    model whose files are damaged or missing gives way to the newest good one of the same CLIP version, with a
    warning (`LoadedModel.warnings`). Raises ModelError: no model yet, only stale ones (another CLIP: retrain),
    or no good one."""
    records = store.models.all()
    if model_id is not None:
        records = [r for r in records if r.model_id == model_id]
        if not records:
            raise ModelError(f"no model {model_id!r} in this catalog")
    if not records:
        raise ModelError("no trained model: run `vidrec train`")
    clip = store.clips.current()
    current = None if clip is None else clip.version
    usable = [r for r in records if r.clip_version == current]
    if not usable:
        raise ModelError(
            f"the model {records[0].model_id} was trained on CLIP version {records[0].clip_version}, "
            f"but the catalog's embeddings are now CLIP version {current}: retrain with `vidrec train`"
        )
    failures: list[str] = []
    for record in usable:
        try:
            model = _load(store, record, current)
        except ModelError as exc:
            failures.append(str(exc))
            continue
        if failures:
            model.warnings = [*failures, f"serving the older model {model.model_id} instead"]
            for warning in model.warnings:
                logger.warning("%s", warning)
        return model
    raise ModelError(failures[0] if len(failures) == 1 else f"{failures[0]} (and {len(failures) - 1} older ones too)")


def _load(store: Store, record: ModelRecord, clip_version: int | None) -> LoadedModel:
    files = store.paths.model_files(record.path)
    config = record.config  # the row's copy: config.json beside the weights is for people to read
    retrain = "; retrain with `vidrec train`"
    try:
        if checksum_differs(files.weights, config.get("weights_sha256")):
            raise ModelError(f"model {record.model_id}'s weights are damaged (their checksum differs){retrain}")
        weights = load_file(str(files.weights))
    except (OSError, ValueError, SafetensorError) as exc:
        raise ModelError(f"model {record.model_id} cannot be read ({type(exc).__name__}: {exc}){retrain}") from None
    if not all(bool(torch.isfinite(value).all()) for value in weights.values() if value.is_floating_point()):
        raise ModelError(f"model {record.model_id}'s weights hold non-finite numbers (a damaged file){retrain}")
    if config.get("format") != FORMAT or config.get("clip_version") != clip_version:
        raise ModelError(f"model {record.model_id} was saved in another format or for another CLIP version{retrain}")
    vocabulary = Vocabulary(**config["vocabulary"])
    catalog, _ = read_catalog(store, vocabulary)
    nets = {}
    for name, net_config in config["nets"].items():
        try:
            net = MultiTaskNet(NetConfig(**net_config))
            state = {key[len(name) + 1 :]: value for key, value in weights.items() if key.startswith(name + ".")}
            net.load_state_dict(state, strict=True)
            net.set_catalog(catalog.tensors)
        except (TypeError, ValueError, RuntimeError) as exc:
            reason = " ".join(str(exc).split())[:200]
            raise ModelError(
                f"model {record.model_id}'s weights do not match its configuration ({reason}); "
                "retrain with `vidrec train`"
            ) from None
        net.eval()
        nets[name] = net
    return LoadedModel(
        store,
        record.model_id,
        int(config["clip_version"]),
        config,
        record.metrics,
        nets,
        vocabulary,
        catalog,
        int(config.get("history_length", HISTORY_LENGTH)),
    )


def options_of(model: LoadedModel) -> TrainOptions:
    """The options a saved model was trained with."""
    saved: dict[str, Any] = dict(model.config["options"])
    saved["groups"] = tuple(saved["groups"])
    return TrainOptions(**saved)


def train_and_save(store: Store, options: TrainOptions | None = None) -> dict:
    """`vidrec train`: train, evaluate, save; the command's JSON. Training reads one snapshot of the store and
    holds no lock (ingests and imports go on meanwhile); the save takes the writer lock."""
    trained = train_model(store, options)
    with store.writing("train"):
        current = store.clips.current()
        if current is None or current.version != trained.features.catalog.clip_version:
            raise ModelError(
                f"the catalog's CLIP changed while training (now version {current and current.version}, trained on "
                f"{trained.features.catalog.clip_version}): train again"
            )
        model_id = save_model(store, trained)
    return {
        "model_id": model_id,
        "clip": trained.features.catalog.clip_version,
        "arch": trained.options.arch,
        "balance": trained.options.balance,
        "pcgrad": trained.options.pcgrad,
        "metrics": trained.metrics,
        "split": trained.split.summary(),
        "best_epochs": {n: f.best_epoch for n, f in trained.fits.items()},
        "diagnostics": trained.diagnostics,
        "seconds": round(trained.seconds, 1),
        "examples_per_second": {n: round(f.examples_per_second) for n, f in trained.fits.items()},
    }
