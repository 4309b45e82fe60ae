"""Back up a catalog in use, restore it (docs/cli.md `backup` and `restore`, ingest/store/backup.py): a backup
taken during an ingest is one whole revision, a restored older catalog shows all its own videos again, and a
damaged backup or a non-empty data dir is refused in one line."""

from __future__ import annotations

import json
import sqlite3
import time
from pathlib import Path

from jobs import start_ingest
from media import write_clip

from index.api import Vidrec
from ingest.store import Store

QUERY = "a bright square sliding"


def integrity(database: Path) -> str:
    db = sqlite3.connect(f"file:{database}?mode=ro", uri=True)
    try:
        return db.execute("PRAGMA integrity_check").fetchone()[0]
    finally:
        db.close()


def flip(path: Path) -> None:
    """Damage a file in the middle, keeping its size."""
    data = bytearray(path.read_bytes())
    middle = len(data) // 2
    data[middle : middle + 16] = bytes(b ^ 0xFF for b in data[middle : middle + 16])
    path.write_bytes(bytes(data))


def found(cli, data_dir: Path, *command: str) -> set[str]:
    code, out = cli("--data-dir", data_dir, *command, "-k", "100", "--json")
    assert code == 0, out
    return {item["video_id"] for item in out["items"]}


def test_a_backup_taken_while_an_ingest_runs_restores_to_a_whole_catalog(catalog_copy, tmp_path, cli):
    (tmp_path / "new").mkdir()
    clips = [write_clip(tmp_path / "new" / f"new{i}.mp4", seed=300 + i) for i in range(6)]
    ingest = start_ingest(catalog_copy, *clips)
    backups: list[dict] = []
    while ingest.poll() is None or not backups:  # backups beside the ingest, which goes on (no lock is taken)
        code, out = cli("--data-dir", catalog_copy, "backup", tmp_path / f"backup{len(backups)}", "--json")
        assert code == 0, out
        backups.append(out)
        time.sleep(0.5)
    stdout, stderr = ingest.communicate(timeout=240)
    assert ingest.returncode == 0 and json.loads(stdout)["ingested"] == 6, stderr[-2000:]

    for backup in backups:
        manifest = json.loads((Path(backup["path"]) / "backup.json").read_text())
        assert manifest["revision"] == backup["revision"] and backup["damaged"] == []
        assert integrity(Path(backup["path"]) / "catalog.db") == "ok"
        assert 36 <= backup["videos"] <= 42

    chosen = backups[len(backups) // 2]
    restored = tmp_path / "restored"
    code, out = cli("--data-dir", restored, "restore", chosen["path"], "--json")
    assert code == 0, out
    assert out["revision"] == chosen["revision"] and out["bytes"] == chosen["bytes"] and out["path"] == str(restored)
    assert integrity(restored / "catalog.db") == "ok"
    code, status = cli("--data-dir", restored, "status", "--json")
    assert code == 0 and status["videos"] == chosen["videos"] and status["revision"] == chosen["revision"]
    assert len(found(cli, restored, "search", QUERY)) == chosen["videos"]


def test_an_older_backup_restored_over_a_newer_catalog_shows_all_its_own_videos(catalog_copy, tmp_path, cli):
    code, older = cli("--data-dir", catalog_copy, "backup", tmp_path / "older", "--json")
    assert code == 0, older
    reader = Vidrec(catalog_copy, read_only=True)  # a long-running reader (the web UI), alive across the restore
    everything = set(reader.store.videos.video_ids())
    assert {item["video_id"] for item in reader.search(QUERY, k=100)} == everything

    gone = sorted(everything)[:10]
    code, out = cli("--data-dir", catalog_copy, "remove", *gone, "--json")
    assert code == 0, out
    assert len(reader.search(QUERY, k=100)) == len(everything) - 10
    newer = reader.store.revision

    code, out = cli("--data-dir", catalog_copy, "restore", tmp_path / "older", "--json")
    assert code == 1 and "not empty" in out["error"] and "--force" in out["error"]
    assert reader.store.revision == newer  # refused: nothing changed

    code, out = cli("--data-dir", catalog_copy, "restore", tmp_path / "older", "--force", "--json")
    assert code == 0, out
    assert out["revision"] == older["revision"] < newer
    assert integrity(catalog_copy / "catalog.db") == "ok"

    # the reader went back with the store: its index is rebuilt, not updated (which would hide the 10), even
    # when later jobs have brought the revision back to the number it last saw before it asks again
    writer = Store(catalog_copy)
    writer.set_meta("revision", str(newer))
    writer.close()
    assert {item["video_id"] for item in reader.search(QUERY, k=100)} == everything
    code, out = cli("--data-dir", catalog_copy, "index", "--json")
    assert code == 0 and {i["name"]: i["action"] for i in out["indexes"]}["fused"] == "built"
    assert found(cli, catalog_copy, "search", QUERY) == everything
    assert found(cli, catalog_copy, "similar", gone[0]) == everything - {gone[0]}


def test_a_damaged_backup_is_refused_in_one_line(catalog_copy, tmp_path, cli):
    code, out = cli("--data-dir", catalog_copy, "backup", tmp_path / "backup", "--json")
    assert code == 0, out
    code, out = cli("--data-dir", catalog_copy, "backup", tmp_path / "backup", "--json")
    assert code == 1 and "not empty" in out["error"]

    for damaged in ("clip/v1.safetensors", "catalog.db"):
        flip(tmp_path / "backup" / damaged)
        code, out = cli("--data-dir", tmp_path / "target", "restore", tmp_path / "backup", "--json")
        assert code == 1 and "damaged" in out["error"] and damaged in out["error"], out
        assert "\n" not in out["error"] and not (tmp_path / "target").exists()
        flip(tmp_path / "backup" / damaged)  # flipped back: whole again

    (tmp_path / "backup" / "backup.json").unlink()
    code, out = cli("--data-dir", tmp_path / "target", "restore", tmp_path / "backup", "--json")
    assert code == 1 and "not a vidrec backup" in out["error"]


def test_damaged_weights_are_named_and_left_out_and_the_backup_finishes(catalog_copy, tmp_path, cli):
    flip(catalog_copy / "clip" / "v1.safetensors")
    code, out = cli("--data-dir", catalog_copy, "backup", tmp_path / "backup", "--json")
    assert code == 0, out
    assert [d["path"] for d in out["damaged"]] == ["clip/v1.safetensors"] and "damaged" in out["damaged"][0]["reason"]
    assert not (tmp_path / "backup" / "clip" / "v1.safetensors").exists()
    assert (tmp_path / "backup" / "backup.json").is_file() and out["videos"] == 36
