"""Disaster recovery's restore tasks: a target not asked for is skipped, and D1 is replaced by the dump."""

from __future__ import annotations

import gzip
import uuid

import pytest

from airflow_provider_cloudflare.hooks.d1 import D1Hook
from prism.recovery.restore import restore_d1_from_dump, restore_target


def test_a_target_not_asked_for_is_skipped_before_anything_is_read():
    from airflow.sdk.exceptions import AirflowSkipException

    request = {"source": "s3", "targets": ["d1"], "bucket": "nowhere", "prefix": "daily/20261128/"}
    with pytest.raises(AirflowSkipException, match=r"kv is not in the targets \['d1'\]"):
        restore_target(request, "kv")


def test_d1_is_replaced_by_the_dump(cf, tmp_path):
    hook = D1Hook()
    db = hook.create_database(f"dr-test-{uuid.uuid4().hex[:10]}")["uuid"]
    try:
        hook.query(
            db,
            "CREATE TABLE parent (id INTEGER PRIMARY KEY); CREATE TABLE child (id INTEGER PRIMARY KEY, "
            "parent_id INTEGER REFERENCES parent(id)); INSERT INTO parent VALUES (1); INSERT INTO child VALUES (1, 1); "
            "CREATE TABLE stray (x)",
            read_only=False,
        )
        dump = tmp_path / "d1.sql.gz"
        dump.write_bytes(
            gzip.compress(b"CREATE TABLE parent (id INTEGER PRIMARY KEY);\nINSERT INTO parent VALUES (7);\n")
        )
        result = restore_d1_from_dump(hook, db, dump)
        assert set(result) == {"dropped_tables", "import_seconds", "prepared", "at_bookmark"}
        assert result["dropped_tables"].index("child") < result["dropped_tables"].index("parent")
        assert sorted(result["dropped_tables"]) == ["child", "parent", "stray"] and result["at_bookmark"]
        assert hook.user_tables(db) == [("parent", "table")]
        assert hook.rows(db, "SELECT id FROM parent") == [{"id": 7}]
    finally:
        hook.delete_database(db)
