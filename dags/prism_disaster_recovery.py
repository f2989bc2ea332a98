"""
### PRISM disaster recovery (manual)

The guide's *Disaster Recovery*, made safe to press: it restores D1, Vectorize and KV **in place**
from a verified backup set in the bucket, or D1 from Cloudflare's Time Travel, and proves the result.

| step | task | what it does |
|---|---|---|
| 0 | `validate` | checks every input before anything changes: the backup exists, is verified, and every object still matches its manifest (re-read and hashed); the Time Travel timestamp is inside the window; the typed confirmation; the D1 database and KV namespace exist |
| 1 | `safety_backup.*` | a backup set of the current state, `safety/YYYYMMDDTHHMMSSZ/`, read back and hashed: **the undo** (trigger this DAG again with `backup_date` = `safety-YYYYMMDDTHHMMSSZ`) |
| 2 | `restore.d1` | S3: every table dropped (children first, foreign keys deferred), then the dump through D1's import flow (statements over 100 KB split, BLOBs and FTS5 tables as dumped). Time Travel: `time_travel/restore` at the timestamp; the report keeps the previous bookmark |
| 3 | `restore.vectorize` | the index deleted and recreated with the manifest's dimensions and metric; every vector upserted, 5,000 a request; waits until Vectorize has applied them all |
| 4 | `restore.kv` | every key written back (values, metadata, expiration); keys the snapshot does not have are deleted |
| 5 | `verify` | row counts per table, the vector count and the KV key count equal the manifest; the Worker's `/health` is healthy; sampled vectors query back to themselves. Report: `reports/prism_disaster_recovery/<run>/report.md` |

Trigger it from the UI with the Param form (or `airflow dags trigger prism_disaster_recovery --conf
'{"backup_date": "20261128", "confirm": "RESTORE"}'`). The guide's optional "stop traffic" step is
left to the operator: deploy the maintenance Worker first if users must not see the restore.
"""

from __future__ import annotations

from datetime import timedelta

from airflow.sdk import Param, TaskGroup, TriggerRule, task
from airflow.sdk.exceptions import AirflowSkipException

from prism.backups.tasks import backup_set
from prism.dag_factory import prism_dag
from prism.param_checks import BACKUP_DATE_PATTERN, ISO_WITH_ZONE_PATTERN, exact_word
from prism.recovery.restore import CONFIRMATION, TARGETS
from prism.settings.pools import HEAVY_POOL

DAG_ID = "prism_disaster_recovery"


def _s3():
    from airflow.providers.amazon.aws.hooks.s3 import S3Hook

    return S3Hook(aws_conn_id="aws_default")


def _download(request: dict, kind: str, workdir: str):
    """The backup's object for `kind`, streamed to a local file."""
    from pathlib import Path

    from prism.backups.sets import OBJECTS, download_object

    path = Path(workdir) / OBJECTS[kind]
    download_object(_s3(), request["bucket"], request["prefix"] + OBJECTS[kind], path)
    return path


with prism_dag(
    DAG_ID,
    doc_md=__doc__,
    tags=["backup", "recovery", "manual"],
    dagrun_timeout=timedelta(hours=8),
    task_defaults={"execution_timeout": timedelta(hours=3)},
    params={
        "source": Param(
            "s3",
            type="string",
            enum=["s3", "time_travel"],
            title="Restore from",
            description="s3: a verified backup set in the bucket (D1, Vectorize, KV). "
            "time_travel: D1's own point-in-time restore (D1 only).",
        ),
        "backup_date": Param(
            None,
            type=["null", "string"],
            pattern=BACKUP_DATE_PATTERN,
            maxLength=32,
            title="Backup",
            description="For source s3: YYYYMMDD (a daily backup), YYYYMM (a monthly "
            "one) or safety-YYYYMMDDTHHMMSSZ (the safety backup an earlier "
            "recovery took: its undo), a real date, not in the future. "
            "It must exist and be verified.",
        ),
        "timestamp": Param(
            None,
            type=["null", "string"],
            pattern=ISO_WITH_ZONE_PATTERN,
            maxLength=40,
            title="Time Travel timestamp",
            description="For source time_travel: ISO 8601 with a zone "
            "(2026-11-28T09:00:00Z), inside the Time Travel window.",
        ),
        "targets": Param(
            list(TARGETS),
            type="array",
            minItems=1,
            uniqueItems=True,
            items={"type": "string", "enum": list(TARGETS)},
            title="Targets",
            description="What to restore. Time Travel restores d1 only.",
        ),
        "confirm": Param(
            "",
            type="string",
            maxLength=32,
            pattern=exact_word(CONFIRMATION),
            title="Confirmation",
            description=f'Type {CONFIRMATION} (exactly that word, in capital letters; "restore" is '
            "refused): the restore replaces the live data. A safety backup is taken first.",
        ),
    },
) as dag:

    @task(retries=0)
    def validate(**context) -> dict:
        """Everything that can be checked before anything changes; fails with the reason."""
        from datetime import datetime, timezone

        from airflow_provider_cloudflare.errors import CloudflareError
        from airflow_provider_cloudflare.hooks.d1 import D1Hook
        from airflow_provider_cloudflare.hooks.kv import KVHook
        from prism.backups.sets import BackupSetError, prefix, require_restorable
        from prism.recovery.restore import RecoveryInputError, check_params, check_restorable
        from prism.refusals import refuse
        from prism.settings.config import runtime_config

        config = runtime_config()
        cf, bucket = config["cloudflare"], config["backups"]["bucket"]
        try:
            request = check_params(context["params"], datetime.now(timezone.utc), config["backups"]["time_travel_days"])
            request["bucket"] = bucket
            request["database_id"] = D1Hook().find_database(cf["d1_database"])
            request["namespace_id"] = KVHook().find_namespace(cf["kv_namespace"])
            if request["source"] == "s3":
                cadence, period, manifest = require_restorable(_s3(), bucket, request["backup_id"])
                # Every target proven restorable first: the restores run in parallel and replace live data.
                check_restorable(cadence, period, manifest, request["targets"])
                request.update(prefix=prefix(cadence, period), manifest=manifest)
            else:
                request["bookmark"] = D1Hook().get_bookmark(request["database_id"], request["timestamp"])
        except (RecoveryInputError, BackupSetError, CloudflareError, LookupError) as exc:
            raise refuse("to restore", str(exc)) from None
        print(f"restoring {request['targets']} from {request.get('backup_id') or request.get('timestamp')}")
        return request

    request = validate()
    safety = backup_set(
        "safety_backup",
        "safety",
        verify_restore=False,
        missing_ok=True,
        tooltip="the current state, so the restore can be undone",
    )
    request >> safety

    def _wanted(request: dict, kind: str) -> None:
        if kind not in request["targets"]:
            raise AirflowSkipException(f"{kind} is not in the targets {request['targets']}")

    with TaskGroup("restore", tooltip="D1, Vectorize, KV in place") as restore:

        @task(pool=HEAVY_POOL)
        def d1(request: dict) -> dict:
            import tempfile
            from pathlib import Path

            from airflow_provider_cloudflare.hooks.d1 import D1Hook
            from prism.recovery.restore import restore_d1_from_dump, restore_d1_time_travel

            _wanted(request, "d1")
            hook = D1Hook()
            if request["source"] == "time_travel":
                return restore_d1_time_travel(hook, request["database_id"], request["timestamp"])
            with tempfile.TemporaryDirectory(prefix="dr-d1-") as tmp:
                return restore_d1_from_dump(hook, request["database_id"], _download(request, "d1", tmp), Path(tmp))

        @task(pool=HEAVY_POOL)
        def vectorize(request: dict) -> dict:
            import tempfile

            from airflow_provider_cloudflare.hooks.vectorize import VectorizeHook
            from prism.recovery.restore import restore_vectorize
            from prism.settings.config import runtime_config

            _wanted(request, "vectorize")
            with tempfile.TemporaryDirectory(prefix="dr-vectors-") as tmp:
                return restore_vectorize(
                    VectorizeHook(),
                    runtime_config()["cloudflare"]["vectorize_index"],
                    _download(request, "vectorize", tmp),
                    request["manifest"]["vectorize"],
                )

        @task(pool=HEAVY_POOL)
        def kv(request: dict) -> dict:
            import tempfile

            from airflow_provider_cloudflare.hooks.kv import KVHook
            from prism.recovery.restore import restore_kv

            _wanted(request, "kv")
            with tempfile.TemporaryDirectory(prefix="dr-kv-") as tmp:
                return restore_kv(KVHook(), request["namespace_id"], _download(request, "kv", tmp))

        restored = [d1(request), vectorize(request), kv(request)]

    safety >> restore

    @task(trigger_rule=TriggerRule.NONE_FAILED, retries=0)
    def verify(request: dict, **context) -> dict:
        """Counts against the manifest, the Worker's health, sampled vectors querying back to themselves."""
        import tempfile

        from airflow.sdk.exceptions import AirflowException

        from airflow_provider_cloudflare.hooks.d1 import D1Hook
        from airflow_provider_cloudflare.hooks.kv import KVHook
        from airflow_provider_cloudflare.hooks.vectorize import VectorizeHook
        from prism.monitoring.worker import PrismWorkerHook
        from prism.recovery.restore import query_back, quick_check, report, sample_vectors, table_counts
        from prism.reports.markdown import publish_report
        from prism.settings.config import runtime_config

        cf = runtime_config()["cloudflare"]
        manifest = request.get("manifest") or {}
        problems, figures = [], {}
        if "d1" in request["targets"]:
            counts = table_counts(D1Hook(), request["database_id"])
            figures["d1_tables"] = counts
            check = quick_check(D1Hook(), request["database_id"])
            figures["d1_quick_check"] = check
            if check != ["ok"]:
                problems.append(f"d1: quick_check says {check}")
            for table, rows in (manifest.get("d1", {}).get("tables") or {}).items():
                if counts.get(table) != rows:
                    problems.append(f"d1: {table} has {counts.get(table)} rows, the backup {rows}")
        if "vectorize" in request["targets"]:
            hook = VectorizeHook()
            figures["vectors"] = hook.info(cf["vectorize_index"])["vectorCount"]
            if figures["vectors"] != manifest["vectorize"]["vector_count"]:
                problems.append(
                    f"vectorize: {figures['vectors']} vectors, the backup {manifest['vectorize']['vector_count']}"
                )
            with tempfile.TemporaryDirectory(prefix="dr-verify-") as tmp:
                samples = sample_vectors(_download(request, "vectorize", tmp))
            problems += query_back(hook, cf["vectorize_index"], samples)
            figures["vectors_queried_back"] = len(samples)
        if "kv" in request["targets"]:
            figures["kv_keys"] = sum(1 for _ in KVHook().list_keys(request["namespace_id"]))
            restored = context["ti"].xcom_pull(task_ids="restore.kv") or {}
            expected = manifest["kv"]["key_count"] - restored.get("skipped_expired", 0)
            if figures["kv_keys"] != expected:
                problems.append(f"kv: {figures['kv_keys']} keys, the backup {expected} (after expired keys)")
        health = PrismWorkerHook().health()
        figures["worker_health"] = health
        if health.get("status") != "healthy":
            problems.append(f"worker: /health says {health}")
        ti = context["ti"]
        safety = ti.xcom_pull(task_ids="safety_backup.finalize") or {}
        results = {k: ti.xcom_pull(task_ids=f"restore.{k}") for k in request["targets"]}
        text = report(request, safety, results, figures, problems, context["run_id"])
        period = (safety.get("period") or context["run_id"]).replace(":", "")
        url = publish_report(request["bucket"], f"reports/{DAG_ID}/{period}/report.md", text)
        if problems:
            raise AirflowException("the restore did not verify:\n  " + "\n  ".join(problems) + f"\nreport: {url}")
        return {"report": url, "undo": f"safety-{safety.get('period')}", **figures}

    restore >> verify(request)
