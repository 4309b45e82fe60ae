"""`vidrec train`, `vidrec eval`, `vidrec score` and `vidrec models`: thin wrappers over `ingest/learning/`
(docs/cli.md)."""

from __future__ import annotations

from enum import Enum
from pathlib import Path

import typer

from app.common import EngineOption, JsonOption, emit, open_api, open_store, progress_wanted, run
from app.demo.command import demo_truth
from ingest.learning import (
    ARCH_CHOICES,
    BALANCE_CHOICES,
    DEFAULT_ARCH,
    DEFAULT_BALANCE,
    DEFAULT_EPOCHS,
    TrainOptions,
    load_model,
)
from ingest.learning.checkpoint import model_list, pin_model
from ingest.learning.evaluation import ablation_table, model_table, save_ablations
from ingest.learning.scoring import score_file

# The choices come from the code's own registries, so a new architecture or balancer shows up here by itself.
Arch = Enum("Arch", {name: name for name in ARCH_CHOICES}, type=str)  # type: ignore[misc]
Balance = Enum("Balance", {name: name for name in BALANCE_CHOICES}, type=str)  # type: ignore[misc]
ModelOption = typer.Option(None, "--model", help="Use this model (an id from `vidrec models`) for this call.")


def _number(value) -> str:
    return "-" if value is None else f"{value:.4f}" if isinstance(value, float) else str(value)


def metrics_text(metrics: dict) -> str:
    lines = []
    for task, values in metrics.items():
        shown = ", ".join(f"{k} {_number(v)}" for k, v in values.items() if k != "n" and v is not None)
        lines.append(f"  {task:10} {shown}")
    return "\n".join(lines)


def table_text(rows: list[dict]) -> str:
    lines = [f"{'name':34} {'task':10} {'metric':20} {'value':>8} {'std':>7} {'vs single':>9}"]
    for r in rows:
        delta = r.get("delta_vs_single_task")
        lines.append(
            f"{r['name'][:34]:34} {r['task']:10} {r['metric']:20} {_number(r['value']):>8} "
            f"{_number(r.get('std')):>7} {'' if delta is None else f'{delta:+.4f}':>9}"
        )
    return "\n".join(lines)


def models_text(models: list[dict]) -> str:
    lines = []
    for m in models:
        auc = (m["metrics"].get("click") or {}).get("auc")
        flags = [name for name in ("serving", "pinned") if m[name]]
        flags += [] if m["usable"] else [m["reason"]]
        lines.append(
            f"{'*' if m['serving'] else ' '} {m['model_id']}  {m['created_at']}  CLIP {m['clip_version']}  "
            f"{m['arch']:13} click AUC {_number(auc)}" + (f"  ({'; '.join(flags)})" if flags else "")
        )
    return "\n".join(lines) or "no trained model: run `vidrec train`"


def register(app: typer.Typer) -> None:
    @app.command("train")
    def train_command(
        arch: Arch = typer.Option(Arch(DEFAULT_ARCH), "--arch", help="Network architecture."),
        balance: Balance = typer.Option(Balance(DEFAULT_BALANCE), "--balance", help="Task balancing."),
        pcgrad: bool = typer.Option(False, "--pcgrad", help="Project conflicting task gradients (PCGrad)."),
        seed: int = typer.Option(0, "--seed", help="Seed of initialisation and batches."),
        epochs: int = typer.Option(
            DEFAULT_EPOCHS, "--epochs", min=1, help="At most this many passes (early stopping)."
        ),
        engine: str = EngineOption,
        ray_workers: int | None = typer.Option(
            None, "--ray-workers", min=1, help="Ray Train workers, data-parallel (default: one per GPU, else 1)."
        ),
        no_graph: bool = typer.Option(
            False, "--no-graph", help="Skip the click graph's embeddings (LightGCN, the 'also watched' candidates)."
        ),
        as_json: bool = JsonOption,
    ):
        """Train the multi-task model (and the click graph's embeddings) on the catalog's interactions, evaluate
        it on the latest days, save it."""
        if engine != "ray" and ray_workers is not None:
            raise typer.BadParameter("--ray-workers goes with --engine ray")

        def body():
            options = TrainOptions(
                arch=arch.value,
                balance=balance.value,
                pcgrad=pcgrad,
                seed=seed,
                epochs=epochs,
                progress=progress_wanted(as_json),
                engine=engine,
                workers=ray_workers,
                graph=not no_graph,
            )
            result = open_api().train(options)
            emit(
                result,
                as_json,
                f"model {result['model_id']} ({result['arch']}, CLIP version {result['clip']}, "
                + (f"{result['workers']} Ray workers, " if result["engine"] == "ray" else "")
                + f"{result['seconds']:.0f} s); test metrics:\n"
                + metrics_text(result["metrics"]),
            )

        run(as_json, body)

    @app.command("eval")
    def eval_command(
        ablations: bool = typer.Option(
            False, "--ablations", help="Train and compare every architecture and ablation (minutes)."
        ),
        seeds: int = typer.Option(1, "--seeds", min=1, help="Seeds per ablation row (mean and std)."),
        epochs: int = typer.Option(DEFAULT_EPOCHS, "--epochs", min=1, help="At most this many passes per training."),
        model: str | None = ModelOption,
        as_json: bool = JsonOption,
    ):
        """Evaluation table: the saved model on its test days, or (--ablations) every variant side by side
        (also saved as DATA_DIR/models/ablations.json for the UI's Model page). On a catalog made by `vidrec
        demo`, the demo world's truth is the oracle row."""
        if ablations and model is not None:
            raise typer.BadParameter("--model evaluates a saved model; --ablations trains new ones: give one")

        def body():
            store = open_store(read_only=not ablations)  # only the ablation table is written
            truth = demo_truth(store)
            if ablations:
                rows = ablation_table(store, seeds=seeds, epochs=epochs, progress=progress_wanted(as_json), truth=truth)
                save_ablations(store, rows)
            else:
                rows = model_table(store, load_model(store, model), truth)
            emit({"rows": rows}, as_json, table_text(rows))

        run(as_json, body)

    @app.command("score")
    def score_command(
        interactions: Path = typer.Option(..., "--interactions", help="Interaction-shaped file (CSV or Parquet)."),
        out: Path = typer.Option(..., "--out", help="Where to write the scored CSV."),
        model: str | None = ModelOption,
        as_json: bool = JsonOption,
    ):
        """Score every row of an interaction-shaped file with the model that serves, or --model (P(click),
        P(like), watch, category)."""

        def body():
            result = score_file(load_model(open_store(read_only=True), model), interactions, out)
            emit(
                result,
                as_json,
                f"scored {result['scored']} of {result['rows']} rows "
                f"({result['unknown']} unknown, {result['cold_start']} cold-start) -> {result['out']}",
            )

        run(as_json, body)

    models = typer.Typer(help="The trained models, and which one serves.", no_args_is_help=False)
    app.add_typer(models, name="models")

    @models.callback(invoke_without_command=True)
    def models_command(ctx: typer.Context, as_json: bool = JsonOption):
        """List the trained models (newest first): CLIP version, architecture, test metrics, whether each is
        usable and which one serves. `vidrec models use ID` pins one for serving."""
        if ctx.invoked_subcommand is not None:
            return

        def body():
            found = model_list(open_store(read_only=True))
            emit({"models": found}, as_json, models_text(found))

        run(as_json, body)

    @models.command("use")
    def use_command(
        model_id: str | None = typer.Argument(None, help="The model to serve (an id from `vidrec models`)."),
        newest: bool = typer.Option(False, "--newest", help="Unpin: serve the newest good model again."),
        as_json: bool = JsonOption,
    ):
        """Pin a model for serving (recommend, score, eval and the web UI), or go back to the newest good one."""
        if (model_id is None) != newest:
            raise typer.BadParameter("give a model id or --newest (not both)")

        def body():
            result = pin_model(open_store(), model_id)
            text = f"pinned {model_id}" if model_id else "unpinned: the newest good model serves"
            emit(result, as_json, f"{text} (serving: {result['serving'] or 'none'})")

        run(as_json, body)
