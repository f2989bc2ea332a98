"""The tasks of one verified backup set, as a TaskGroup any DAG can declare in one line.

    plan -> [d1, vectorize, kv] (to staging) -> finalize (read back, manifest, promote)
         -> verify (scratch restore and compare; the manifest records the result)
         -> drop_scratch (a teardown: the scratch resources go even when verification dies)

A backup is a live export: inside a backfill `plan` skips, and everything after it with it (a backup
cannot stand for a past date). The set's period comes from the run: the logical date for daily and
monthly sets, the time the run was made to run for safety sets. `finalize` produces the cadence's
Asset (prism.backups.assets) and `verify` reads it, so the UI shows the sets' lineage.
"""

from __future__ import annotations

import logging
from datetime import timezone

from airflow.sdk import TaskGroup, task
from airflow.sdk.exceptions import AirflowException, AirflowSkipException

from airflow_provider_cloudflare.hooks.d1 import D1Hook
from airflow_provider_cloudflare.hooks.kv import KVHook
from airflow_provider_cloudflare.transfers.cloudflare_to_s3 import (
    D1BackupOperator,
    KVBackupOperator,
    VectorizeBackupOperator,
)
from prism.alerts import send_alert
from prism.backups.assets import BY_CADENCE
from prism.backups.deletion_guard import refuse_future_window
from prism.backups.sets import (
    PERIOD_FORMATS,
    build_manifest,
    prefix,
    promote,
    run_token,
    set_verification,
    staging_prefix,
)
from prism.backups.verification import cleanup, restore_and_compare
from prism.monitoring.dashboard_records import backup_snapshot, record
from prism.reports.markdown import publish_report
from prism.runtime import capture_labels, in_backfill, window
from prism.settings import connections
from prism.settings.config import runtime_config
from prism.settings.pools import HEAVY_POOL

CF = "{{ prism().cloudflare.%s }}"
BUCKET = "{{ prism().backups.bucket }}"
log = logging.getLogger(__name__)


def set_period(cadence: str, context) -> str:
    if cadence == "safety":
        run = context["dag_run"]
        when = getattr(run, "run_after", None) or window(context)[1]
    else:
        when = window(context)[1]
    return when.astimezone(timezone.utc).strftime(PERIOD_FORMATS[cadence])


def backup_set(
    group_id: str, cadence: str, *, verify_restore: bool = True, missing_ok: bool = False, tooltip: str = ""
) -> TaskGroup:
    """Declare the group inside a DAG; returns it for wiring (`group >> next_task`)."""
    with TaskGroup(group_id, tooltip=tooltip or f"a verified {cadence} backup set") as group:

        @task
        def plan(**context) -> dict:
            if in_backfill(context) and cadence != "safety":
                raise AirflowSkipException(
                    "a backup exports the data as it is now; it cannot stand for a past "
                    "date, so it is skipped inside a backfill"
                )
            if cadence != "safety":
                # A set named after a future date would never count as the newest one, nor ever expire.
                refuse_future_window("", window(context)[1], action=f"to take a {cadence} backup set")
            period = set_period(cadence, context)
            token = run_token(f"{context['dag'].dag_id}/{context['run_id']}")
            return {
                "bucket": runtime_config()["backups"]["bucket"],
                "cadence": cadence,
                "period": period,
                "token": token,
                "staging": staging_prefix(cadence, period, token),
            }

        staged = "{{ ti.xcom_pull(task_ids='%s.plan')['staging'] }}" % group.group_id
        d1 = D1BackupOperator(
            task_id="d1",
            database=CF % "d1_database",
            mode="{{ prism().backups.d1_export_mode }}",
            bucket=BUCKET,
            key=staged + "d1.sql.gz",
            pool=HEAVY_POOL,
        )
        vectorize = VectorizeBackupOperator(
            task_id="vectorize",
            index=CF % "vectorize_index",
            bucket=BUCKET,
            key=staged + "vectors.ndjson.gz",
            missing_ok=missing_ok,
            pool=HEAVY_POOL,
        )
        # A safety set is a recovery's undo: it keeps KV's values whatever kv_include_values says.
        kv = KVBackupOperator(
            task_id="kv",
            namespace=CF % "kv_namespace",
            bucket=BUCKET,
            key=staged + "kv.ndjson.gz",
            include_values=True if cadence == "safety" else "{{ prism().backups.kv_include_values }}",
            pool=HEAVY_POOL,
        )

        @task(outlets=[BY_CADENCE[cadence]])
        def finalize(spec: dict, d1: dict, vectorize: dict, kv: dict, **context) -> dict:
            """Read every staged object back, write the manifest, promote the set."""
            cf = runtime_config()["cloudflare"]
            sources = {
                "d1_database": cf["d1_database"],
                "vectorize_index": cf["vectorize_index"],
                "kv_namespace": cf["kv_namespace"],
                "worker": cf["worker_name"],
                "dag_run": context["run_id"],
            }
            manifest = build_manifest(
                spec["cadence"],
                spec["period"],
                {"d1": d1, "vectorize": vectorize, "kv": kv},
                capture_labels(context),
                sources,
            )
            return promote(
                connections.s3(),
                spec["bucket"],
                spec["cadence"],
                spec["period"],
                spec["staging"],
                manifest,
            )

        spec = plan()
        promoted = finalize(spec, d1.output, vectorize.output, kv.output)
        spec >> [d1, vectorize, kv]

        if verify_restore:

            @task(retries=0, inlets=[BY_CADENCE[cadence]])
            def verify(spec: dict, promoted: dict) -> dict:
                """Restore into scratch resources and compare; record the result in the manifest."""
                cf = runtime_config()["cloudflare"]
                s3 = connections.s3()
                result = restore_and_compare(
                    s3,
                    spec["bucket"],
                    prefix(spec["cadence"], spec["period"]),
                    promoted,
                    spec["token"],
                    source_db=D1Hook().find_database(cf["d1_database"]),
                    source_index=cf["vectorize_index"],
                    source_namespace=KVHook().find_namespace(cf["kv_namespace"]),
                )
                status = result["status"]
                set_verification(
                    s3,
                    spec["bucket"],
                    spec["cadence"],
                    spec["period"],
                    status,
                    {
                        "method": "test restore into scratch resources",
                        "problems": result["problems"],
                        "notes": result["notes"],
                        "d1": result.get("d1"),
                        "vectorize": result.get("vectorize"),
                        "kv": result.get("kv"),
                        "restorable": result["restorable"],
                        "restorable_reasons": result["restorable_reasons"],
                    },
                )
                report = verification_report(spec, promoted, status, result)
                url = publish_report(
                    spec["bucket"], f"reports/backups/{spec['cadence']}/{spec['period']}/verification.md", report
                )
                record(
                    "backup",
                    backup_snapshot(
                        spec["cadence"],
                        promoted,
                        status,
                        "test restore into scratch resources",
                        url,
                        result["problems"],
                    ),
                )
                if status == "partial":  # a configured choice (no KV values): said every run, not failed on
                    log.warning(
                        "backup %s/%s is partial: it cannot restore %s",
                        spec["cadence"],
                        spec["period"],
                        "; ".join(f"{k} ({why})" for k, why in result["restorable_reasons"].items()),
                    )
                if status == "failed":
                    send_alert(
                        f"{spec['cadence']} backup {spec['period']} FAILED verification",
                        "\n".join(result["problems"]) + f"\nreport: {url}",
                    )
                    raise AirflowException(
                        f"backup {spec['cadence']}/{spec['period']} failed verification:\n  "
                        + "\n  ".join(result["problems"])
                    )
                return {
                    "status": status,
                    "report": url,
                    **{
                        k: result.get(k) for k in ("d1", "vectorize", "kv", "notes", "restorable", "restorable_reasons")
                    },
                }

            @task
            def drop_scratch(spec: dict) -> list[str]:
                """Delete the scratch resources again: a verification whose worker died leaves them."""
                return cleanup(spec["token"])

            # A teardown of the plan: it runs whatever became of verify (a teardown runs when its setup
            # succeeded), and does not decide the run's state.
            checked = verify(spec, promoted)
            checked >> drop_scratch(spec).as_teardown(setups=spec)
    return group


def verification_report(spec: dict, manifest: dict, status: str, result: dict) -> str:
    lines = [
        f"# Backup verification: {spec['cadence']} {spec['period']}",
        "",
        f"Status: **{status}**",
        f"Logical date: {manifest['logical_date']}; captured at {manifest['captured_at']}",
        f"Manifest: {manifest['manifest']}",
        "",
        "## Objects",
        "",
    ]
    lines += [f"- {o['key']}: {o['bytes']:,} bytes, sha256 {o['sha256']}" for o in manifest["objects"]]
    d1, vec, kv = result.get("d1") or {}, result.get("vectorize") or {}, result.get("kv") or {}
    lines += ["", "## Test restore (scratch resources, deleted after)", ""]
    if d1:
        lines += [
            f"- D1: {len(d1['tables'])} tables restored, {sum(d1['tables'].values()):,} rows; quick_check {_words(d1['quick_check'])}; "
            f"{d1['rows_sampled']} sampled rows compared with the dump"
        ]
        lines += [f"  - {t}: {n:,} rows" for t, n in sorted(d1["tables"].items())]
    if vec:
        lines.append(
            f"- Vectorize: {vec['vector_count']:,} vectors restored; {vec['vectors_sampled']} sampled vectors compared"
        )
    if kv.get("keys_restored") is not None:
        lines.append(
            f"- KV: {kv['keys_restored']:,} of {kv['keys_in_snapshot']:,} keys restored; "
            + ("every key" if kv["compared_every_key"] else f"{kv['keys_compared']} sampled keys")
            + " compared (value, metadata, expiration)"
        )
    elif kv:
        lines.append(f"- KV: {manifest.get('kv', {}).get('key_count', 0):,} keys; not test-restored")
    lines += ["", "## Restorable", ""] + [
        f"- {kind}: {'yes' if ok else 'NO: ' + result.get('restorable_reasons', {}).get(kind, '')}"
        for kind, ok in (result.get("restorable") or {}).items()
    ]
    lines += ["", "## Problems", ""] + ([f"- {p}" for p in result["problems"]] or ["- none"])
    lines += ["", "## Notes", ""] + ([f"- {n}" for n in result["notes"]] or ["- none"])
    return "\n".join(lines) + "\n"


def _words(value) -> str:
    """SQLite's quick_check answer (a list of lines) as text, never a Python repr."""
    return "; ".join(str(v) for v in value) if isinstance(value, (list, tuple)) else str(value)
