"""Recommendations for every user in one context (`vidrec recommend --all-users`): each user's rows are what
`recommend` gives that user, on either engine."""

from __future__ import annotations

import json

import pyarrow.parquet as pq
import pytest

from index.api import Vidrec
from index.batch_recommend import BatchContext, recommend_all_users

CONTEXT = BatchContext(hour=20, weekday=5)  # device and region: each user's usual ones


@pytest.fixture(scope="module")
def batch(trained_catalog, tmp_path_factory):
    """The local engine's file for the trained catalog, and its report."""
    out = tmp_path_factory.mktemp("batch") / "recs.parquet"
    report = recommend_all_users(trained_catalog[0], CONTEXT, out, 5, progress=False)
    return out, report


def test_every_users_rows_are_what_recommend_gives_that_user(trained_catalog, batch):
    out, report = batch
    table = pq.read_table(out).to_pylist()
    api = Vidrec(trained_catalog[0], read_only=True)
    users = api.store.interactions.user_ids()
    assert report["users"] == len(users) > 10 and report["rows"] == len(table)
    for user in users:
        context = api.context(user, CONTEXT.hour, CONTEXT.weekday)
        want = api.recommend(user, context, 5)
        got = [row for row in table if row["user_id"] == user]
        assert [r["rank"] for r in got] == list(range(1, len(want["items"]) + 1))
        for row, item in zip(got, want["items"]):
            assert (row["video_id"], row["title"], row["score"], row["reasons"], row["category"]) == (
                item["video_id"],
                item["title"],
                item["score"],
                item["reasons"],
                item["category"],
            )
            assert json.loads(row["scores"]) == item["scores"]
            assert (row["hour"], row["weekday"], row["device"], row["region"]) == tuple(context.__dict__.values())
            assert row["cold_start"] == want["cold_start"] and row["model_id"] == want["model_id"]
    assert {r["device"] for r in table} - {None}  # the users' own devices, not one for all


@pytest.mark.timeout(120)
def test_the_ray_engine_writes_the_same_file(ray_cluster, trained_catalog, batch, tmp_path):
    out = tmp_path / "ray.parquet"
    report = recommend_all_users(  # batches of 5 users over 2 model replicas: the file keeps the users' order
        trained_catalog[0], CONTEXT, out, 5, engine="ray", workers=2, progress=False, users_per_batch=5
    )
    assert (report["users"], report["rows"]) == (batch[1]["users"], batch[1]["rows"])
    assert pq.read_table(out).equals(pq.read_table(batch[0]))


def test_the_command_line_asks_for_a_whole_context_and_an_out_file(trained_catalog, tmp_path, cli):
    data = ("--data-dir", trained_catalog[0])
    assert cli(*data, "recommend", "--all-users", "--weekday", "5", "--out", tmp_path / "r.parquet")[0] == 2
    assert cli(*data, "recommend", "--all-users", "--hour", "8", "--weekday", "5")[0] == 2
    assert cli(*data, "recommend", "--user", "u1", "--all-users", "--hour", "8", "--weekday", "5")[0] == 2
    assert cli(*data, "recommend", "--user", "u1", "--out", tmp_path / "r.parquet")[0] == 2
    code, out = cli(
        *data,
        "recommend",
        "--all-users",
        "--hour",
        "8",
        "--weekday",
        "0",
        "--device",
        "tv",
        "-k",
        "3",
        "--out",
        tmp_path / "r.parquet",
        "--json",
    )
    assert code == 0 and set(out) == {"users", "rows", "out", "seconds"}
    table = pq.read_table(tmp_path / "r.parquet")
    assert table.num_rows == out["rows"] and set(table.column("device").to_pylist()) == {"tv"}
