"""Prove a disaster recovery: the restored counts against the set's manifest, D1's quick_check, the
Worker's /health, sampled vectors querying back to themselves; and the recovery's Markdown report
with its undo.

`verify` is the `verify` task: it publishes the report and fails, naming every problem, when the
restore does not verify.
"""

from __future__ import annotations

import json
import tempfile
from pathlib import Path

from airflow.sdk.exceptions import AirflowException

from airflow_provider_cloudflare.hooks.d1 import D1Hook
from airflow_provider_cloudflare.hooks.kv import KVHook
from airflow_provider_cloudflare.hooks.vectorize import VectorizeHook
from airflow_provider_cloudflare.sqldump import quote_ident
from prism.backups.sets import read_vectors
from prism.monitoring.worker import PrismWorkerHook
from prism.recovery.restore import download
from prism.reports.markdown import publish_report
from prism.settings.config import runtime_config

SAMPLE_QUERIES = 5


def table_counts(hook: D1Hook, db: str) -> dict[str, int]:
    return {
        name: hook.rows(db, f"SELECT COUNT(*) AS n FROM {quote_ident(name)}")[0]["n"]
        for name, _ in hook.user_tables(db)
    }


def quick_check(hook: D1Hook, db: str) -> list[str]:
    """`PRAGMA quick_check`'s verdict: ["ok"] when the database is sound."""
    return [next(iter(r.values())) for r in hook.rows(db, "PRAGMA quick_check")]


def sample_vectors(vectors_gz: Path, n: int = SAMPLE_QUERIES) -> list[dict]:
    """The first n vectors of a backup (enough to prove queries find them)."""
    out = []
    for vec in read_vectors(vectors_gz):
        out.append(vec)
        if len(out) == n:
            break
    return out


def query_back(hook: VectorizeHook, index: str, samples: list[dict]) -> list[str]:
    """Problems: a sampled vector that does not come back as its own best match."""
    problems = []
    for vec in samples:
        kwargs = {"namespace": vec["namespace"]} if vec.get("namespace") else {}
        matches = hook.query(index, vec["values"], top_k=1, **kwargs).get("matches", [])
        if not matches or (matches[0]["id"] != vec["id"] and matches[0].get("score", 0) < 0.9999):
            problems.append(f"vectorize: querying with vector {vec['id']} found {matches[:1]}, not itself")
    return problems


def check_targets(request: dict, restored_kv: dict) -> tuple[list[str], dict]:
    """(problems, figures) of the restored targets and the Worker's health. `restored_kv` is the
    restore.kv task's result: keys it skipped as expiring are not expected back."""
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
            samples = sample_vectors(download(request, "vectorize", tmp))
        problems += query_back(hook, cf["vectorize_index"], samples)
        figures["vectors_queried_back"] = len(samples)
    if "kv" in request["targets"]:
        figures["kv_keys"] = sum(1 for _ in KVHook().list_keys(request["namespace_id"]))
        expected = manifest["kv"]["key_count"] - restored_kv.get("skipped_expired", 0)
        if figures["kv_keys"] != expected:
            problems.append(f"kv: {figures['kv_keys']} keys, the backup {expected} (after expired keys)")
    health = PrismWorkerHook().health()
    figures["worker_health"] = health
    if health.get("status") != "healthy":
        problems.append(f"worker: /health says {health}")
    return problems, figures


def verify(request: dict, ti, run_id: str) -> dict:
    """Check the restored targets, publish the report under reports/<dag>/<safety period>/, and fail
    naming every problem. Returns the report's URL, the undo (the safety set's backup_date) and the figures."""
    problems, figures = check_targets(request, ti.xcom_pull(task_ids="restore.kv") or {})
    safety = ti.xcom_pull(task_ids="safety_backup.finalize") or {}
    results = {k: ti.xcom_pull(task_ids=f"restore.{k}") for k in request["targets"]}
    text = report(request, safety, results, figures, problems, run_id)
    period = (safety.get("period") or run_id).replace(":", "")
    url = publish_report(request["bucket"], f"reports/{ti.dag_id}/{period}/report.md", text)
    if problems:
        raise AirflowException("the restore did not verify:\n  " + "\n  ".join(problems) + f"\nreport: {url}")
    return {"report": url, "undo": f"safety-{safety.get('period')}", **figures}


def report(request: dict, safety: dict, results: dict, figures: dict, problems: list[str], run_id: str) -> str:
    """The recovery's Markdown report: what was restored from where, the proof, and the undo."""
    source = (
        f"backup set s3://{request['bucket']}/{request['prefix']} (logical date "
        f"{request['manifest']['logical_date']}, captured {request['manifest']['captured_at']})"
        if request["source"] == "s3"
        else f"D1 Time Travel at {request['timestamp']} (bookmark {request.get('bookmark')})"
    )
    lines = [
        f"# PRISM disaster recovery: {run_id}",
        "",
        f"Status: **{'FAILED' if problems else 'restored and verified'}**",
        f"Source: {source}",
        f"Targets: {', '.join(request['targets'])}",
        "",
        "## Undo",
        "",
    ]
    if safety.get("period"):
        lines.append(
            f"- The state before this restore is the safety backup `safety-{safety['period']}` "
            f"({safety.get('manifest')}): trigger `prism_disaster_recovery` with that as `backup_date`."
        )
    tt = (results.get("d1") or {}).get("previous_bookmark")
    if tt:
        lines.append(f"- D1 alone can also go back with Time Travel to bookmark `{tt}` (before this restore).")
    lines += ["", "## Restored", ""] + [
        f"- {kind}: {json.dumps(result, default=str)}" for kind, result in results.items()
    ]
    lines += ["", "## Verification", ""]
    for table, rows in sorted((figures.get("d1_tables") or {}).items()):
        lines.append(f"- D1 {table}: {rows:,} rows")
    for key in ("d1_quick_check", "vectors", "vectors_queried_back", "kv_keys"):
        if key in figures:
            lines.append(f"- {key}: {figures[key]}")
    lines.append(f"- Worker /health: {figures.get('worker_health', {}).get('status')}")
    lines += ["", "## Problems", ""] + ([f"- {p}" for p in problems] or ["- none"])
    return "\n".join(lines) + "\n"
