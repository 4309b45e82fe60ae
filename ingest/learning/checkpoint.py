"""A trained model on disk and back: the folder `models/<model_id>/` (safetensors weights, the click graph's
embeddings, JSON config, metrics, curves and diagnostics) plus the store's models row.

Loading checks everything a checkpoint could get wrong (format, CLIP version, weights that do not fit
the configuration) and says in one line what to do: retrain. Which model serves is decided here once
(`serving_model_id`): the pinned one (`vidrec models use`) when it can, else the newest good one of the
current CLIP version.
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
from safetensors import SafetensorError, safe_open
from safetensors.torch import load_file, save_file

from models.multitask import MultiTaskNet, NetConfig

from ..store import ModelFiles, ModelRecord, Store, checksum_differs, ensure, sha256_file
from .errors import ModelError
from .features import HISTORY_LENGTH, Vocabulary, read_catalog
from .graph import GraphEmbeddings
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
        graph_sha256 = None
        if trained.graph is not None:
            tensors, metadata = trained.graph.to_tensors()
            save_file(tensors, str(partial.graph), metadata=metadata)
            graph_sha256 = sha256_file(partial.graph)
        config = _config(model_id, trained, sha256_file(partial.weights), graph_sha256)
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


def _config(model_id: str, trained: Trained, weights_sha256: str, graph_sha256: str | None) -> dict:
    """What a model is (config.json, and the models row that loading reads). `graph_sha256` only where the
    model has a graph: loading a model without it (saved before graphs, or `--no-graph`) gives no graph."""
    options = asdict(trained.options)
    options["groups"] = list(options["groups"])
    for where in ("engine", "workers"):  # where it trained, not what: a retrain (forget) runs locally
        options.pop(where)
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
        **(
            {"graph_sha256": graph_sha256, "graph_seconds": round(trained.graph_seconds or 0.0, 2)}
            if graph_sha256
            else {}
        ),
    }


def load_model(store: Store, model_id: str | None = None) -> LoadedModel:
    """The model that serves (see `serving_model_id`), or the one named (`--model`), ready to score. A model
    whose files are damaged or missing gives way to the next one in line, with a warning (`LoadedModel.warnings`);
    a named one does not. Raises ModelError: no model yet, only stale ones (another CLIP: retrain), an unknown
    or stale named one, or no good one."""
    current = store.clip_version
    if model_id is not None:
        record = next((r for r in store.models.all() if r.model_id == model_id), None)
        if record is None:
            raise ModelError(f"no model {model_id!r} in this catalog (`vidrec models` lists them)")
        if record.clip_version != current:
            raise ModelError(_stale(record, current))
        return _load(store, record, current)
    candidates, notes = _candidates(store)
    failures: list[str] = []
    for record in candidates:
        try:
            model = _load(store, record, current)
        except ModelError as exc:
            failures.append(str(exc))
            continue
        model.warnings = _warnings(store, notes, failures, model.model_id)
        for warning in model.warnings:
            logger.warning("%s", warning)
        return model
    raise ModelError(failures[0] if len(failures) == 1 else f"{failures[0]} (and {len(failures) - 1} older ones too)")


def serving_model_id(store: Store) -> str | None:
    """The id of the model `load_model(store)` serves now, None if none can: the pinned model (`vidrec models
    use`) when it fits the current CLIP version and its files check out, else the newest such model. The one
    place that decides, so that every caller agrees with what `recommend` serves."""
    try:
        candidates, _ = _candidates(store)
    except ModelError:
        return None
    current = store.clip_version
    return next((r.model_id for r in candidates if _problem(store, r, current) is None), None)


def model_list(store: Store) -> list[dict]:
    """`vidrec models`: every model, newest first, with its test metrics, whether it fits the current CLIP
    version and its files check out (`usable`, else `reason`), whether it is pinned and whether it serves."""
    with store.snapshot():
        current, pinned = store.clip_version, store.models.pinned()
        serving = serving_model_id(store)
        out = []
        for r in store.models.all():
            reason = _problem(store, r, current)
            out.append(
                {
                    "model_id": r.model_id,
                    "created_at": r.created_at,
                    "clip_version": r.clip_version,
                    "arch": r.arch,
                    "metrics": r.metrics,
                    "usable": reason is None,
                    "reason": reason,
                    "pinned": r.model_id == pinned,
                    "serving": r.model_id == serving,
                }
            )
        return out


def pin_model(store: Store, model_id: str | None) -> dict:
    """`vidrec models use`: pin a model for serving, or (None) go back to the newest good one. Refused for an
    unknown model, one of another CLIP version or one whose files do not check out."""
    with store.writing("models use"), store.transaction():
        if model_id is not None:
            record = next((r for r in store.models.all() if r.model_id == model_id), None)
            if record is None:
                raise ModelError(f"no model {model_id!r} in this catalog (`vidrec models` lists them)")
            problem = _problem(store, record, store.clip_version)
            if problem is not None:
                raise ModelError(problem)
        store.models.pin(model_id)
        return {"pinned": model_id, "serving": serving_model_id(store)}


def _candidates(store: Store) -> tuple[list[ModelRecord], list[str]]:
    """The models that may serve, in the order they are tried (the pinned one first when it fits the current CLIP
    version, then the newest first), and the lines that say why a pin is ignored. Raises ModelError when no
    model fits the current CLIP version."""
    records = store.models.all()
    if not records:
        raise ModelError("no trained model: run `vidrec train`")
    current = store.clip_version
    usable = [r for r in records if r.clip_version == current]
    pinned_id = store.models.pinned()
    notes: list[str] = []
    if pinned_id is not None:
        pinned = next((r for r in records if r.model_id == pinned_id), None)
        if pinned is None:
            notes.append(f"the pinned model {pinned_id} is no longer in the catalog: the pin is ignored")
        elif pinned.clip_version != current:
            notes.append(
                f"the pinned model {pinned_id} was trained on CLIP version {pinned.clip_version}, not the current "
                f"{current}: the pin is ignored"
            )
        else:
            usable = [pinned, *(r for r in usable if r is not pinned)]
    if not usable:
        raise ModelError(_stale(records[0], current))
    return usable, notes


def _warnings(store: Store, notes: list[str], failures: list[str], served: str) -> list[str]:
    """What a reader of the served model should know: an ignored pin, damaged models passed over."""
    if not failures:
        return list(notes)
    pinned = store.models.pinned()
    if pinned is not None and pinned != served and not notes:
        return [*failures, f"the pinned model {pinned} cannot serve: the pin is ignored; serving {served} instead"]
    return [*notes, *failures, f"serving the older model {served} instead"]


def _stale(record: ModelRecord, current: int | None) -> str:
    return (
        f"the model {record.model_id} was trained on CLIP version {record.clip_version}, but the catalog's "
        f"embeddings are now CLIP version {current}: retrain with `vidrec train` (or go back with `vidrec clip use "
        f"{record.clip_version}`)"
    )


def _problem(store: Store, record: ModelRecord, clip_version: int | None) -> str | None:
    """Why a model cannot serve with this CLIP version (stale, damaged, not matching its configuration); None
    when it can. The checks of `_load`, without reading the catalog."""
    if record.clip_version != clip_version:
        return _stale(record, clip_version)
    try:
        _nets(record, _weights(store, record, clip_version))
        _graph(store, record)
    except ModelError as exc:
        return str(exc)
    return None


def _weights(store: Store, record: ModelRecord, clip_version: int | None) -> dict[str, torch.Tensor]:
    """The model's weights, checked: its checksum, finite numbers, its format and CLIP version."""
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
    return weights


def _graph(store: Store, record: ModelRecord) -> GraphEmbeddings | None:
    """The model's click graph, checked like its weights (checksum, finite numbers, format); None for a model
    saved without one."""
    expected = record.config.get("graph_sha256")
    if not expected:
        return None
    path = store.paths.model_files(record.path).graph
    retrain = "; retrain with `vidrec train`"
    try:
        if checksum_differs(path, expected):
            raise ModelError(f"model {record.model_id}'s graph is damaged (its checksum differs){retrain}")
        with safe_open(str(path), "pt") as f:
            metadata, tensors = f.metadata(), {key: f.get_tensor(key) for key in f.keys()}
        return GraphEmbeddings.from_tensors(tensors, metadata)
    except (OSError, ValueError, SafetensorError) as exc:
        reason = " ".join(f"{type(exc).__name__}: {exc}".split())[:200]
        raise ModelError(f"model {record.model_id}'s graph cannot be read ({reason}){retrain}") from None


def _nets(record: ModelRecord, weights: dict[str, torch.Tensor]) -> dict[str, MultiTaskNet]:
    """The model's networks from its configuration and weights (no catalog yet)."""
    nets = {}
    for name, net_config in record.config["nets"].items():
        try:
            net = MultiTaskNet(NetConfig.saved(net_config))
            state = {key[len(name) + 1 :]: value for key, value in weights.items() if key.startswith(name + ".")}
            net.load_state_dict(state, strict=True)
        except (TypeError, ValueError, RuntimeError) as exc:
            raise _mismatch(record, exc) from None
        nets[name] = net
    return nets


def _mismatch(record: ModelRecord, exc: Exception) -> ModelError:
    reason = " ".join(str(exc).split())[:200]
    return ModelError(
        f"model {record.model_id}'s weights do not match its configuration ({reason}); retrain with `vidrec train`"
    )


def _load(store: Store, record: ModelRecord, clip_version: int | None) -> LoadedModel:
    nets = _nets(record, _weights(store, record, clip_version))
    graph = _graph(store, record)
    config = record.config
    vocabulary = Vocabulary(**config["vocabulary"])
    catalog, _ = read_catalog(store, vocabulary)
    for net in nets.values():
        try:
            net.set_catalog(catalog.tensors)
        except (TypeError, ValueError, RuntimeError) as exc:
            raise _mismatch(record, exc) from None
        net.eval()
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
        graph=None if graph is None else graph.forgetting(store.interactions.forgotten_hashes()),
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
        "graph_seconds": None if trained.graph_seconds is None else round(trained.graph_seconds, 2),
        "engine": trained.options.engine,
        "workers": trained.options.workers,
    }
