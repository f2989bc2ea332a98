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

from airflow.sdk import CronTriggerTimetable, TaskGroup, task, task_group

from airflow_provider_cloudflare.operators.d1 import D1SqlOperator
from prism.dag_factory import prism_dag
from prism.maintenance import cleanup, indexing
from prism.settings.config import schedule
from prism.settings.pools import DELETES_POOL, HEAVY_POOL

PERIOD = cleanup.WEEK
DB = "{{ prism().cloudflare.d1_database }}"


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
        return cleanup.cutoffs(context, PERIOD)

    bounds = cutoffs()

    with TaskGroup("index_update", tooltip="Weekly: Index Updates") as index_update:

        @task
        def repos(**context) -> list[str]:
            return indexing.weekly_repos(context)

        @task_group
        def update_repo(repo: str):
            indexing.index_then_embed(repo)

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
            return indexing.weekly_report(new_docs, bounds, context, PERIOD)

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
            return cleanup.cache_changes(low_hits, expired)

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
            return cleanup.delete_orphan_vectors(deleted)

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
            return cleanup.cleanup_counts(vectors, orphan_chunks, orphan_relationships, expired_cache, usage_log)

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
            cleanup.require_live_database(context)

        analyze = D1SqlOperator(task_id="analyze", sql="optimize/analyze.sql", database=DB)
        quick_check = D1SqlOperator(task_id="quick_check", sql="optimize/quick_check.sql", database=DB)
        query_plan = D1SqlOperator(task_id="query_plan", sql="weekly/query_plan.sql", database=DB, parameters=["xxx"])

        @task
        def result(check: dict, plan: dict) -> dict:
            # VACUUM and REINDEX are reported as unsupported on D1 (cleanup.UNSUPPORTED says why), not run.
            return cleanup.optimize_result(check, plan)

        live_database() >> [analyze, quick_check, query_plan]
        analyze >> result(quick_check.output, query_plan.output)

    bounds >> index_update >> cache_cleanup >> database_cleanup >> optimize
