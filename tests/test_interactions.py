"""Interaction logs: the documented format (docs/formats.md), idempotent import, bad rows reported by line."""

from __future__ import annotations

import pyarrow as pa
import pyarrow.parquet as pq

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
