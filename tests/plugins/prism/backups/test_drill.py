"""The quarterly restore drill against the S3 stand-in: which set it picks, and what it records when a
set's objects do not match its manifest (no restore is tried then). The drill's restore into scratch
resources, end to end, is tests/dags/test_prism_quarterly.py's."""

from __future__ import annotations

import hashlib
import json
import uuid
from types import SimpleNamespace

import pytest
from airflow.sdk.exceptions import AirflowException

from prism.backups import drill
from prism.backups.verification import SCRATCH_PREFIX

MANIFEST = {
    "cadence": "daily",
    "period": "20260630",
    "logical_date": "2026-06-30T00:00:00+00:00",
    "captured_at": "2026-06-30T00:05:00+00:00",
    "objects": [{"kind": "kv", "key": "kv.ndjson.gz", "sha256": "0" * 64, "bytes": 3}],
    "kv": {"key_count": 1},
    "verification": {"status": "verified"},
}


@pytest.fixture
def bucket(s3):
    name = f"drill-{uuid.uuid4().hex[:10]}"
    s3.create_bucket(bucket_name=name)
    return name


def put(s3, bucket: str, cadence: str, period: str, manifest: dict | None) -> None:
    s3.load_string("xyz", f"{cadence}/{period}/kv.ndjson.gz", bucket)
    if manifest is not None:
        s3.load_string(json.dumps(manifest), f"{cadence}/{period}/manifest.json", bucket)


def test_the_drill_picks_the_newest_complete_set_with_a_token_of_its_run(s3, bucket):
    assert drill.choose(s3, bucket, "prism_quarterly/r1")["cadence"] is None  # an empty bucket: nothing to drill
    put(s3, bucket, "monthly", "202606", MANIFEST)
    put(s3, bucket, "daily", "20260629", MANIFEST)
    put(s3, bucket, "daily", "20260630", None)  # interrupted: not a set
    chosen = drill.choose(s3, bucket, "prism_quarterly/r1")
    assert (chosen["bucket"], chosen["cadence"], chosen["period"]) == (bucket, "daily", "20260629")
    assert chosen["scratch"] == SCRATCH_PREFIX + chosen["token"]
    # The same run (a retry) finds the same scratch resources; another run has its own.
    assert drill.choose(s3, bucket, "prism_quarterly/r1")["token"] == chosen["token"]
    assert drill.choose(s3, bucket, "prism_quarterly/r2")["token"] != chosen["token"]


def test_a_set_whose_objects_do_not_match_fails_the_drill_and_is_recorded(s3, bucket):
    put(s3, bucket, "daily", "20260630", MANIFEST)
    chosen = drill.choose(s3, bucket, "prism_quarterly/r")
    pushed = {}
    ti = SimpleNamespace(xcom_push=lambda key, value: pushed.update({key: value}))

    with pytest.raises(AirflowException, match="restore drill of daily/20260630 FAILED"):
        drill.restore_drill(chosen, ti=ti, run_id="r")

    outcome = pushed[drill.RESULT_KEY]  # pushed before the failure, for the review
    assert outcome["status"] == "failed" and outcome["d1"] is None and outcome["kv_keys"] == 1
    found = hashlib.sha256(b"xyz").hexdigest()
    where = f"s3://{bucket}/daily/20260630/kv.ndjson.gz"
    assert outcome["problems"] == [f"kv: {where} has sha256 {found}, the manifest says {'0' * 64}"]
    assert outcome["notes"] == ["not restored: the objects do not match the manifest"]
    recorded = json.loads(s3.read_key("daily/20260630/manifest.json", bucket))
    assert recorded["verification"]["status"] == "failed" and recorded["verification"]["method"] == drill.METHOD
    assert recorded["verification"]["problems"] == outcome["problems"] and recorded["verification"]["dag_run"] == "r"
    assert recorded["restorable"] == {"d1": False, "vectorize": False, "kv": False}


def test_a_set_that_lost_its_manifest_after_the_pick_fails(s3, bucket):
    with pytest.raises(AirflowException, match="daily/20260630 lost its manifest after it was picked"):
        drill.check_and_restore(s3, bucket, "daily", "20260630", "t0")
