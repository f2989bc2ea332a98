"""prism_daily's verification and prism_disaster_recovery's `validate` with a set that cannot restore KV.

Found: a set taken with `backups.kv_include_values: false` was "verified"; a recovery of it then
failed in `restore.kv` while `restore.d1` and `restore.vectorize` replaced the live data. Now the set
is `partial` (D1 and Vectorize proven, KV not), and `validate` refuses a KV target before the safety
backup and before any restore, leaving D1, Vectorize and KV as they were.
"""

from __future__ import annotations

import hashlib
import json
from datetime import datetime, timedelta, timezone

import pytest
from dagtest import d1_state, kv_state, run_only, states, vector_state, xcom

from airflow_provider_cloudflare.hooks.d1 import D1Hook
from airflow_provider_cloudflare.hooks.kv import KVHook
from airflow_provider_cloudflare.hooks.vectorize import VectorizeHook
from prism.backups.verification import SCRATCH_PREFIX

DB, INDEX, NAMESPACE = "claudes-friend-db", "claudes-companion", "prism-cache"


def fingerprint() -> str:
    """One hash of every D1 row, every vector and every KV key (value, metadata, expiration)."""
    d1, kv = D1Hook(), KVHook()
    state = {
        "d1": d1_state(d1, d1.find_database(DB)),
        "vectors": vector_state(VectorizeHook(), INDEX),
        "kv": {k: (v[0].hex(), *v[1:]) for k, v in kv_state(kv, kv.find_namespace(NAMESPACE)).items()},
    }
    return hashlib.sha256(json.dumps(state, sort_keys=True, default=str).encode()).hexdigest()


def validate(dr, **conf):
    params = {
        "confirm": "RESTORE",
        "source": "s3",
        "targets": ["d1", "vectorize", "kv"],
        "backup_date": None,
        "timestamp": None,
        **conf,
    }
    return dr.get_task("validate").python_callable(params=params)


def test_a_set_without_kv_values_is_partial_and_recovery_refuses_kv(
    server, s3, bucket, configure, airflow_db, daily, dr
):
    from airflow.sdk.exceptions import AirflowFailException

    configure({"backups": {"bucket": bucket, "kv_include_values": False}})
    day = datetime.now(timezone.utc).replace(hour=9, minute=0, second=0, microsecond=0) - timedelta(days=1)
    run = run_only(daily, r"^daily_backup\.", logical_date=day)
    # A configured choice is not a failure: the run succeeds, and the set says what it cannot do.
    assert run.state == "success", states(run)
    key = f"daily/{day:%Y%m%d}/manifest.json"
    manifest = json.loads(s3.read_key(key, bucket))
    assert manifest["verification"]["status"] == "partial", manifest["verification"]
    assert manifest["restorable"] == {"d1": True, "vectorize": True, "kv": False}
    assert manifest["restorable_reasons"]["kv"].startswith("taken without values")
    assert xcom(run, "daily_backup.verify")["status"] == "partial"
    report = s3.read_key(f"reports/backups/daily/{day:%Y%m%d}/verification.md", bucket)
    assert "Status: **partial**" in report and "- kv: NO: taken without values" in report
    assert not [n for n in KVHook().list_namespaces() if n["title"].startswith(SCRATCH_PREFIX)]

    before = fingerprint()
    expected = (
        f"refusing to restore: set daily/{day:%Y%m%d} cannot restore kv (taken without values; "
        "backups.kv_include_values was false). Nothing was changed."
    )
    for targets in (["kv"], ["d1", "vectorize", "kv"], ["vectorize", "kv"]):
        with pytest.raises(AirflowFailException) as err:
            validate(dr, backup_date=f"{day:%Y%m%d}", targets=targets)
        assert str(err.value) == expected
    # D1 and Vectorize were proven: validate lets them through (the restore itself is not run here).
    assert validate(dr, backup_date=f"{day:%Y%m%d}", targets=["d1", "vectorize"])["targets"] == ["d1", "vectorize"]

    # The whole DAG: validate fails, so no safety backup and no restore ran.
    run = dr.test(
        run_conf={
            "confirm": "RESTORE",
            "source": "s3",
            "targets": ["kv"],
            "backup_date": f"{day:%Y%m%d}",
            "timestamp": None,
        }
    )
    assert run.state == "failed"
    got = states(run)
    assert got["validate"] == "failed"
    assert not [t for t, s in got.items() if t != "validate" and s not in ("upstream_failed", "skipped", "None")], got
    assert not s3.list_keys(bucket, prefix="safety/")
    assert fingerprint() == before

    # A manifest written before `restorable` existed: judged by what it records (no values: no KV).
    old = {k: v for k, v in manifest.items() if k not in ("restorable", "restorable_reasons")}
    old["verification"] = {**old["verification"], "status": "verified"}
    s3.load_string(json.dumps(old), key=key, bucket_name=bucket, replace=True)
    with pytest.raises(AirflowFailException, match=r"cannot restore kv \(taken without values"):
        validate(dr, backup_date=f"{day:%Y%m%d}", targets=["kv"])
    assert fingerprint() == before


def test_a_safety_set_keeps_kv_values_whatever_the_config_says(server, s3, bucket, configure, airflow_db, dr):
    """The safety set is a recovery's undo: with kv_include_values false it still holds KV's values,
    so a restore that replaces live KV can be undone."""
    configure({"backups": {"bucket": bucket, "kv_include_values": False}})
    run = run_only(
        dr,
        r"^safety_backup\.",
        run_conf={
            "confirm": "RESTORE",
            "source": "s3",
            "targets": ["d1", "vectorize"],
            "backup_date": "20200101",
            "timestamp": None,
        },
    )
    assert states(run)["safety_backup.finalize"] == "success", states(run)
    (key,) = [k for k in s3.list_keys(bucket, prefix="safety/") if k.endswith("/manifest.json")]
    manifest = json.loads(s3.read_key(key, bucket))
    assert manifest["kv"]["values_included"] is True, manifest["kv"]
    assert manifest["restorable"]["kv"] is True, manifest.get("restorable_reasons")
