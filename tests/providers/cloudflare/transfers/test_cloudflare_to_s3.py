"""Backup operators against localflare and the S3 stand-in: what lands in the bucket is checked, byte
for byte, against the source (D1 row counts and a re-import, Vectorize vectors, KV values).

Operators run through `execute(context)` directly (inline DAGs are not in a bundle, so `dag.test()`
cannot run them). The deferrable path is driven by hand: execute() raises TaskDeferred, the trigger
runs under asyncio, and its event goes to execute_complete, as the triggerer and worker would.
"""

from __future__ import annotations

import asyncio
import base64
import gzip
import hashlib
import importlib
import json
import math
import time
import uuid
from datetime import timedelta

import pytest
import structlog
from airflow.sdk import DAG
from airflow.sdk.exceptions import AirflowException, TaskDeferred

from airflow_provider_cloudflare.errors import CloudflareServerError, CloudflareTimeout
from airflow_provider_cloudflare.hooks.d1 import D1Hook
from airflow_provider_cloudflare.hooks.kv import KVHook
from airflow_provider_cloudflare.hooks.vectorize import VectorizeHook
from airflow_provider_cloudflare.transfers.cloudflare_to_s3 import (
    D1BackupOperator,
    KVBackupOperator,
    VectorizeBackupOperator,
)
from airflow_provider_cloudflare.triggers.cloudflare import D1PollTrigger

BUCKET = "prism-backups"
DEMO_DB, DEMO_INDEX, DEMO_NS = "claudes-friend-db", "claudes-companion", "prism-cache"


# ---- helpers ---------------------------------------------------------------------------------


@pytest.fixture
def new_key(s3):
    """new_key(ext) -> a unique object key; every key handed out is deleted after the test."""
    keys = []

    def make(ext: str = "gz") -> str:
        keys.append(f"tests/{uuid.uuid4().hex}.{ext}")
        return keys[-1]

    yield make
    s3.delete_objects(BUCKET, keys)


@pytest.fixture
def scratch_dbs():
    """create(hook, name_prefix) -> a new D1 database uuid; all are deleted after the test."""
    made = []

    def create(hook: D1Hook, prefix: str = "test-backup") -> str:
        db = hook.create_database(f"{prefix}-{uuid.uuid4().hex[:12]}")["uuid"]
        made.append((hook, db))
        return db

    yield create
    for hook, db in made:
        hook.delete_database(db)


def fill_plain_db(hook: D1Hook, db: str) -> None:
    """A small database without virtual tables, which D1's native export accepts."""
    hook.query(
        db,
        "CREATE TABLE items (id INTEGER PRIMARY KEY, name TEXT, blob BLOB);\n"
        "CREATE TABLE tags (item_id INTEGER REFERENCES items(id), tag TEXT);\n"
        "CREATE INDEX tags_item ON tags(item_id);",
    )
    hook.batch(db, [("INSERT INTO items (name, blob) VALUES (?, ?)", [f"item '{i}'", None]) for i in range(7)])
    hook.query(
        db,
        "INSERT INTO tags SELECT id, 'tag-' || id FROM items WHERE id <= 3; "
        "UPDATE items SET blob = X'00FF10' WHERE id = 1",
    )


def object_bytes(s3, key: str) -> bytes:
    return s3.get_key(key, BUCKET).get()["Body"].read()


def assert_object_matches(s3, result: dict) -> bytes:
    """The object at the key is exactly what the result describes (size and sha256, recomputed)."""
    assert (result["bucket"], s3.check_for_key(result["key"], BUCKET)) == (BUCKET, True)
    data = object_bytes(s3, result["key"])
    assert len(data) == result["bytes"]
    assert hashlib.sha256(data).hexdigest() == result["sha256"]
    return data


def table_counts(hook: D1Hook, db: str) -> dict[str, int]:
    """COUNT(*) of every user table, virtual (FTS5) tables included and their shadow tables left out."""
    names = [
        t["name"]
        for t in hook.rows(db, "PRAGMA table_list")
        if t["schema"] == "main" and t["type"] in ("table", "virtual") and not t["name"].startswith(("sqlite_", "_cf_"))
    ]
    return {name: hook.rows(db, f'SELECT COUNT(*) AS n FROM "{name}"')[0]["n"] for name in names}


def run_trigger(trigger):
    """The trigger's first event, as the triggerer would get it."""

    async def first():
        async for event in trigger.run():
            return event

    return asyncio.run(first())


def ndjson(data: bytes) -> list[dict]:
    return [json.loads(line) for line in gzip.decompress(data).splitlines()]


# ---- D1 --------------------------------------------------------------------------------------


def test_auto_mode_on_the_demo_db_falls_back_to_a_logical_dump_that_restores(cf, s3, new_key, scratch_dbs, tmp_path):
    hook = D1Hook()
    demo = hook.find_database(DEMO_DB)
    op = D1BackupOperator(task_id="backup_d1", database=DEMO_DB, bucket=BUCKET, key=new_key("sql.gz"))
    result = op.execute({})

    # D1's native export refuses the FTS5 table, so auto falls back and says why.
    assert result["mode"] == "logical" and result["database_id"] == demo
    assert "virtual table" in result["fallback_reason"].lower()
    data = assert_object_matches(s3, result)

    # Row counts in the result are those of the database, FTS5 table included.
    counts = table_counts(hook, demo)
    assert counts["chunks_fts"] > 0 and "chunks_fts_data" not in counts
    assert {t: result["rows"].get(t, 0) for t in counts} == counts
    assert set(result["rows"]) <= set(counts)
    dump = gzip.decompress(data)
    assert len(dump) == result["dump_bytes"]

    # The dump imports into an empty database and gives the same tables and counts.
    (tmp_path / "dump.sql").write_bytes(dump)
    scratch = scratch_dbs(hook, "test-backup-restore")
    hook.import_sql(scratch, tmp_path / "dump.sql", poll_interval=0.2, timeout=120)
    assert table_counts(hook, scratch) == counts


def test_native_mode_on_a_db_without_virtual_tables(cf, s3, new_key, scratch_dbs):
    hook = D1Hook()
    db = scratch_dbs(hook)
    fill_plain_db(hook, db)
    op = D1BackupOperator(
        task_id="backup_native", database=db, mode="native", poll_interval=0.1, bucket=BUCKET, key=new_key("sql.gz")
    )
    with structlog.testing.capture_logs() as logs:
        result = op.execute({})

    assert result["mode"] == "native" and "fallback_reason" not in result
    assert result["rows"] == {"items": 7, "tags": 3}
    dump = gzip.decompress(assert_object_matches(s3, result)).decode()
    assert "x'00ff10'" in dump.lower() and "item ''0''" in dump  # BLOBs and quotes as SQL literals
    # The time D1 was blocked is reported (logged; the result carries it too, see the next test).
    assert any(e["event"].startswith("D1 was blocked by the native export for") for e in logs)


def test_native_result_reports_blocked_seconds(cf, s3, new_key, scratch_dbs):
    # The native export blocks the database; the backup's result should say for how long, as the
    # hook's export_native() does. only logs it and drops it from the result.)
    hook = D1Hook()
    db = scratch_dbs(hook)
    fill_plain_db(hook, db)
    result = D1BackupOperator(
        task_id="backup_native", database=db, mode="native", poll_interval=0.1, bucket=BUCKET, key=new_key("sql.gz")
    ).execute({})
    assert result["mode"] == "native"
    assert isinstance(result.get("blocked_seconds"), float) and result["blocked_seconds"] > 0


def test_native_mode_on_the_demo_db_fails_with_a_clear_message(cf, s3, new_key):
    key = new_key("sql.gz")
    op = D1BackupOperator(task_id="backup_native", database=DEMO_DB, mode="native", bucket=BUCKET, key=key)
    with pytest.raises(AirflowException) as exc:
        op.execute({})
    message = str(exc.value)
    assert "native export refused" in message and "Virtual Tables (fts5): chunks_fts" in message
    assert "mode='logical'" in message  # it says what to do instead
    assert not s3.check_for_key(key, BUCKET)


def test_an_unknown_mode_is_refused_before_any_request(new_key):
    # The connection does not exist: any request would fail differently.
    op = D1BackupOperator(
        task_id="b",
        database=DEMO_DB,
        mode="fast",
        bucket=BUCKET,
        key="x.sql.gz",
        cloudflare_conn_id="no_such_connection",
    )
    with pytest.raises(AirflowException, match=r"mode must be one of \('auto', 'native', 'logical'\), not 'fast'"):
        op.execute({})


def test_backups_take_the_callers_pool_and_template_bucket_and_key():
    with DAG("test_backup_templates", schedule=None):
        ops = [
            D1BackupOperator(
                task_id="d1",
                database="{{ params.db }}",
                bucket="{{ params.bucket }}",
                key="d1/{{ ds }}/{{ params.db }}.sql.gz",
            ),
            VectorizeBackupOperator(task_id="vec", index="{{ params.index }}", bucket=BUCKET, key="v/{{ ds }}.gz"),
            KVBackupOperator(
                task_id="kv", namespace="{{ params.ns }}", bucket=BUCKET, key="kv/{{ ds }}.gz", pool="heavy"
            ),
        ]
    context = {"ds": "2025-03-01", "params": {"db": DEMO_DB, "bucket": BUCKET, "index": DEMO_INDEX, "ns": DEMO_NS}}
    for op in ops:
        op.render_template_fields(context)
    assert [op.pool for op in ops] == ["default_pool", "default_pool", "heavy"]  # the provider picks no pool of its own
    assert (ops[0].bucket, ops[0].key, ops[0].database) == (BUCKET, f"d1/2025-03-01/{DEMO_DB}.sql.gz", DEMO_DB)
    assert (ops[1].index, ops[1].key, ops[2].namespace) == (DEMO_INDEX, "v/2025-03-01.gz", DEMO_NS)


def test_deferrable_native_export_waits_in_the_triggerer(lf_fresh, connect, s3, new_key):
    # Exports take 1.5 s here, so the first answer is `active` and the operator must defer.
    server = lf_fresh("--export-min-seconds", "1.5", seed=False)
    connect(server, budget={"bulk_rps": 0})
    hook = D1Hook()
    db = hook.create_database("test-deferrable")["uuid"]
    fill_plain_db(hook, db)
    key = new_key("sql.gz")
    op = D1BackupOperator(
        task_id="backup_deferred",
        database="test-deferrable",
        mode="native",
        deferrable=True,
        poll_interval=0.2,
        export_timeout=timedelta(minutes=2),
        bucket=BUCKET,
        key=key,
    )
    with pytest.raises(TaskDeferred) as deferred:
        op.execute({})
    d = deferred.value
    assert d.method_name == "execute_complete" and d.kwargs["db"] == db
    assert d.timeout == timedelta(minutes=7)  # export_timeout plus a margin for the triggerer
    assert not s3.check_for_key(key, BUCKET)  # nothing is written before the export completes

    # The trigger serialises to an importable class and kwargs without the token, and rebuilds.
    classpath, kwargs = d.trigger.serialize()
    module, _, name = classpath.rpartition(".")
    cls = getattr(importlib.import_module(module), name)
    assert cls is D1PollTrigger
    assert kwargs["database_id"] == db and kwargs["kind"] == "export" and kwargs["conn_id"] == "cloudflare_default"
    assert server.token not in json.dumps(kwargs) and not {"token", "password", "api_token"} & set(kwargs)
    assert time.time() < kwargs["deadline"] <= time.time() + 120
    rebuilt = cls(**kwargs)
    assert rebuilt.serialize() == (classpath, kwargs)

    event = run_trigger(rebuilt)
    assert event.payload["status"] == "complete"
    json.dumps(event.payload)  # events are stored as JSON
    result = op.execute_complete({}, event.payload, **d.kwargs)

    assert result["mode"] == "native" and result["database_id"] == db
    assert result["rows"] == {"items": 7, "tags": 3}
    assert_object_matches(s3, result)


def test_deferred_export_refused_by_d1_falls_back_in_auto_and_fails_in_native(cf, api, s3, new_key):
    # An export that fails in the triggerer (the FTS5 refusal) arrives as an error event.
    hook = D1Hook()
    demo = hook.find_database(DEMO_DB)
    started = api.post(f"/accounts/{{acct}}/d1/database/{demo}/export", json={"output_format": "polling"}).json()[
        "result"
    ]
    event = run_trigger(
        D1PollTrigger("cloudflare_default", demo, "export", started["at_bookmark"], 0.1, time.time() + 30)
    )
    assert event.payload["status"] == "error"

    native_key = new_key("sql.gz")
    native = D1BackupOperator(
        task_id="n", database=DEMO_DB, mode="native", deferrable=True, bucket=BUCKET, key=native_key
    )
    with pytest.raises(AirflowException, match="native export refused"):
        native.execute_complete({}, event.payload, db=demo, started=time.time())
    assert not s3.check_for_key(native_key, BUCKET)

    auto = D1BackupOperator(
        task_id="a", database=DEMO_DB, mode="auto", deferrable=True, bucket=BUCKET, key=new_key("sql.gz")
    )
    result = auto.execute_complete({}, event.payload, db=demo, started=time.time())
    assert result["mode"] == "logical" and "virtual table" in result["fallback_reason"].lower()
    assert_object_matches(s3, result)


def test_deferred_export_past_its_deadline_fails_and_writes_nothing(lf_fresh, connect, s3, new_key):
    server = lf_fresh("--faults", "export_stall", seed=False)  # the next export never completes
    connect(server, budget={"bulk_rps": 0})
    hook = D1Hook()
    db = hook.create_database("test-stall")["uuid"]
    fill_plain_db(hook, db)
    key = new_key("sql.gz")
    op = D1BackupOperator(
        task_id="b",
        database=db,
        mode="native",
        deferrable=True,
        poll_interval=0.2,
        export_timeout=timedelta(seconds=1),
        bucket=BUCKET,
        key=key,
    )
    with pytest.raises(TaskDeferred) as deferred:
        op.execute({})
    event = run_trigger(deferred.value.trigger)
    assert event.payload["status"] == "timeout"
    with pytest.raises(AirflowException, match=f"D1 export of {db} failed: D1PollTrigger gave up at its deadline"):
        op.execute_complete({}, event.payload, **deferred.value.kwargs)
    assert not s3.check_for_key(key, BUCKET)


@pytest.mark.parametrize("setting, expected", [("True", True), ("False", False), (None, False)])
def test_deferrable_follows_default_deferrable_unless_given(monkeypatch, setting, expected):
    if setting is None:
        monkeypatch.delenv("AIRFLOW__OPERATORS__DEFAULT_DEFERRABLE", raising=False)  # Airflow's default: False
    else:
        monkeypatch.setenv("AIRFLOW__OPERATORS__DEFAULT_DEFERRABLE", setting)
    common = {"database": "db", "bucket": BUCKET, "key": "k"}
    assert D1BackupOperator(task_id="unset", **common).deferrable is expected
    assert D1BackupOperator(task_id="on", deferrable=True, **common).deferrable is True
    assert D1BackupOperator(task_id="off", deferrable=False, **common).deferrable is False


def test_default_deferrable_true_makes_a_native_backup_defer(lf_fresh, connect, monkeypatch, s3, new_key):
    server = lf_fresh("--export-min-seconds", "1.5", seed=False)
    connect(server, budget={"bulk_rps": 0})
    hook = D1Hook()
    db = hook.create_database("test-default-deferrable")["uuid"]
    fill_plain_db(hook, db)
    monkeypatch.setenv("AIRFLOW__OPERATORS__DEFAULT_DEFERRABLE", "True")
    op = D1BackupOperator(task_id="b", database=db, mode="native", poll_interval=0.2, bucket=BUCKET, key=new_key())
    with pytest.raises(TaskDeferred) as deferred:
        op.execute({})
    assert isinstance(deferred.value.trigger, D1PollTrigger)
    assert run_trigger(deferred.value.trigger).payload["status"] == "complete"


def test_stalled_native_export_times_out_and_writes_nothing(lf_fresh, connect, s3, new_key):
    server = lf_fresh("--faults", "export_stall", seed=False)
    connect(server, budget={"bulk_rps": 0})
    hook = D1Hook()
    db = hook.create_database("test-stall")["uuid"]
    fill_plain_db(hook, db)
    key = new_key("sql.gz")
    op = D1BackupOperator(
        task_id="b",
        database=db,
        mode="native",
        poll_interval=0.2,
        export_timeout=timedelta(seconds=1.5),
        bucket=BUCKET,
        key=key,
    )
    started = time.monotonic()
    with pytest.raises(CloudflareTimeout, match="did not complete within"):
        op.execute({})
    assert time.monotonic() - started < 10
    assert not s3.check_for_key(key, BUCKET)


# ---- Vectorize -------------------------------------------------------------------------------


def test_vectorize_backup_holds_every_vector_of_the_index(cf, s3, new_key):
    op = VectorizeBackupOperator(task_id="backup_vec", index=DEMO_INDEX, bucket=BUCKET, key=new_key("ndjson.gz"))
    result = op.execute({})

    hook = VectorizeHook()
    info = hook.info(DEMO_INDEX)
    assert (result["vector_count"], result["dimensions"], result["metric"]) == (info["vectorCount"], 384, "cosine")
    assert result["vector_count"] == 615 and result["missing_during_export"] == 0
    records = ndjson(assert_object_matches(s3, result))
    assert len(records) == 615

    # Same ids as the index lists, and values and metadata equal to what get_by_ids returns.
    by_id = {r["id"]: r for r in records}
    assert set(by_id) == set(hook.list_ids(DEMO_INDEX))
    for vec in hook.get_by_ids(DEMO_INDEX, list(by_id)):
        rec = by_id[vec["id"]]
        assert len(rec["values"]) == 384
        assert all(math.isclose(a, b, abs_tol=1e-6) for a, b in zip(rec["values"], vec["values"]))
        assert rec["metadata"] == (vec.get("metadata") or {}) and rec["namespace"] == vec.get("namespace")


def test_vectorize_backup_failing_midway_leaves_no_object(lf_fresh, connect, s3, new_key):
    # Listing works, fetching the vectors keeps failing: the task fails and the key stays empty.
    server = lf_fresh("--faults", "5xx:route=*get_by_ids*,count=-1")
    connect(server, budget={"bulk_rps": 0})
    key = new_key("ndjson.gz")
    op = VectorizeBackupOperator(task_id="backup_vec", index=DEMO_INDEX, bucket=BUCKET, key=key)
    with pytest.raises(CloudflareServerError):
        op.execute({})
    counters = server.counters()
    assert counters["5xx_sent"] >= 1 and any("/list" in k for k in counters if k.startswith("route:"))
    assert not s3.check_for_key(key, BUCKET)


# ---- KV --------------------------------------------------------------------------------------


def test_kv_backup_keeps_values_metadata_and_expiration(cf, s3, new_key):
    key = new_key("ndjson.gz")
    with DAG("test_kv_backup", schedule=None):
        op = KVBackupOperator(task_id="backup_kv", namespace="{{ params.ns }}", bucket=BUCKET, key="{{ params.key }}")
    op.render_template_fields({"params": {"ns": DEMO_NS, "key": key}})
    result = op.execute({})

    hook = KVHook()
    ns = hook.find_namespace(DEMO_NS)
    assert (result["namespace_id"], result["key_count"], result["values_included"]) == (ns, 203, True)
    assert result["vanished_during_snapshot"] == 0 and result["key"] == key
    records = {r["key"]: r for r in ndjson(assert_object_matches(s3, result))}

    # Every key, with the expiration and metadata KV lists for it.
    listed = {k["name"]: k for k in hook.list_keys(ns)}
    assert set(records) == set(listed) and len(records) == 203
    for name, k in listed.items():
        assert records[name]["expiration"] == k.get("expiration")
        assert records[name]["metadata"] == k.get("metadata")
    assert sum(r["expiration"] is not None for r in records.values()) > 0

    # Values: the binary ones byte for byte, the text ones equal to a bulk read.
    binary = [n for n in records if n.startswith("blob:")]
    assert len(binary) == 2
    for name in binary:
        value = base64.b64decode(records[name]["value_b64"])
        assert value == hook.get_value(ns, name) and b"\x00\xff" in value
        with pytest.raises(UnicodeDecodeError):
            value.decode()
    text = sorted(set(records) - set(binary))
    for start in range(0, len(text), 100):
        for name, value in hook.bulk_get(ns, text[start : start + 100], with_metadata=False).items():
            assert base64.b64decode(records[name]["value_b64"]).decode() == value


def test_kv_backup_without_values(cf, s3, new_key):
    result = KVBackupOperator(
        task_id="backup_kv", namespace=DEMO_NS, include_values=False, bucket=BUCKET, key=new_key("ndjson.gz")
    ).execute({})
    assert (result["key_count"], result["values_included"]) == (203, False)
    records = ndjson(assert_object_matches(s3, result))
    assert len(records) == 203
    assert all(set(r) == {"key", "expiration", "metadata"} for r in records)


# ---- determinism -----------------------------------------------------------------------------


@pytest.mark.parametrize(
    "make",
    [
        lambda key: VectorizeBackupOperator(task_id="v", index=DEMO_INDEX, bucket=BUCKET, key=key),
        lambda key: KVBackupOperator(task_id="k", namespace=DEMO_NS, bucket=BUCKET, key=key),
    ],
    ids=["vectorize", "kv"],
)
def test_rerunning_a_backup_of_unchanged_data_gives_the_same_object(cf, s3, new_key, make):
    # gzip is written with mtime 0, so the same content gives the same bytes, and retries are idempotent.
    key = new_key("ndjson.gz")
    first = make(key).execute({})
    data = object_bytes(s3, key)
    second = make(key).execute({})
    assert (second["sha256"], second["bytes"]) == (first["sha256"], first["bytes"])
    assert object_bytes(s3, key) == data
