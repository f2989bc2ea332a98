"""
### PRISM weekly maintenance (Sunday 02:00 UTC)

The guide's **Weekly Maintenance** and **Database Cleanup** procedures, one TaskGroup each, for the
week the run covers (its data interval: the 7 days before the run's Sunday 02:00).

| group | guide procedure | what it does |
|---|---|---|
| `index_update` | Weekly: 1. Index Updates | for each repo in `indexing.repos` (mapped): PRISM's indexer, then its embedder (`indexing.indexer_command` / `embedder_command`, run in `indexing.working_dir`; the shipped config names none, so the updates skip, naming the keys to set); then the new-documents count for the window, published to `reports/prism_weekly/<YYYYMMDD>/index_update.md` |
| `cache_cleanup` | Weekly: 2. Cache Cleanup | deletes `cache_metadata` rows with `hit_count < retention.cache_low_hit_count` created before window end − `cache_low_hit_age_days`, and rows that expired before the window end |
| `database_cleanup` | Database Cleanup: Cleanup Orphaned Data | orphaned chunks (and their vectors in Vectorize), orphaned relationships, expired cache, `usage_log` older than `retention.usage_log_days` before the window end; logs and returns the rows deleted |
| `optimize` | Weekly: 3. Database Vacuum; Database Cleanup: Optimize Database | `PRAGMA optimize` + `ANALYZE`, `PRAGMA quick_check` (alert and fail when not `ok`), the guide's `EXPLAIN QUERY PLAN` check; `VACUUM` and `REINDEX` are reported as unsupported on D1, not run |

Cutoffs come from the run's window, never from now(), so a backfill deletes what the week it stands
for would have deleted. The index update and the optimisation describe the present (the repos as
they are now, the database as it is now): inside a backfill they skip, with that reason, and the
report still counts the window's documents. The cleanups wait for the index update, so they never
delete chunks an indexer is still writing. Embedders run one at a time: Vectorize mutation ids are
not ordered, so two concurrent writers could each wait for the other's mutation.
"""

from datetime import timedelta

from airflow.sdk import CronTriggerTimetable, TaskGroup, task, task_group

from airflow_provider_cloudflare.operators.d1 import D1SqlOperator
from prism.dag_factory import prism_dag
from prism.maintenance.indexing import index_then_embed
from prism.settings.config import schedule
from prism.settings.pools import DELETES_POOL, HEAVY_POOL

PERIOD = timedelta(days=7)
DB = "{{ prism().cloudflare.d1_database }}"
# Why D1 gets no VACUUM or REINDEX (the guide's "Database Vacuum" and "Rebuild indexes if needed").
UNSUPPORTED = {
    "VACUUM": "D1 refuses it: every D1 query runs inside a transaction, where SQLite cannot VACUUM, and "
    "Cloudflare manages the storage itself. PRAGMA optimize and ANALYZE ran instead.",
    "REINDEX": "D1 does not document it as supported and keeps its indexes itself; ANALYZE (run instead) "
    "refreshes the planner's statistics, and the EXPLAIN QUERY PLAN check shows the index is used.",
}


with prism_dag(
    "prism_weekly",
    schedule=CronTriggerTimetable(schedule("prism_weekly", "0 2 * * 0"), timezone="UTC", interval=PERIOD),
    doc_md=__doc__,
    tags=["maintenance", "weekly"],
) as dag:

    @task(multiple_outputs=True)
    def cutoffs(**context) -> dict:
        """The run's window and every cutoff derived from it and the config's retention. Every
        cleanup's cutoff comes from here: a window ending in the future is refused, so none runs."""
        from prism.backups.deletion_guard import refuse_future_window
        from prism.runtime import in_backfill, sql_time, window
        from prism.settings.config import runtime_config

        start, end = window(context, default=PERIOD)
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

    bounds = cutoffs()

    with TaskGroup("index_update", tooltip="Weekly: Index Updates") as index_update:

        @task
        def repos(**context) -> list[str]:
            from airflow.sdk.exceptions import AirflowSkipException

            from prism.maintenance.indexing import skip_without_indexer
            from prism.runtime import in_backfill
            from prism.settings.config import runtime_config

            if in_backfill(context):
                raise AirflowSkipException(
                    "inside a backfill: the indexer reads the repositories as they are now, "
                    "not as they were in the window; the report still counts the window"
                )
            config = runtime_config()
            skip_without_indexer(config)  # the shipped config names none: the report still counts the window
            return config["indexing"]["repos"]

        @task_group
        def update_repo(repo: str):
            index_then_embed(repo)

        updated = update_repo.expand(repo=repos())

        new_documents = D1SqlOperator(
            task_id="new_documents",
            sql="reports/new_documents.sql",
            database=DB,
            parameters=[bounds["start"], bounds["end"]],
            trigger_rule="none_failed",
        )
        updated >> new_documents

        @task(trigger_rule="none_failed")
        def report(new_docs: dict, bounds: dict, **context) -> dict:
            from prism.reports.markdown import markdown, publish_report, report_key
            from prism.runtime import window
            from prism.settings.config import runtime_config

            count = new_docs["rows"][0]["new_documents"]
            # A list of task ids: every map index's value, as a list even when there is one repo.
            runs = [r for r in context["ti"].xcom_pull(task_ids=["index_update.update_repo.embed"]) if r]
            lines = [
                f"- {r['index']['repo']}: {r['index'].get('documents_written', 0)} documents and "
                f"{r['index'].get('chunks_written', 0)} chunks written, {r['embed'].get('chunks_embedded', 0)} "
                f"chunks embedded"
                for r in runs
            ]
            text = markdown(
                "PRISM weekly index update",
                window(context, default=PERIOD),
                {
                    "New documents in the window": f"{count} documents were created in the window.",
                    "Indexer and embedder": lines or ["Not run in this run (see the index_update.repos task)."],
                },
            )
            print(text)
            key = report_key("prism_weekly", "index_update", bounds["period"])
            uri = publish_report(runtime_config()["backups"]["bucket"], key, text)
            return {"new_documents": count, "repos": runs, "report": uri}

        report(new_documents.output, bounds)

    with TaskGroup("cache_cleanup", tooltip="Weekly: Cache Cleanup") as cache_cleanup:
        low_hits = D1SqlOperator(
            task_id="low_hits",
            pool=DELETES_POOL,
            sql="cleanup/cache_low_hits.sql",
            database=DB,
            parameters=[bounds["cache_min_hits"], bounds["cache_created_before"]],
        )
        expired = D1SqlOperator(
            task_id="expired",
            pool=DELETES_POOL,
            sql="cleanup/cache_expired.sql",
            database=DB,
            parameters=[bounds["end"]],
        )

        @task
        def summary(low_hits: dict, expired: dict) -> dict:
            changes = {"low_hits": low_hits["changes"], "expired": expired["changes"]}
            print(f"cache_metadata rows deleted: {changes}")
            return changes

        low_hits >> expired
        summary(low_hits=low_hits.output, expired=expired.output)

    with TaskGroup("database_cleanup", tooltip="Database Cleanup: Cleanup Orphaned Data") as database_cleanup:
        orphan_chunks = D1SqlOperator(
            task_id="orphan_chunks",
            pool=DELETES_POOL,
            sql="weekly/orphan_chunks.sql",
            database=DB,
            max_xcom_rows=100_000,
            max_xcom_bytes=8 << 20,
        )

        @task(pool=HEAVY_POOL)
        def orphan_vectors(deleted: dict) -> int:
            """The deleted chunks' vectors, so search never returns a chunk that is gone."""
            from airflow.sdk.exceptions import AirflowException

            from airflow_provider_cloudflare.hooks.vectorize import VectorizeHook
            from prism.settings.config import runtime_config

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

        relationships = D1SqlOperator(
            task_id="orphan_relationships", pool=DELETES_POOL, sql="cleanup/orphan_relationships.sql", database=DB
        )
        expired_cache = D1SqlOperator(
            task_id="expired_cache",
            pool=DELETES_POOL,
            sql="cleanup/cache_expired.sql",
            database=DB,
            parameters=[bounds["end"]],
        )
        usage_log = D1SqlOperator(
            task_id="usage_log",
            pool=DELETES_POOL,
            sql="cleanup/usage_log.sql",
            database=DB,
            parameters=[bounds["usage_oldest_kept"]],
        )

        @task
        def changes(
            vectors: int, orphan_chunks: dict, orphan_relationships: dict, expired_cache: dict, usage_log: dict
        ) -> dict:
            counts = {
                "orphan_chunks": orphan_chunks["changes"],
                "orphan_vectors": vectors,
                "orphan_relationships": orphan_relationships["changes"],
                "expired_cache": expired_cache["changes"],
                "usage_log": usage_log["changes"],
            }
            print("rows deleted: " + ", ".join(f"{k} {v}" for k, v in counts.items()))
            return counts

        vectors = orphan_vectors(orphan_chunks.output)
        orphan_chunks >> relationships >> expired_cache >> usage_log
        changes(
            vectors,
            orphan_chunks=orphan_chunks.output,
            orphan_relationships=relationships.output,
            expired_cache=expired_cache.output,
            usage_log=usage_log.output,
        )

    with TaskGroup("optimize", tooltip="Weekly: Database Vacuum; Database Cleanup: Optimize Database") as optimize:

        @task
        def live_database(**context) -> None:
            from airflow.sdk.exceptions import AirflowSkipException

            from prism.runtime import in_backfill

            if in_backfill(context):
                raise AirflowSkipException(
                    "inside a backfill: optimising and checking describe the database as it "
                    "is now; the scheduled run does it"
                )

        analyze = D1SqlOperator(task_id="analyze", sql="optimize/analyze.sql", database=DB)
        quick_check = D1SqlOperator(task_id="quick_check", sql="optimize/quick_check.sql", database=DB)
        query_plan = D1SqlOperator(task_id="query_plan", sql="weekly/query_plan.sql", database=DB, parameters=["xxx"])

        @task
        def result(check: dict, plan: dict) -> dict:
            from airflow.sdk.exceptions import AirflowFailException

            from prism.alerts import send_alert

            verdict = [str(v) for row in check.get("rows", []) for v in row.values()]
            plan_lines = [row.get("detail", "") for row in plan.get("rows", [])]
            uses_index = any("idx_chunks_document_id" in line for line in plan_lines)
            for statement, reason in UNSUPPORTED.items():
                print(f"{statement}: unsupported on D1, not run. {reason}")
            if not uses_index:
                send_alert(
                    "D1 chunk lookups by document do not use idx_chunks_document_id",
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

        live_database() >> [analyze, quick_check, query_plan]
        analyze >> result(quick_check.output, query_plan.output)

    bounds >> index_update >> cache_cleanup >> database_cleanup >> optimize
