"""`vidrec clip list`, `clip use` and `clip prune`: the catalog's CLIP versions, thin wrappers over
`ingest/catalog_clip.py`, `ingest/tune.py` and `index/api.py` (docs/cli.md)."""

from __future__ import annotations

import typer

from app.common import JsonOption, emit, open_api, open_store, progress_wanted, run
from ingest.catalog_clip import clip_versions, prune_clip_versions


def _metric(metrics: dict | None) -> str:
    if not metrics:
        return "-"
    return f"recall@5 {metrics['recall_at_5']:.3f}, category P@10 {metrics['category_p10']:.3f}"


def versions_text(versions: list[dict]) -> str:
    lines = []
    for v in versions:
        flags = [name for name in ("current", "pending", "pruned") if v[name]]
        tuned = f"tuned from {v['tuned_from']}" if v["tuned_from"] is not None else "base"
        line = (
            f"{'*' if v['current'] else ' '} v{v['version']}  {v['spec']}  {tuned}  {v['created_at']}  "
            f"{v['videos']} videos, {v['models']} models" + (f"  ({', '.join(flags)})" if flags else "")
        )
        if v["after"]:
            line += f"\n      tuning: {_metric(v['before'])} -> {_metric(v['after'])}"
        lines.append(line)
    return "\n".join(lines) or "no CLIP yet: ingest videos first"


def register(app: typer.Typer) -> None:
    clip = typer.Typer(help="The catalog's CLIP versions: list, switch back or forward, prune.", no_args_is_help=True)
    app.add_typer(clip, name="clip")

    @clip.command("list")
    def list_command(as_json: bool = JsonOption):
        """Every CLIP version the catalog has had: spec, tuned from, videos embedded with it, models trained on
        it, tuning's metrics; the current one marked."""

        def body():
            found = clip_versions(open_store(read_only=True))
            emit({"versions": found}, as_json, versions_text(found))

        run(as_json, body)

    @clip.command("use")
    def use_command(
        version: int = typer.Argument(..., min=1, help="The CLIP version to switch to (from `vidrec clip list`)."),
        as_json: bool = JsonOption,
    ):
        """Switch the catalog to a CLIP version: embed the videos it lacks, switch in one transaction, rebuild
        the indexes. Models trained on that version serve again; the others are stale until it changes back."""

        def body():
            result = open_api().use_clip(version, progress=progress_wanted(as_json))
            model = result["model"] or "none of this CLIP version (retrain with `vidrec train`)"
            emit(
                result,
                as_json,
                f"the catalog uses CLIP version {result['clip']['version']} (was {result['previous']}); "
                f"{result['embedded']} videos embedded; serving model: {model}",
            )

        run(as_json, body)

    @clip.command("prune")
    def prune_command(as_json: bool = JsonOption):
        """Delete the embeddings and weights file of every CLIP version not in use (not the current one, a
        pending one, or one a kept model was trained on)."""

        def body():
            result = prune_clip_versions(open_store())
            pruned = ", ".join(map(str, result["pruned"])) or "nothing"
            emit(result, as_json, f"pruned CLIP versions: {pruned}; kept: {', '.join(map(str, result['kept']))}")

        run(as_json, body)
