"""Forgetting a user: afterwards no file under the data dir holds their id, their lists are a cold start, the
model that serves keeps serving, and the other models that learnt from them are gone."""

from __future__ import annotations

import csv
import json
import shutil
from pathlib import Path

import pytest

from app.demo.forget import forget_in_world
from index.api import Vidrec
from ingest.store import Store
from models.context import Context

USER = "u0003"


def files_holding(folder: Path, text: str) -> list[str]:
    needle = text.encode()
    return [str(f.relative_to(folder)) for f in folder.rglob("*") if f.is_file() and needle in f.read_bytes()]


def test_a_forgotten_user_leaves_no_trace(trained_catalog, tiny_world, tmp_path, cli):
    data = tmp_path / "data"
    shutil.copytree(trained_catalog[0], data)
    store = Store(data)
    (serving,) = store.models.all()
    older = "older-" + serving.model_id  # an older model that learnt from the user too, and does not serve
    shutil.copytree(data / serving.path, data / "models" / older)
    store.models.add(older, serving.clip_version, serving.arch, f"models/{older}", serving.config, serving.metrics)
    newest_first = [serving.model_id, older]
    store.close()
    ui = Vidrec(data, read_only=True)
    video = ui.store.videos.video_ids()[0]
    ui.feedback(USER, video, "like", Context(hour=9, weekday=1, device="tv", region="eu"))
    assert files_holding(data, USER)  # the log and the like, in catalog.db or its WAL
    args = ("--data-dir", data, "recommend", "--user", USER, "--hour", "9", "--weekday", "1", "--json")
    assert cli(*args)[1]["cold_start"] is False

    assert cli("--data-dir", data, "backup", tmp_path / "before", "--json")[0] == 0

    code, out = cli("--data-dir", data, "forget-user", USER, "--json")
    assert code == 0, out
    assert out["user"] == USER and out["interactions"] > 0 and out["impressions"] == 1 and out["warnings"] == []
    assert sorted(out["models_affected"]) == sorted(newest_first) and out["models_retrained"] == []
    store = Store(data, read_only=True)
    served = [m.model_id for m in store.models.all()]
    assert out["models_deleted"] == [m for m in newest_first if m not in served] and len(served) == 1
    assert not (data / "models" / out["models_deleted"][0]).exists()
    assert files_holding(data, USER) == []
    code, after = cli(*args)
    assert code == 0 and after["cold_start"] is True and after["items"]  # the kept model still serves
    code, again = cli("--data-dir", data, "forget-user", USER, "--json")
    assert code == 0 and again["interactions"] == again["impressions"] == 0 and again["models_affected"] == []

    code, imported = cli("--data-dir", data, "import-interactions", tiny_world.interactions, "--json")
    refused = [s for s in imported["skipped"] if "forgotten" in s["reason"]]
    assert code == 0 and imported["imported"] == 0 and len(refused) == out["interactions"]  # an old log: nobody back
    code, restored = cli("--data-dir", data, "restore", tmp_path / "before", "--force", "--json")
    assert code == 0 and restored["forgotten_again"] == 1  # a backup from before: forgotten again
    assert files_holding(data, USER) == []
    assert cli(*args)[1]["cold_start"] is True


@pytest.mark.unit
def test_a_demo_world_inside_the_data_dir_forgets_the_user_too(tiny_world, tmp_path):
    world = tmp_path / "demo-world"
    world.mkdir()
    for source in (tiny_world.interactions, tiny_world.truth):
        shutil.copy(source, world / Path(source).name)
    rows = sum(1 for _ in open(world / "interactions.csv", encoding="utf-8"))
    assert forget_in_world(world, USER)
    assert files_holding(world, USER) == []
    with open(world / "interactions.csv", newline="", encoding="utf-8") as f:
        left = list(csv.reader(f))
    assert 1 < len(left) < rows and left[0][0] == "user_id"
    assert len(json.loads((world / "truth.json").read_text())["users"]["id"]) == 24
    assert not forget_in_world(world, USER)


def test_retraining_leaves_only_a_model_that_never_saw_the_user(trained_catalog, tmp_path, cli):
    data = tmp_path / "data"
    shutil.copytree(trained_catalog[0], data)
    (before,) = Store(data, read_only=True).models.all()
    code, out = cli("--data-dir", data, "forget-user", USER, "--retrain", "--json")
    assert code == 0, out
    assert out["models_affected"] == [before.model_id] == out["models_deleted"] and len(out["models_retrained"]) == 1
    code, listed = cli("--data-dir", data, "models", "--json")
    assert [m["model_id"] for m in listed["models"] if m["serving"]] == out["models_retrained"]
    assert files_holding(data, USER) == []
    code, rec = cli("--data-dir", data, "recommend", "--user", USER, "--hour", "9", "--weekday", "1", "--json")
    assert code == 0 and rec["cold_start"] is True and rec["items"]
