"""The `vidrec` command line (docs/cli.md): thin wrappers over the packages below.

Every reporting command takes --json and then prints exactly one JSON document on stdout, errors
included ({"error": "one line"}); progress and logs go to stderr. Exit 0: done; 1: nothing could be
done; 2: usage error.
"""

from __future__ import annotations

import contextlib
import json
import logging
import sys
from pathlib import Path

import typer

from app import clip_commands, model_commands, privacy_commands, recovery_commands
from app import serve as serve_module
from app.common import (
    PACKAGES,
    EngineOption,
    Failure,
    JsonOption,
    KOption,
    UsageError,
    data_dir,
    emit,
    open_api,
    open_store,
    options,
    progress_wanted,
    run,
)
from app.demo.command import DEMO_USERS, DEMO_VIDEOS, metric_lines, run_demo
from app.serve import DEFAULT_PORT, HOST, port_free, serve
from index.api import Vidrec
from index.vector_index import IndexConfig
from ingest.engine import ray_cluster
from ingest.interactions import import_interactions
from ingest.pipeline import IngestOptions
from ingest.ray_ingest import RayOptions
from ingest.staging import staged_summary
from ingest.tune import TUNE_EPOCHS, TuneOptions

INGEST = IngestOptions()  # the defaults the options below show

app = typer.Typer(
    add_completion=False,
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    help="vidrec: video recommendations with CLIP features, a multi-task model and FAISS.",
)


@app.callback()
def _global(
    data_dir: Path | None = typer.Option(
        None, "--data-dir", help="Data directory (default: $VIDREC_DATA_DIR, else ./vidrec-data)."
    ),
):
    options["data_dir"] = data_dir


def _ingest_text(r: dict) -> str:
    def one_line(text: str) -> str:
        """Control characters escaped (a newline in a file name must not forge a line), other Unicode kept."""
        return "".join(c if c.isprintable() else c.encode("unicode_escape").decode("ascii") for c in str(text))

    lines = [
        f"ingested {r['ingested']}, duplicates {r['duplicates']}, updated {r['updated']}, "
        f"failed {len(r['failed'])} in {r['seconds']:.1f} s"
    ]
    lines += [f"  refused {one_line(f['path'])}: {one_line(f['reason'])}" for f in r["failed"]]
    return "\n".join(lines)


@app.command("ingest")
def ingest_command(
    paths: list[Path] = typer.Argument(None, help="Video files and folders (walked)."),
    manifest: Path | None = typer.Option(None, "--manifest", help="Catalog manifest (CSV or JSONL)."),
    clip: str | None = typer.Option(None, "--clip", help="NAME:TAG, NAME:PATH, hf-hub:ORG/REPO or tiny."),
    frames: int = typer.Option(INGEST.frames, "--frames", min=1, max=64, help="Frames sampled per video."),
    batch_size: int = typer.Option(INGEST.batch_size, "--batch-size", min=1, help="Frames per CLIP batch."),
    workers: int = typer.Option(INGEST.workers, "--workers", min=1, help="Decoding threads."),
    allow_outside: bool = typer.Option(
        False, "--allow-outside", help="Let manifest paths leave the manifest's folder with '..'."
    ),
    engine: str = EngineOption,
    ray_workers: int | None = typer.Option(
        None, "--ray-workers", min=1, help="CLIP actors on the Ray cluster (default: one per GPU, else 1)."
    ),
    staging: str | None = typer.Option(
        None, "--staging", help="Where Ray workers stage shards: a folder or a URI (default: DATA_DIR/staging)."
    ),
    as_json: bool = JsonOption,
):
    """Add videos to the catalog: decode, sample frames, embed with CLIP, store."""
    if not paths and manifest is None:
        raise typer.BadParameter("give video files or folders, or --manifest")
    if engine != "ray" and (ray_workers is not None or staging is not None):
        raise typer.BadParameter("--ray-workers and --staging go with --engine ray")

    def body():
        report = open_api(create=True).ingest(
            paths or [],
            manifest,
            IngestOptions(
                clip=clip,
                frames=frames,
                batch_size=batch_size,
                workers=workers,
                progress=progress_wanted(as_json),
                allow_outside=allow_outside,
                engine=engine,
                ray=RayOptions(workers=ray_workers, staging=staging),
            ),
        )
        payload = report.to_json()
        emit(payload, as_json, _ingest_text(payload))
        if report.failed and not (report.ingested or report.duplicates):
            raise typer.Exit(1)  # every input refused

    run(as_json, body)


@app.command("import-interactions")
def import_interactions_command(
    file: Path = typer.Argument(..., help="Interaction log (CSV or Parquet)."), as_json: bool = JsonOption
):
    """Add an interaction log; rows already imported are not added again."""

    def body():
        report = import_interactions(open_store(), file)
        payload = report.to_json()
        text = (
            f"imported {report.imported}, duplicates {report.duplicates}, conflicts {report.conflicts_count}, "
            f"skipped {report.skipped_count}"
        )
        refused = sorted(report.skipped[:20] + report.conflicts[:20], key=lambda s: s["line"])[:20]
        text += "".join(f"\n  line {s['line']}: {s['reason']}" for s in refused)
        emit(payload, as_json, text)
        if (report.skipped_count or report.conflicts_count) and not (report.imported or report.duplicates):
            raise typer.Exit(1)  # every row refused

    run(as_json, body)


@app.command("remove")
def remove_command(video_ids: list[str] = typer.Argument(..., help="Video ids to remove."), as_json: bool = JsonOption):
    """Remove videos (with their frames, embeddings and interactions) from the catalog."""

    def body():
        removed = open_api().remove(video_ids)
        unknown = [v for v in video_ids if v not in removed]
        if not removed:
            raise Failure(f"unknown video id(s): {', '.join(unknown)}")
        emit(
            {"removed": removed, "unknown": unknown},
            as_json,
            f"removed {len(removed)}" + (f"; unknown: {', '.join(unknown)}" if unknown else ""),
        )

    run(as_json, body)


def _staged_text(staged: dict) -> str:
    if "error" in staged:
        return staged["error"]
    if not staged["shards"]:
        return "nothing waits to be merged"
    return (
        f"{staged['shards']} shards ({staged['bytes'] / 1e6:.1f} MB) in {staged['location']} not yet merged: "
        f"run the same ingest --engine ray again to merge them"
    )


@app.command("status")
def status_command(as_json: bool = JsonOption):
    """What the store holds."""

    def body():
        store = open_store(read_only=True)
        s = {**store.status(), "staged": staged_summary(store)}
        clip = "-" if s["clip"] is None else f"{s['clip']['spec']} (version {s['clip']['version']})"
        text = "\n".join(
            [
                f"data dir      {s['data_dir']}",
                f"videos        {s['videos']} (failed files: {s['failed']})",
                f"users         {s['users']}",
                f"interactions  {s['interactions']}",
                f"clip          {clip}",
                f"models        {len(s['models'])}",
                f"indexes       {len(s['indexes'])}",
                f"staged        {_staged_text(s['staged'])}",
            ]
        )
        emit(s, as_json, text)

    run(as_json, body)


@app.command("tune-clip")
def tune_clip_command(
    epochs: int = typer.Option(TUNE_EPOCHS, "--epochs", min=1, help="Passes over the catalog."),
    force: bool = typer.Option(False, "--force", help="Keep the tuned CLIP even if it retrieves worse."),
    seed: int = typer.Option(0, "--seed", help="Seed for the held-out split and training."),
    as_json: bool = JsonOption,
):
    """Tune the catalog's CLIP on its own frames and texts, then re-embed the catalog with it."""

    def body():
        result = open_api().tune_clip(
            TuneOptions(epochs=epochs, force=force, seed=seed, progress=progress_wanted(as_json))
        )
        b, a = result["before"], result["after"]
        text = (
            f"held-out recall@1 {b['recall_at_1']:.3f} -> {a['recall_at_1']:.3f}, "
            f"recall@5 {b['recall_at_5']:.3f} -> {a['recall_at_5']:.3f}, "
            f"category P@10 {b['category_p10']:.3f} -> {a['category_p10']:.3f}\n"
            + (
                f"catalog re-embedded with CLIP version {result['clip']['version']}"
                if result["replaced"]
                else "the tuned CLIP retrieves worse: kept the old one (use --force to replace it)"
            )
            + f" ({result['seconds']:.0f} s)"
        )
        emit(result, as_json, text)

    run(as_json, body)


def _items_text(items: list[dict]) -> str:
    """One line a result; text search marks weak matches, and says when there is no close one at all."""
    lines = [
        f"{i['similarity']:7.3f}  {i['video_id']}  {i['title']}{'  (weak)' if i.get('weak') else ''}" for i in items
    ]
    if items and all(i.get("weak") for i in items):
        lines.insert(0, "no close match; the nearest videos:")
    return "\n".join(lines) or "(nothing found)"


@app.command("search")
def search_command(
    text: str = typer.Argument(..., help="What to look for, in any language."),
    k: int = KOption,
    as_json: bool = JsonOption,
):
    """Text-to-video search (frames and text, through CLIP's text tower)."""

    def body():
        items = open_api(read_only=True).search(text, k)
        emit({"items": items}, as_json, _items_text(items))

    run(as_json, body)


@app.command("similar")
def similar_command(
    video_id: str = typer.Argument(..., help="A video id of the catalog."), k: int = KOption, as_json: bool = JsonOption
):
    """Videos similar to one of the catalog (frames and text)."""

    def body():
        items = open_api(read_only=True).similar(video_id, k)
        emit({"items": items}, as_json, _items_text(items))

    run(as_json, body)


@app.command("recommend")
def recommend_command(
    user: str | None = typer.Option(None, "--user", help="A user id (an unknown one gets a cold-start list)."),
    all_users: bool = typer.Option(False, "--all-users", help="Every user's list, to --out (Parquet)."),
    hour: int | None = typer.Option(None, "--hour", min=0, max=23, help="Local hour (default: now)."),
    weekday: int | None = typer.Option(None, "--weekday", min=0, max=6, help="0 = Monday (default: today)."),
    device: str | None = typer.Option(None, "--device", help="(default: the user's usual one)"),
    region: str | None = typer.Option(None, "--region", help="(default: the user's usual one)"),
    k: int = KOption,
    model: str | None = model_commands.ModelOption,
    out: Path | None = typer.Option(None, "--out", help="With --all-users: the Parquet file to write."),
    engine: str = EngineOption,
    ray_workers: int | None = typer.Option(
        None, "--ray-workers", min=1, help="With --all-users --engine ray: model replicas (default 1)."
    ),
    as_json: bool = JsonOption,
):
    """Personalised recommendations in a context, with per-task scores and reasons."""
    if all_users:
        _check_batch_options(user, hour, weekday, out)
        run(as_json, lambda: _recommend_all(hour, weekday, device, region, k, model, out, engine, ray_workers, as_json))
        return
    if user is None:
        raise typer.BadParameter("give --user U, or --all-users")
    if out is not None or engine != "local" or ray_workers is not None:
        raise typer.BadParameter("--out, --engine and --ray-workers go with --all-users")

    def body():
        api = open_api(read_only=True)
        result = api.recommend(user, api.context(user, hour, weekday, device, region), k, model_id=model)
        context = result["context"]
        lines = [
            f"for {user} at {context['hour']:02d}h, weekday {context['weekday']}, on {context['device']} "
            f"in {context['region']}" + (" (cold start)" if result["cold_start"] else "")
        ]
        lines += [
            f"{i['score']:7.4f}  {i['video_id']}  {i['title']}  [{'; '.join(i['reasons'])}]" for i in result["items"]
        ]
        emit(result, as_json, "\n".join(lines))

    run(as_json, body)


def _check_batch_options(user, hour, weekday, out) -> None:
    if user is not None:
        raise typer.BadParameter("give --user U or --all-users, not both")
    if hour is None or weekday is None or out is None:
        raise typer.BadParameter("--all-users needs --hour, --weekday and --out (a batch never means 'now')")


def _recommend_all(hour, weekday, device, region, k, model, out, engine, ray_workers, as_json) -> None:
    from index.batch_recommend import BatchContext, recommend_all_users

    result = recommend_all_users(
        data_dir(),
        BatchContext(hour, weekday, device, region),
        out,
        k,
        model_id=model,
        engine=engine,
        workers=ray_workers,
        progress=progress_wanted(as_json),
    )
    text = f"{result['rows']} rows for {result['users']} users in {result['out']} ({result['seconds']} s)"
    emit(result, as_json, text)
    if not result["users"]:
        raise typer.Exit(1)  # nobody to recommend to


def _index_line(i: dict) -> str:
    if i["action"] == "skipped":
        return f"{i['name']:8} skipped: {i['reason']}"
    shards = len(i.get("shards") or []) or 1
    where = f"in {shards} shards " if shards > 1 else ""
    return (
        f"{i['name']:8} {i['type']:6} {i['size']:>9} vectors {where}on {i['device']}, recall@10 {i['recall']} "
        f"({i['action']})"
    )


@app.command("index")
def index_command(
    rebuild: bool = typer.Option(False, "--rebuild", help="Build every index anew from the store."),
    shards: int | None = typer.Option(
        None,
        "--shards",
        min=1,
        help="Cut each index into N shards (1: one index again; default: as many as the memory budget asks, "
        "or as the index has).",
    ),
    engine: str = EngineOption,
    as_json: bool = JsonOption,
):
    """Build or update the indexes from the store (a damaged index file is found and rebuilt)."""

    def body():
        api = Vidrec(data_dir(), index_config=IndexConfig(shards=shards), engine=engine)
        with ray_cluster() if engine == "ray" else contextlib.nullcontext():  # one cluster for every index
            indexes = api.refresh_indexes(rebuild)
        emit({"indexes": indexes}, as_json, "\n".join(map(_index_line, indexes)))

    run(as_json, body)


@app.command("demo")
def demo_command(
    videos: int = typer.Option(
        DEMO_VIDEOS, "--videos", min=24, help="Videos in the demo world (two per category at least)."
    ),
    users: int = typer.Option(DEMO_USERS, "--users", min=5, help="Users in the demo world."),
    seed: int = typer.Option(0, "--seed", help="Seed of the demo world, tuning and training."),
    clip: str | None = typer.Option(None, "--clip", help="CLIP for the demo (default: tiny)."),
    no_serve: bool = typer.Option(False, "--no-serve", help="Stop after building; do not start the web UI."),
    port: int = typer.Option(DEFAULT_PORT, "--port", min=1, max=65535, help="Port of the web UI on 127.0.0.1."),
    as_json: bool = JsonOption,
):
    """Build the demo world, ingest it, tune its CLIP, train the model, index, and serve the web UI."""

    def body():
        if not no_serve and not port_free(port):
            raise Failure(f"port {port} on {HOST} is in use: choose another with --port, or --no-serve")
        summary = run_demo(
            open_store(create=True), videos=videos, users=users, seed=seed, clip=clip, progress=progress_wanted(as_json)
        )
        lines = [f"{k:14}{v}" for k, v in summary.items() if k not in ("failed", "metrics")]
        emit(summary, as_json, "\n".join(lines + metric_lines(summary["metrics"])))
        sys.stdout.flush()
        if not no_serve:
            serve(data_dir(), port)

    run(as_json, body)


model_commands.register(app)  # train, eval, score, models
recovery_commands.register(app)  # backup, restore
clip_commands.register(app)  # clip list, clip use, clip prune
privacy_commands.register(app)  # forget-user
serve_module.register(app)  # serve


def main(argv: list[str] | None = None) -> None:
    """Console entry point: usage errors are JSON too when --json was asked for."""
    logging.basicConfig(level=logging.ERROR, format="vidrec: %(message)s")  # libraries: errors only
    for package in PACKAGES:
        logging.getLogger(package).setLevel(logging.WARNING)
    argv = list(sys.argv[1:] if argv is None else argv)
    try:
        code = app(args=argv, prog_name="vidrec", standalone_mode=False)
    except UsageError as exc:
        if "--json" in argv:
            print(json.dumps({"error": " ".join(exc.format_message().split())}))
        else:
            exc.show()
        code = 2
    except (typer.Abort, KeyboardInterrupt):
        if "--json" in argv:
            print(json.dumps({"error": "interrupted"}))
        print("aborted", file=sys.stderr)
        code = 130
    sys.exit(code if isinstance(code, int) else 0)


if __name__ == "__main__":
    main()
