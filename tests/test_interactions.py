"""Interaction logs: the documented format (docs/formats.md), idempotent import, bad rows reported by line."""

from __future__ import annotations

import shutil

import pyarrow as pa
import pyarrow.parquet as pq

from ingest import interactions
from ingest.interactions import import_interactions
from ingest.store import Store


def test_the_world_log_imports_once(tiny_catalog, tiny_world, catalog_copy, cli):
    rows = sum(1 for _ in open(tiny_world.interactions, encoding="utf-8")) - 1
    assert Store(tiny_catalog, create=False).interactions.count() == rows
    code, out = cli("--data-dir", catalog_copy, "import-interactions", tiny_world.interactions, "--json")
    assert code == 0 and out["imported"] == 0 and out["duplicates"] == rows and out["skipped"] == []


def test_bad_rows_are_skipped_with_their_line(catalog_copy, tmp_path, cli):
    video = Store(catalog_copy, create=False).videos.video_ids()[0]
    log = tmp_path / "log.csv"
    log.write_text(
        "user_id,video_id,timestamp,device,region,clicked,liked,watch_seconds\n"
        f"x1,{video},2026-10-05T08:30:00+08:00,tv,cn,1,1,12.5\n"  # line 2: fine (a Monday, 08:30 local)
        f"x1,nosuch,2026-10-05T08:30:00+08:00,tv,cn,1,0,3\n"  # 3: unknown video
        f"x1,{video},yesterday,tv,cn,1,0,3\n"  # 4: bad timestamp
        f"x1,{video},1791000000,tv,cn,2,0,3\n"  # 5: clicked not 0/1
        f"x1,{video},1791000001,tv,cn,0,1,0\n"  # 6: like without click
        f"x1,{video},1791000002,tv,cn,1,0,-4\n"  # 7: negative watch
        f",{video},1791000003,tv,cn,1,0,3\n"  # 8: no user
        f"x1,{video},1791000004,tv,cn,1,0,3,surplus\n"  # 9: too many fields
        f"x2,{video},1791000005,,,0,,\n"  # 10: fine, optional fields empty
        f"x3,{video},1791000006,mobile,us,1,0,nan\n",
        encoding="utf-8",
    )  # 11: fine, NaN watch = unknown
    code, out = cli("--data-dir", catalog_copy, "import-interactions", log, "--json")
    assert code == 0 and out["imported"] == 3
    assert [s["line"] for s in out["skipped"]] == [3, 4, 5, 6, 7, 8, 9]
    assert "unknown video_id" in out["skipped"][0]["reason"]
    store = Store(catalog_copy, create=False)
    row = store.interactions.of_user("x1")[0]
    assert (row.hour, row.weekday, row.utc_offset, row.ts) == (8, 0, 480, 1791160200)
    unix = store.interactions.of_user("x2")[0]
    assert unix.utc_offset == 0 and unix.device is None and unix.liked is None
    assert store.interactions.of_user("x3")[0].watch_seconds is None


def test_parquet_logs_import_like_csv(catalog_copy, tmp_path, cli):
    videos = Store(catalog_copy, create=False).videos.video_ids()[:2]
    table = pa.table(
        {
            "user_id": ["p1", "p1", "p2"],
            "video_id": [videos[0], videos[1], "nosuch"],
            "timestamp": ["2026-10-06T21:00:00-05:00", "1791000000", "1791000000"],
            "clicked": [1, 0, 1],
            "watch_seconds": [4.0, None, 1.0],
        }
    )
    pq.write_table(table, tmp_path / "log.parquet")
    code, out = cli("--data-dir", catalog_copy, "import-interactions", tmp_path / "log.parquet", "--json")
    assert code == 0 and out["imported"] == 2 and out["skipped"][0]["line"] == 4
    code, out = cli("--data-dir", catalog_copy, "import-interactions", tmp_path / "log.parquet", "--json")
    assert out["imported"] == 0 and out["duplicates"] == 2


def test_a_log_without_required_columns_is_refused(catalog_copy, tmp_path, cli):
    log = tmp_path / "log.csv"
    log.write_text("user,video,when\nu,v,1\n", encoding="utf-8")
    code, out = cli("--data-dir", catalog_copy, "import-interactions", log, "--json")
    assert code == 1 and "user_id" in out["error"] and "clicked" in out["error"]
    code, out = cli("--data-dir", catalog_copy, "import-interactions", tmp_path / "absent.csv", "--json")
    assert code == 1 and "not found" in out["error"]


HEADER = "user_id,video_id,timestamp,device,region,clicked,liked,watch_seconds\n"


def test_a_differing_row_for_a_logged_key_is_a_conflict_and_the_first_wins(catalog_copy, tmp_path, cli):
    video = Store(catalog_copy, create=False).videos.video_ids()[0]
    log = tmp_path / "log.csv"
    log.write_text(
        HEADER + f"c1,{video},1791000000,tv,eu,1,0,12\n"  # line 2: stored
        f"c1,{video},1791000000,tv,eu,1,0,12\n"  # 3: the same values: a duplicate
        f"c1,{video},1791000000,tv,eu,0,,\n",  # 4: the same key, other values: a conflict, not applied
        encoding="utf-8",
    )
    code, out = cli("--data-dir", catalog_copy, "import-interactions", log, "--json")
    assert code == 0 and (out["imported"], out["duplicates"], out["conflicts_count"]) == (1, 1, 1)
    assert [c["line"] for c in out["conflicts"]] == [4] and "clicked 0 here, 1 logged" in out["conflicts"][0]["reason"]
    again = tmp_path / "again.csv"
    again.write_text(HEADER + f"c1,{video},1791000000,mobile,eu,1,0,12\n", encoding="utf-8")
    code, out = cli("--data-dir", catalog_copy, "import-interactions", again, "--json")
    assert (
        code == 1
        and out["conflicts"][0]["line"] == 2
        and "device mobile here, tv logged" in out["conflicts"][0]["reason"]
    )
    (row,) = Store(catalog_copy, create=False).interactions.of_user("c1")
    assert (row.clicked, row.device, row.watch_seconds) == (1, "tv", 12.0)  # the first row stored stays


def test_broken_lines_cost_only_themselves(catalog_copy, tmp_path, cli, monkeypatch):
    monkeypatch.setattr(interactions, "MAX_LINE", 200)  # bytes; a longer line is refused unread
    video = Store(catalog_copy, create=False).videos.video_ids()[0]
    log = tmp_path / "log.csv"
    log.write_bytes(
        (
            HEADER + f"q1,{video},1791000000,tv,eu,1,0,12\n"  # line 2: fine
            f'q1,{video},1791000001,"tv,eu,1,0,12\n'  # 3: an unclosed quote
            f"q1,{video},1791000002,tv,eu,1,0,12\n"  # 4: fine, not swallowed by line 3's quote
        ).encode()
        + f"q1,{video},1791000003,tv,\xff\xfe,1,0,12\n".encode("latin-1")  # 5: not UTF-8
        + f"q1,{video},1791000004,tv,eu,1,0,inf\n"  # 6: infinite watch time
        f"q1,{video},inf,tv,eu,1,0,1\n"  # 7: infinite timestamp
        f"q1,{video},1791000006,tv,eu,1,0,-inf\n"  # 8
        f"q1,{video},1791000007,tv,eu,1,0,nan\n"  # 9: fine, NaN watch = unknown
        f"q1,{video},1791000008,tv,{'e' * 300},1,0,1\n".encode()  # 10: too long
    )
    code, out = cli("--data-dir", catalog_copy, "import-interactions", log, "--json")
    assert code == 0 and out["imported"] == 3
    reasons = {s["line"]: s["reason"] for s in out["skipped"]}
    assert list(reasons) == [3, 5, 6, 7, 8, 10]
    assert reasons[3] == "unterminated quote" and reasons[5] == "invalid UTF-8 bytes" and "over 200" in reasons[10]
    assert "finite" in reasons[6] and "finite" in reasons[7] and "finite" in reasons[8]
    assert sorted(r.ts for r in Store(catalog_copy, create=False).interactions.of_user("q1")) == [
        1791000000,
        1791000002,
        1791000007,
    ]


def test_a_log_longer_than_a_batch_imports_whole_and_once(tiny_catalog, tmp_path):
    """Batches of 7 rows (the default is thousands): CSV and Parquet, read and written batch by batch, store the
    same rows as one go, and a second import adds nothing."""
    videos = Store(tiny_catalog, create=False).videos.video_ids()[:3]
    rows = [(f"b{i % 4}", videos[i % 3], str(1791000000 + i), "tv", "eu", str(i % 2), "", str(i)) for i in range(50)]
    rows.append(rows[3])  # a repeat in another batch: a duplicate
    rows.append((*rows[5][:5], "1", "1", "5"))  # a conflict in another batch
    csv_log = tmp_path / "log.csv"
    csv_log.write_text(HEADER + "".join(",".join(r) + "\n" for r in rows), encoding="utf-8")
    parquet_log = tmp_path / "log.parquet"
    pq.write_table(
        pa.table({name: list(column) for name, column in zip(HEADER.strip().split(","), zip(*rows))}),
        parquet_log,
        row_group_size=10,
    )
    logs = {}
    for name, log, batch_rows in (("whole", csv_log, 1000), ("csv", csv_log, 7), ("parquet", parquet_log, 7)):
        data_dir = tmp_path / name
        shutil.copytree(tiny_catalog, data_dir)
        store = Store(data_dir)
        first = import_interactions(store, log, batch_rows=batch_rows)
        assert (first.imported, first.duplicates, first.conflicts_count, first.skipped_count) == (50, 1, 1, 0)
        assert first.conflicts[0]["line"] == 53
        second = import_interactions(store, log, batch_rows=batch_rows)
        assert (second.imported, second.duplicates, second.conflicts_count) == (0, 51, 1)
        logs[name] = store.interactions.log()
        store.close()
    assert logs["csv"] == logs["whole"] and logs["parquet"] == logs["whole"]
