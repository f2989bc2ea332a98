"""The quarterly restore drill of an existing backup set (prism_quarterly's `q3.backup_testing`):

    pick_set (a setup) -> restore_drill -> drop_scratch (a teardown)

`pick_set` takes the newest complete daily set, else the newest complete monthly one; `restore_drill`
reads its objects back against the manifest (size, sha256, content counted), restores it into scratch
resources and compares them with the backup (backups.verification), records the result in the set's
manifest, and fails when the set does not restore as the manifest says. The scratch token derives from
the run, so the teardown finds what a drill that died left behind. The drill tests the backups as they
are now: it skips inside a backfill, and when the Param `run_restore_drill` is false.
"""

from __future__ import annotations

import logging

from airflow.sdk.exceptions import AirflowException, AirflowSkipException

from airflow_provider_cloudflare.hooks.d1 import D1Hook
from airflow_provider_cloudflare.hooks.kv import KVHook
from prism.backups import sets as backup_sets
from prism.backups import verification
from prism.backups.inventory import bucket_sets, newest_complete
from prism.monitoring.dashboard_records import backup_snapshot, record
from prism.runtime import in_backfill
from prism.settings import connections
from prism.settings.config import runtime_config

log = logging.getLogger(__name__)
DAG_ID = "prism_quarterly"  # the DAG the drill runs in: its run ids key the scratch token
METHOD = "quarterly restore drill"
RESULT_KEY = "drill"  # the XCom key of the drill's result, pushed before a failure too


def choose(s3, bucket: str, run_key: str) -> dict:
    """The set to drill (cadence None: there is no complete one) and its scratch token and name."""
    cadence, period = newest_complete(bucket_sets(s3, bucket)) or (None, None)
    token = backup_sets.run_token(run_key)
    return {
        "bucket": bucket,
        "cadence": cadence,
        "period": period,
        "token": token,
        "scratch": verification.scratch_name(token),
    }


def pick_set(**context) -> dict:
    """The set the drill tests: the newest complete daily set, else the newest complete monthly
    one (cadence None: there is none). Its scratch token derives from the run, so the
    teardown finds what a drill that died left behind."""
    if not context["params"]["run_restore_drill"]:
        raise AirflowSkipException("the restore drill is off (Param run_restore_drill is false)")
    if in_backfill(context):
        raise AirflowSkipException(
            "the restore drill tests the backups as they are now, so it is skipped inside a backfill"
        )
    return choose(connections.s3(), runtime_config()["backups"]["bucket"], f"{DAG_ID}/{context['run_id']}")


def check_and_restore(s3, bucket: str, cadence: str, period: str, token: str) -> tuple[dict, dict]:
    """(the set's manifest, the drill's result): its objects read back against the manifest and, when
    they match, the set restored into scratch resources and compared (verification.restore_and_compare)."""
    manifest = backup_sets.load_manifest(s3, bucket, cadence, period)
    if manifest is None:
        raise AirflowException(f"{cadence}/{period} lost its manifest after it was picked (retention?)")
    base = backup_sets.prefix(cadence, period)
    problems = backup_sets.check_objects(s3, bucket, base, manifest)
    if problems:
        return manifest, {"problems": problems, "notes": ["not restored: the objects do not match the manifest"]}
    cf = runtime_config()["cloudflare"]
    return manifest, verification.restore_and_compare(
        s3,
        bucket,
        base,
        manifest,
        token,
        source_db=D1Hook().find_database(cf["d1_database"]),
        source_index=cf["vectorize_index"],
        source_namespace=KVHook().find_namespace(cf["kv_namespace"]),
    )


def record_result(s3, chosen: dict, manifest: dict, result: dict, run_id: str) -> dict:
    """Write the drill's result into the set's manifest; what the review reports of it."""
    cadence = chosen["cadence"]
    # partial: the set restores D1 and Vectorize but, by how it was taken, not KV
    status = result.get("status") or ("failed" if result["problems"] else "verified")
    figures = {k: result.get(k) for k in ("problems", "notes", "d1", "vectorize", "kv")}
    details = {"method": METHOD, "dag_run": run_id, **figures}
    details |= {k: result[k] for k in ("restorable", "restorable_reasons") if k in result}
    backup_sets.set_verification(s3, chosen["bucket"], cadence, chosen["period"], status, details)
    return {
        **backup_sets.summary(manifest),
        "cadence": cadence,
        "status": status,
        "kv_keys": manifest.get("kv", {}).get("key_count"),
        **figures,
    }


def restore_drill(chosen: dict, **context) -> dict | None:
    """Read the set's objects back against its manifest (size, sha256, content counted), then
    restore it into scratch resources and compare. The result goes into the set's manifest,
    and the task fails when the set does not restore as it says."""
    if chosen["cadence"] is None:
        log.warning("no complete daily or monthly backup set in s3://%s: nothing to drill", chosen["bucket"])
        return None
    s3, cadence = connections.s3(), chosen["cadence"]
    manifest, result = check_and_restore(s3, chosen["bucket"], cadence, chosen["period"], chosen["token"])
    outcome = record_result(s3, chosen, manifest, result, context["run_id"])
    # Pushed before a failure too: the review reports what the drill found either way.
    context["ti"].xcom_push(key=RESULT_KEY, value=outcome)
    record("backup", backup_snapshot(cadence, manifest, outcome["status"], METHOD, problems=result["problems"]))
    if outcome["status"] == "failed":
        raise AirflowException(
            f"restore drill of {cadence}/{chosen['period']} FAILED (recorded in its manifest):\n  "
            + "\n  ".join(result["problems"])
        )
    return outcome


def drop_scratch(chosen: dict) -> list[str]:
    """Delete the drill's scratch database and index, whatever became of the drill."""
    return verification.cleanup(chosen["token"])
