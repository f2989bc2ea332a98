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

from prism.backups.assets import EVERY_SET
from prism.backups.tasks import backup_set
from prism.dag_factory import prism_dag
from prism.param_checks import BACKUP_DATE_PATTERN, ISO_WITH_ZONE_PATTERN, confirmation_help, exact_word
from prism.recovery import validation, verification
from prism.recovery.restore import restore_target
from prism.recovery.validation import CONFIRMATION, TARGETS
from prism.settings.pools import HEAVY_POOL

DAG_ID = "prism_disaster_recovery"


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
            description=confirmation_help(
                CONFIRMATION, "The restore replaces the live data; a safety backup is taken first."
            ),
        ),
    },
) as dag:

    @task(retries=0)
    def validate(**context) -> dict:
        """Everything that can be checked before anything changes; fails with the reason."""
        return validation.validate(context["params"])

    request = validate()
    safety = backup_set(
        "safety_backup",
        "safety",
        verify_restore=False,
        missing_ok=True,
        tooltip="the current state, so the restore can be undone",
    )
    request >> safety

    # One task a target, each skipped when the request does not name it; all read a backup set.
    with TaskGroup("restore", tooltip="D1, Vectorize, KV in place") as restore:
        for target in TARGETS:
            task(restore_target, task_id=target, pool=HEAVY_POOL, inlets=EVERY_SET)(request, target)

    safety >> restore

    @task(trigger_rule=TriggerRule.NONE_FAILED, retries=0)
    def verify(request: dict, **context) -> dict:
        """Counts against the manifest, the Worker's health, sampled vectors querying back to themselves."""
        return verification.verify(request, context["ti"], context["run_id"])

    restore >> verify(request)
