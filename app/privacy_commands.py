"""`vidrec forget-user`: the privacy request, on the command line (docs/cli.md)."""

from __future__ import annotations

import typer

from app.common import JsonOption, emit, open_api, progress_wanted, run
from app.demo.forget import forget_in_world
from ingest.forget import forget_user


def _text(r: dict) -> str:
    lines = [f"forgot {r['user']}: {r['interactions']} interactions, {r['impressions']} impressions deleted"]
    if r["models_retrained"]:
        lines.append(f"retrained without them: {', '.join(r['models_retrained'])} now serves")
    kept = [m for m in r["models_affected"] if m not in r["models_deleted"] + r["models_retrained"]]
    if kept:
        lines.append(f"still serving a model that learnt from them: {', '.join(kept)} (retrain: --retrain)")
    if r["models_deleted"]:
        lines.append(f"deleted models that had learnt from them: {', '.join(r['models_deleted'])}")
    return "\n".join(lines)


def register(app: typer.Typer) -> None:
    @app.command("forget-user")
    def forget_user_command(
        user: str = typer.Argument(..., help="The user id to forget."),
        retrain: bool = typer.Option(False, "--retrain", help="Retrain the serving model now, without the user."),
        as_json: bool = JsonOption,
    ):
        """Delete everything the catalog holds about a user: interactions, impressions, the models that learnt
        from them (but the one serving, until retrained)."""

        def body():
            api = open_api()
            result = forget_user(api.store, user, retrain, progress=progress_wanted(as_json))
            if result["models_retrained"]:
                api.refresh_indexes()  # the new model's retrieval index, before the first request needs it
            if api.store.paths.demo_world.is_dir():
                forget_in_world(api.store.paths.demo_world, user)
            emit(result, as_json, _text(result))

        run(as_json, body)
