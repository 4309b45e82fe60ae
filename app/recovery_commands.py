"""`vidrec backup` and `vidrec restore`: thin wrappers over `ingest/store/backup.py` (docs/cli.md)."""

from __future__ import annotations

from pathlib import Path

import typer

from app.common import JsonOption, data_dir, emit, open_store, progress_wanted, run
from ingest.forget import forget_again
from ingest.store import backup_data_dir, restore_data_dir


def _megabytes(n: int) -> str:
    return f"{n / 1e6:.1f} MB"


def register(app: typer.Typer) -> None:
    @app.command("backup")
    def backup_command(
        dest: Path = typer.Argument(..., help="A new or empty folder to write the backup to."),
        as_json: bool = JsonOption,
    ):
        """A consistent copy of the data dir while it is in use: the catalog, CLIP weights, models, indexes,
        uploads (readers and jobs go on)."""

        def body():
            progress_wanted(as_json)
            r = backup_data_dir(data_dir(), dest)
            lines = [
                f"backed up revision {r['revision']} ({r['videos']} videos, {r['files']} files, "
                f"{_megabytes(r['bytes'])}) to {r['path']} in {r['seconds']:.1f} s"
            ]
            lines += [f"  damaged, left out: {d['path']}: {d['reason']}" for d in r["damaged"]]
            lines += [f"  {w}" for w in r["warnings"]]
            emit(r, as_json, "\n".join(lines))

        run(as_json, body)

    @app.command("restore")
    def restore_command(
        backup: Path = typer.Argument(..., help="A folder written by `vidrec backup`."),
        force: bool = typer.Option(False, "--force", help="Replace the catalog of a data dir that is not empty."),
        as_json: bool = JsonOption,
    ):
        """Restore a backup into the data dir, after checking every file against the backup's manifest."""

        def body():
            progress_wanted(as_json)
            r = restore_data_dir(backup, data_dir(), force)
            r["forgotten_again"] = forget_again(open_store())  # users forgotten after the backup was taken
            lines = [
                f"restored revision {r['revision']} ({r['files']} files, {_megabytes(r['bytes'])}) into "
                f"{r['path']} in {r['seconds']:.1f} s"
            ]
            lines += [f"  not in the backup (damaged when it was made): {d['path']}" for d in r["damaged"]]
            if r["forgotten_again"]:
                lines.append(f"  forgot again {r['forgotten_again']} user(s) forgotten since the backup was made")
            emit(r, as_json, "\n".join(lines))

        run(as_json, body)
