"""The command line's contract: one JSON document with --json, errors included, and the exit statuses."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).parent.parent


def test_status_reports_what_the_store_holds(tiny_catalog, tiny_world, cli):
    code, out = cli("--data-dir", tiny_catalog, "status", "--json")
    assert code == 0
    assert {"videos", "failed", "users", "interactions", "clip", "models", "indexes"} <= set(out)
    assert out["videos"] == tiny_world.videos and out["failed"] == 0
    assert out["users"] > 0 and out["interactions"] > 0
    assert out["clip"]["spec"] == "tiny"


def test_data_dir_comes_from_the_environment(tiny_catalog, cli, monkeypatch):
    monkeypatch.setenv("VIDREC_DATA_DIR", str(tiny_catalog))
    code, out = cli("status", "--json")
    assert code == 0 and out["videos"] > 0


def test_errors_are_json_too(tmp_path, cli):
    code, out = cli("--data-dir", tmp_path / "empty", "status", "--json")
    assert code == 1 and "no catalog" in out["error"]
    code, out = cli("--data-dir", tmp_path, "ingest", "--json")
    assert code == 2 and "manifest" in out["error"]
    code, out = cli("--data-dir", tmp_path, "ingest", "x.mp4", "--frames", "0", "--json")
    assert code == 2 and "frames" in out["error"]
    code, out = cli("--data-dir", tmp_path, "no-such-command", "--json")
    assert code == 2 and "No such command" in out["error"]


def test_the_console_script_prints_only_json_on_stdout(tiny_catalog):
    done = subprocess.run(
        [sys.executable, "-m", "app.cli", "--data-dir", str(tiny_catalog), "status", "--json"],
        capture_output=True,
        text=True,
        cwd=ROOT,
        timeout=120,
    )
    assert done.returncode == 0
    assert json.loads(done.stdout)["videos"] > 0


def test_json_never_carries_nan(capsys):
    from app.common import emit

    emit({"score": float("nan"), "scores": [1.5, float("inf")], "nested": {"x": -float("inf")}}, True, "")
    assert json.loads(capsys.readouterr().out) == {"score": None, "scores": [1.5, None], "nested": {"x": None}}
