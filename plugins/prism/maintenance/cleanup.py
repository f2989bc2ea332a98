"""The weekly maintenance steps around the D1 statements prism_weekly runs: the cutoffs every cleanup
takes from the run's window, the vectors of deleted orphan chunks, the counts of what went, and the
optimisation's verdict (PRAGMA quick_check, the EXPLAIN QUERY PLAN check, what D1 cannot run).

Cutoffs come from the run's window, never from now(), so a backfill deletes what the week it stands
for would have deleted; a window ending in the future gets no cutoffs at all.
"""

from __future__ import annotations

from datetime import timedelta

from airflow.sdk.exceptions import AirflowException, AirflowFailException, AirflowSkipException

from airflow_provider_cloudflare.hooks.vectorize import VectorizeHook
from prism.alerts import send_alert
from prism.backups.deletion_guard import refuse_future_window
from prism.runtime import in_backfill, sql_time, window
from prism.settings.config import runtime_config

WEEK = timedelta(days=7)
# Why D1 gets no VACUUM or REINDEX (the guide's "Database Vacuum" and "Rebuild indexes if needed").
UNSUPPORTED = {
    "VACUUM": "D1 refuses it: every D1 query runs inside a transaction, where SQLite cannot VACUUM, and "
    "Cloudflare manages the storage itself. PRAGMA optimize and ANALYZE ran instead.",
    "REINDEX": "D1 does not document it as supported and keeps its indexes itself; ANALYZE (run instead) "
    "refreshes the planner's statistics, and the EXPLAIN QUERY PLAN check shows the index is used.",
}
CHUNK_INDEX = "idx_chunks_document_id"  # the index the guide's EXPLAIN QUERY PLAN check looks for


def cutoffs(context, period: timedelta = WEEK) -> dict:
    """The run's window and every cutoff derived from it and the config's retention. A window ending
    in the future is refused here, so no cleanup runs."""
    start, end = window(context, default=period)
    refuse_future_window("cache, orphaned and usage_log rows", end)
    retention = runtime_config()["retention"]
    out = {
        "start": sql_time(start),
        "end": sql_time(end),
        "period": end.strftime("%Y%m%d"),
        "cache_min_hits": retention["cache_low_hit_count"],
        "cache_created_before": sql_time(end - timedelta(days=retention["cache_low_hit_age_days"])),
        "usage_oldest_kept": (end - timedelta(days=retention["usage_log_days"])).date().isoformat(),
        "in_backfill": in_backfill(context),
    }
    print(f"window {out['start']} to {out['end']} (UTC); cutoffs {out}")
    return out


def cache_changes(low_hits: dict, expired: dict) -> dict:
    """The cache_metadata rows each cache cleanup statement deleted."""
    changes = {"low_hits": low_hits["changes"], "expired": expired["changes"]}
    print(f"cache_metadata rows deleted: {changes}")
    return changes


def delete_orphan_vectors(deleted: dict) -> int:
    """Delete the vectors of the orphaned chunks just deleted (D1SqlOperator's result with their
    vector_id rows), so search never returns a chunk that is gone; how many were deleted."""
    if "rows" not in deleted:
        raise AirflowException(f"{deleted.get('rows_omitted')} orphaned chunks' vector ids did not fit in XCom")
    ids = sorted({r["vector_id"] for r in deleted["rows"] if r.get("vector_id")})
    if not ids:
        return 0
    index = runtime_config()["cloudflare"]["vectorize_index"]
    hook = VectorizeHook()
    mutations = hook.delete_by_ids(index, ids)
    info = hook.wait_for_mutation(index, mutations[-1], timeout=600, poll_interval=0.5)
    print(f"deleted {len(ids)} vectors of orphaned chunks from {index}; {info['vectorCount']} vectors remain")
    return len(ids)


def cleanup_counts(
    vectors: int, orphan_chunks: dict, orphan_relationships: dict, expired_cache: dict, usage_log: dict
) -> dict:
    """The rows (and vectors) the database cleanup deleted, logged on one line."""
    counts = {
        "orphan_chunks": orphan_chunks["changes"],
        "orphan_vectors": vectors,
        "orphan_relationships": orphan_relationships["changes"],
        "expired_cache": expired_cache["changes"],
        "usage_log": usage_log["changes"],
    }
    print("rows deleted: " + ", ".join(f"{k} {v}" for k, v in counts.items()))
    return counts


def require_live_database(context) -> None:
    """Skip (and so skip the optimisation) inside a backfill: it describes the database as it is now."""
    if in_backfill(context):
        raise AirflowSkipException(
            "inside a backfill: optimising and checking describe the database as it is now; the scheduled run does it"
        )


def optimize_result(check: dict, plan: dict) -> dict:
    """The optimisation's verdict from PRAGMA quick_check's and EXPLAIN QUERY PLAN's results: a
    warning when chunk lookups by document do not use their index; an alert and a failure when the
    quick check finds problems."""
    verdict = [str(v) for row in check.get("rows", []) for v in row.values()]
    plan_lines = [row.get("detail", "") for row in plan.get("rows", [])]
    uses_index = any(CHUNK_INDEX in line for line in plan_lines)
    for statement, reason in UNSUPPORTED.items():
        print(f"{statement}: unsupported on D1, not run. {reason}")
    if not uses_index:
        send_alert(
            f"D1 chunk lookups by document do not use {CHUNK_INDEX}",
            "EXPLAIN QUERY PLAN: " + "; ".join(plan_lines),
            severity="warning",
        )
    if verdict != ["ok"]:
        send_alert("D1 PRAGMA quick_check found problems", "\n".join(verdict[:50]))
        raise AirflowFailException(f"PRAGMA quick_check: {verdict[:20]}")
    return {
        "analyze": "done",
        "quick_check": "ok",
        "query_plan": plan_lines,
        "uses_index": uses_index,
        "unsupported": UNSUPPORTED,
    }
