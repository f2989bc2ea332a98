"""prism_disaster_recovery against a private localflare and the S3 stand-in: restore drills.

Each drill takes a real daily backup set (prism_daily's `daily_backup` group: staged, promoted,
test-restored), damages the live data, restores with the DR DAG and compares every table row for
row, every vector (values within float tolerance, metadata, namespace) and every KV key (value,
metadata, expiration) with the state before the damage.
"""

from __future__ import annotations

import json
from datetime import datetime, timedelta, timezone

import pytest
from dagtest import d1_state, kv_state, run_only, states, vector_state, xcom

from airflow_provider_cloudflare.hooks.d1 import D1Hook
from airflow_provider_cloudflare.hooks.kv import KVHook
from airflow_provider_cloudflare.hooks.vectorize import VectorizeHook

DB, INDEX, NAMESPACE = "claudes-friend-db", "claudes-companion", "prism-cache"


# ---- the state to compare --------------------------------------------------------------------


def state() -> dict:
    d1, kv = D1Hook(), KVHook()
    return {
        "d1": d1_state(d1, d1.find_database(DB)),
        "vectors": vector_state(VectorizeHook(), INDEX),
        "kv": kv_state(kv, kv.find_namespace(NAMESPACE)),
    }


def take_backup(daily, day: datetime, bucket: str, s3) -> dict:
    run = run_only(daily, r"^daily_backup\.", logical_date=day)
    assert run.state == "success", states(run)
    manifest = json.loads(s3.read_key(f"daily/{day:%Y%m%d}/manifest.json", bucket))
    assert manifest["verification"]["status"] == "verified", manifest["verification"]
    return manifest


def damage(d1_only: bool = False) -> None:
    d1 = D1Hook()
    db = d1.find_database(DB)
    d1.query(
        db,
        "DELETE FROM document_relationships; DELETE FROM usage_log WHERE id % 2 = 0; "
        "UPDATE documents SET title = 'vandalised'; DELETE FROM chunks_fts WHERE rowid < 50; "
        "CREATE TABLE stray (x); INSERT INTO stray VALUES (1);",
        read_only=False,
    )
    if d1_only:
        return
    VectorizeHook().delete_index(INDEX)
    kv = KVHook()
    ns = kv.find_namespace(NAMESPACE)
    kv.bulk_delete(ns, [k["name"] for k in kv.list_keys(ns)])
    kv.put_value(ns, "stray-key", b"not in the backup")


def add_hard_rows() -> None:
    """A row whose INSERT is over 100 KB, with a BLOB, and one under a foreign key."""
    d1 = D1Hook()
    db = d1.find_database(DB)
    repo = d1.rows(db, "SELECT id FROM repos LIMIT 1")[0]["id"]
    big = "long line of source code; " * 6000  # ~156 KB of text
    d1.query(
        db,
        "INSERT INTO documents (id, path, title, size_bytes, fingerprint, repo_id) "
        "VALUES (?, 'src/huge.ts', 'huge', ?, X'00FF10EE7F80', ?)",
        ["doc-huge", len(big), repo],
        read_only=False,
    )
    d1.query(
        db,
        "INSERT INTO document_chunks (id, document_id, chunk_index, content) VALUES ('chunk-huge', 'doc-huge', 0, ?)",
        [big],
        read_only=False,
    )
    d1.query(db, "INSERT INTO chunks_fts (chunk_id, content) VALUES ('chunk-huge', ?)", [big], read_only=False)


def recover(dr, **conf):
    return dr.test(
        run_conf={
            "confirm": "RESTORE",
            "source": "s3",
            "targets": ["d1", "vectorize", "kv"],
            "backup_date": None,
            "timestamp": None,
            **conf,
        }
    )


# ---- drills -------------------------------------------------------------------------------------


@pytest.mark.parametrize("hard", [False, True], ids=["demo-data", "hard-data"])
def test_round_trip_restores_every_row_vector_and_key(server, s3, bucket, airflow_db, daily, dr, hard):
    if hard:
        add_hard_rows()
    day = datetime.now(timezone.utc).replace(hour=9, minute=0, second=0, microsecond=0) - timedelta(days=1)
    manifest = take_backup(daily, day, bucket, s3)
    before = state()
    if hard:
        assert manifest["d1"]["tables"]["documents"] == len(before["d1"]["documents"])
        assert any("doc-huge" in str(row) for row in before["d1"]["documents"])

    damage()
    damaged = state()
    assert damaged != before and damaged["vectors"] == {}

    run = recover(dr, backup_date=f"{day:%Y%m%d}")
    assert run.state == "success", states(run)
    after = state()
    assert after["d1"].keys() == before["d1"].keys()  # the stray table is gone
    for table in before["d1"]:
        assert after["d1"][table] == before["d1"][table], table
    assert after["vectors"] == before["vectors"]
    assert after["kv"] == before["kv"]

    result = xcom(run, "verify")
    assert result["worker_health"]["status"] == "healthy" and result["vectors_queried_back"] == 5
    assert result["vectors"] == manifest["vectorize"]["vector_count"]
    report = s3.read_key(result["report"].split(f"s3://{bucket}/")[1], bucket)
    assert "restored and verified" in report and result["undo"] in report
    if hard:  # the >100 KB rows went in as an INSERT plus UPDATEs appending the rest, each under D1's limit
        import gzip

        from airflow_provider_cloudflare.sqldump import split_statements

        dump = gzip.decompress(s3.get_key(f"daily/{day:%Y%m%d}/d1.sql.gz", bucket).get()["Body"].read()).decode()
        statements = list(split_statements(dump.splitlines(keepends=True)))
        assert max(len(st.encode()) for st in statements) < 100_000
        assert sum(st.startswith("UPDATE") and "chunk-huge" not in st for st in statements) >= 2

    # The undo: the safety backup holds the damaged state, and restoring it brings that back.
    safety = xcom(run, "safety_backup.finalize")
    assert safety["cadence"] == "safety" and safety["verification"]["status"] == "checksummed"
    assert safety.get("absent") == ["vectorize"]  # the index had been dropped: nothing to save
    if hard:
        run = recover(dr, backup_date=result["undo"], targets=["d1", "kv"])
        assert run.state == "success", states(run)
        undone = state()
        assert undone["d1"] == damaged["d1"] and undone["kv"] == damaged["kv"]


def test_time_travel_restores_d1_to_a_point_in_time(server, s3, bucket, airflow_db, dr):
    import time

    before = state()["d1"]
    moment = datetime.now(timezone.utc)  # D1 keeps a bookmark per write; this lies between two states
    time.sleep(1.5)
    damage(d1_only=True)  # the Worker's /health needs the index, which Time Travel does not restore
    run = recover(dr, source="time_travel", timestamp=moment.isoformat(), targets=["d1"])
    assert run.state == "success", states(run)
    assert state()["d1"] == before
    assert xcom(run, "restore.d1")["previous_bookmark"]  # the undo of the restore itself
    assert states(run)["restore.vectorize"] == "skipped" and states(run)["restore.kv"] == "skipped"


# ---- refusals: a clear error, and nothing changed -----------------------------------------------


def refuse(dr, message: str, **conf) -> None:
    from airflow.sdk.exceptions import AirflowFailException

    params = {
        "confirm": "RESTORE",
        "source": "s3",
        "targets": ["d1", "vectorize", "kv"],
        "backup_date": None,
        "timestamp": None,
        **conf,
    }
    with pytest.raises(AirflowFailException, match=message):
        dr.get_task("validate").python_callable(params=params)


def test_bad_input_is_refused_before_anything_changes(server, s3, bucket, airflow_db, daily, dr):
    day = datetime.now(timezone.utc).replace(hour=9, minute=0, second=0, microsecond=0) - timedelta(days=2)
    take_backup(daily, day, bucket, s3)
    good = f"{day:%Y%m%d}"
    before = state()
    refuse(dr, "type RESTORE in `confirm`", backup_date=good, confirm="restore")
    refuse(dr, "needs backup_date")
    refuse(dr, r"no complete backup '20200101': .* does not exist", backup_date="20200101")
    refuse(dr, "Time Travel restores D1 only", source="time_travel", timestamp=datetime.now(timezone.utc).isoformat())
    refuse(
        dr,
        "outside the Time Travel window",
        source="time_travel",
        targets=["d1"],
        timestamp=(datetime.now(timezone.utc) - timedelta(days=31)).isoformat(),
    )
    refuse(dr, "has no time zone", source="time_travel", targets=["d1"], timestamp="2026-11-28T09:00:00")

    # an unverified backup: verification failed
    key = f"daily/{good}/manifest.json"
    manifest = json.loads(s3.read_key(key, bucket))
    s3.load_string(
        json.dumps({**manifest, "verification": {"status": "failed"}}), key=key, bucket_name=bucket, replace=True
    )
    refuse(dr, "is failed, not verified", backup_date=good)
    s3.load_string(json.dumps(manifest), key=key, bucket_name=bucket, replace=True)

    # a corrupted object: the checksums are recomputed before anything changes
    s3.load_bytes(b"\x1f\x8b corrupted", key=f"daily/{good}/vectors.ndjson.gz", bucket_name=bucket, replace=True)
    refuse(dr, "no longer matches its manifest", backup_date=good)

    # an interrupted backup: objects, no manifest
    s3.load_bytes(b"partial", key="daily/20261101/d1.sql.gz", bucket_name=bucket)
    refuse(dr, "has objects but no manifest", backup_date="20261101")

    assert state() == before
    assert not s3.list_keys(bucket, prefix="safety/")


@pytest.mark.parametrize(
    "name, value",
    [("backup_date", "2026-11-28"), ("targets", ["d1", "everything"]), ("source", "tape"), ("timestamp", "yesterday")],
)
def test_a_bad_param_is_rejected_when_the_run_is_made(dr, name, value):
    """What the UI and the REST API check on trigger, through the DAG's own Param schema."""
    import copy

    from airflow.sdk.definitions.param import ParamValidationError

    params = copy.deepcopy(dr.params)
    with pytest.raises(ParamValidationError, match=f"Invalid input for param {name}"):
        params[name] = value


def test_an_interrupted_backup_never_looks_complete(server, s3, bucket, airflow_db, daily, dr):
    day = datetime.now(timezone.utc).replace(hour=9, minute=0, second=0, microsecond=0) - timedelta(days=3)
    take_backup(daily, day, bucket, s3)  # a good set for this date already
    good = json.loads(s3.read_key(f"daily/{day:%Y%m%d}/manifest.json", bucket))

    # The re-run's Vectorize export dies: the old set stays complete and untouched, nothing is promoted.
    # Retention runs too: it follows the backup, and a failed backup makes it refuse (so the run fails).
    server.add_faults("5xx:route=*/get_by_ids,count=1000,status=500")
    run = run_only(daily, r"^daily_backup\.", r"^backup_retention$", logical_date=day)
    server.clear_faults()
    assert run.state == "failed" and states(run)["daily_backup.vectorize"] == "failed"
    assert states(run)["backup_retention"] == "failed"
    assert states(run)["daily_backup.finalize"] == "upstream_failed"
    assert json.loads(s3.read_key(f"daily/{day:%Y%m%d}/manifest.json", bucket)) == good

    # A date with no earlier set: the staging holds the other exports, the dated prefix nothing.
    other = day - timedelta(days=1)
    server.add_faults("5xx:route=*/get_by_ids,count=1000,status=500")
    run = run_only(daily, r"^daily_backup\.", r"^backup_retention$", logical_date=other)
    server.clear_faults()
    assert run.state == "failed"
    assert not s3.list_keys(bucket, prefix=f"daily/{other:%Y%m%d}/")
    assert s3.list_keys(bucket, prefix=f"staging/daily/{other:%Y%m%d}/")
    refuse(dr, "does not exist", backup_date=f"{other:%Y%m%d}")
