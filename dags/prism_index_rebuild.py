"""
### PRISM full index rebuild (manual)

The guide's **Index Updates: Manual Index Rebuild**, made safe to run: nothing is cleared before a
verified backup of what is about to go.

1. `validate_params`: the run conf must say `confirm: REBUILD`; anything else fails here, before
   anything changes.
2. `pre_rebuild_backup`: D1 (a logical dump when D1's export refuses the FTS5 table) and every
   vector to `s3://<backups.bucket>/prebuild/<run_id>/`, each object read back from S3 and its
   sha256 and size checked against what the backup wrote; the index's configuration and metadata
   indexes are recorded.
3. `clear_index`: `include/sql/index/clear_documents.sql` (chunks, their FTS rows, documents), then
   the Vectorize index is deleted and recreated with `cloudflare.vectorize_dimensions` and
   `vectorize_metric` (the guide's 384/cosine) and its metadata indexes.
4. `reindex`: for each repo in `indexing.repos` (mapped), PRISM's indexer then its embedder, both
   with `--rebuild`. With no indexer in the config (`indexing.indexer_command` / `embedder_command`,
   none in the shipped config), `validate_params` refuses: a rebuild that cannot reindex never clears.
5. `verify_counts`: chunks in D1 == the index's `vectorCount`, and no chunk without a vector.

Restore from the pre-rebuild backup with `prism_disaster_recovery` if the rebuild goes wrong.
Embedders run one at a time (Vectorize mutation ids are not ordered, so concurrent writers could
each wait for the other's mutation).
"""

from datetime import timedelta

from airflow.sdk import Param, TaskGroup, task, task_group

from airflow_provider_cloudflare.operators.d1 import D1SqlOperator
from airflow_provider_cloudflare.transfers.cloudflare_to_s3 import D1BackupOperator, VectorizeBackupOperator
from prism.dag_factory import prism_dag
from prism.maintenance.indexing import index_then_embed
from prism.param_checks import ONE_LINE_PATTERN, exact_word
from prism.settings.pools import HEAVY_POOL

DB = "{{ prism().cloudflare.d1_database }}"
INDEX = "{{ prism().cloudflare.vectorize_index }}"
BUCKET = "{{ prism().backups.bucket }}"
PREFIX = "prebuild/{{ run_id }}"
CONFIRMATION = "REBUILD"


with prism_dag(
    "prism_index_rebuild",
    doc_md=__doc__,
    tags=["index", "manual", "destructive"],
    dagrun_timeout=timedelta(hours=12),
    task_defaults={"execution_timeout": timedelta(hours=3)},
    params={
        "confirm": Param(
            "",
            type="string",
            maxLength=32,
            pattern=exact_word(CONFIRMATION),
            title="Confirmation",
            description=f'Type {CONFIRMATION} (exactly that word, in capital letters; "rebuild" is '
            "refused) to clear every document, chunk and vector and rebuild them. Anything "
            "else stops the run before anything changes.",
        ),
        "reason": Param(
            "",
            type="string",
            maxLength=500,
            pattern=ONE_LINE_PATTERN,
            title="Reason",
            description="Why the index is rebuilt, on one line (logged with the run, for the maintenance record).",
        ),
    },
) as dag:

    @task(retries=0)
    def validate_params(**context) -> list[str]:
        """The typed confirmation, and the config; returns the repos to reindex."""
        import re

        from prism.maintenance.indexing import missing_indexer
        from prism.param_checks import shown
        from prism.refusals import refuse
        from prism.settings.config import runtime_config

        params = context["params"]
        if params.get("confirm") != CONFIRMATION:
            raise refuse(
                "to rebuild",
                f"type {CONFIRMATION} in `confirm` (capital letters, nothing else) to clear "
                f"and rebuild the index; got {shown(params.get('confirm'))}",
            )
        reason = params.get("reason")
        if reason is not None and not (
            isinstance(reason, str) and len(reason) <= 500 and re.search(ONE_LINE_PATTERN, reason)
        ):
            raise refuse("to rebuild", f"reason must be one line of text, at most 500 characters; got {shown(reason)}")
        config = runtime_config()  # a bad config fails here too, before anything changes
        missing = missing_indexer(config)  # a rebuild that cannot reindex must not clear
        if missing:
            raise refuse("to rebuild", missing)
        cf = config["cloudflare"]
        print(
            f"rebuilding {cf['d1_database']} documents and Vectorize {cf['vectorize_index']} "
            f"({cf['vectorize_dimensions']} dims, {cf['vectorize_metric']}) for {config['indexing']['repos']}; "
            f"reason: {shown(reason) if reason else '(none given)'}"
        )
        return config["indexing"]["repos"]

    repos = validate_params()

    with TaskGroup("pre_rebuild_backup", tooltip="A verified backup of what the rebuild clears") as backup:
        d1_backup = D1BackupOperator(
            task_id="d1", database=DB, bucket=BUCKET, key=f"{PREFIX}/d1.sql.gz", pool=HEAVY_POOL
        )
        vectors_backup = VectorizeBackupOperator(
            task_id="vectorize", index=INDEX, bucket=BUCKET, key=f"{PREFIX}/vectors.ndjson.gz", pool=HEAVY_POOL
        )

        @task
        def index_config() -> dict:
            """The index's configuration and metadata indexes, recorded before anything changes."""
            from airflow_provider_cloudflare.hooks.vectorize import VectorizeHook
            from prism.settings.config import runtime_config

            index = runtime_config()["cloudflare"]["vectorize_index"]
            hook = VectorizeHook()
            info = hook.get_index(index)
            return {
                "config": info["config"],
                "description": info.get("description") or "",
                "metadata_indexes": hook.list_metadata_indexes(index),
            }

        @task
        def verify(d1: dict, vectors: dict) -> dict:
            """Read each object back from S3: its sha256 and size must be what the backup wrote."""
            import hashlib

            from airflow.providers.amazon.aws.hooks.s3 import S3Hook
            from airflow.sdk.exceptions import AirflowException

            s3 = S3Hook(aws_conn_id="aws_default")
            checked = {}
            for name, result in (("d1", d1), ("vectorize", vectors)):
                body = s3.get_key(result["key"], result["bucket"]).get()["Body"]
                digest, size = hashlib.sha256(), 0
                for chunk in iter(lambda: body.read(1 << 20), b""):  # noqa: B023 - used within the iteration
                    digest.update(chunk)
                    size += len(chunk)
                if (digest.hexdigest(), size) != (result["sha256"], result["bytes"]):
                    raise AirflowException(
                        f"s3://{result['bucket']}/{result['key']} reads back as {size} bytes, sha256 "
                        f"{digest.hexdigest()}; the backup wrote {result['bytes']} bytes, sha256 "
                        f"{result['sha256']}. Not rebuilding without a verified backup."
                    )
                checked[name] = {
                    "uri": f"s3://{result['bucket']}/{result['key']}",
                    "bytes": size,
                    "sha256": result["sha256"],
                }
            print(f"pre-rebuild backup verified: {checked}")
            return checked

        recorded = index_config()
        verified = verify(d1_backup.output, vectors_backup.output)

    repos >> backup

    with TaskGroup("clear_index", tooltip="Manual Index Rebuild: steps 1-3") as clear:
        clear_documents = D1SqlOperator(task_id="clear_documents", sql="index/clear_documents.sql", database=DB)

        @task(pool=HEAVY_POOL)
        def recreate_vectorize(recorded: dict) -> dict:
            """Delete the index and create it again with the config's dimensions and metric."""
            from airflow_provider_cloudflare.errors import CloudflareNotFound
            from airflow_provider_cloudflare.hooks.vectorize import VectorizeHook
            from prism.settings.config import runtime_config

            cf = runtime_config()["cloudflare"]
            index, dimensions, metric = cf["vectorize_index"], cf["vectorize_dimensions"], cf["vectorize_metric"]
            hook = VectorizeHook()
            try:
                hook.delete_index(index)
            except CloudflareNotFound:  # a retry after the delete went through
                pass
            created = hook.create_index(index, dimensions, metric, recorded["description"])
            for meta in recorded["metadata_indexes"]:
                hook.create_metadata_index(index, meta["propertyName"], meta["indexType"])
            info = hook.info(index)
            print(
                f"recreated {index}: {created['config']}, metadata indexes {recorded['metadata_indexes']}, "
                f"{info['vectorCount']} vectors"
            )
            return {"config": created["config"], "vector_count": info["vectorCount"]}

        recreated = recreate_vectorize(recorded)
        clear_documents >> recreated

    verified >> clear

    @task_group
    def reindex(repo: str):
        """Manual Index Rebuild steps 4-5 for one repo: index --rebuild, then embed --rebuild."""
        index_then_embed(repo, rebuild=True)

    counts = D1SqlOperator(task_id="count_chunks", sql="index/counts.sql", database=DB)
    clear >> reindex.expand(repo=repos) >> counts  # the whole group: every repo's indexer waits for the clear

    @task
    def verify_counts(counts: dict) -> dict:
        import time

        from airflow.sdk.exceptions import AirflowException

        from airflow_provider_cloudflare.hooks.vectorize import VectorizeHook
        from prism.settings.config import runtime_config

        index = runtime_config()["cloudflare"]["vectorize_index"]
        row = counts["rows"][0]
        hook = VectorizeHook()
        deadline = time.monotonic() + 120  # the embedders waited for their writes; allow for a lagging count
        while (vectors := hook.info(index)["vectorCount"]) != row["chunks"] and time.monotonic() < deadline:
            time.sleep(2)
        result = {**row, "vectors": vectors}
        print(f"after the rebuild: {result}")
        if vectors != row["chunks"] or row["chunks_without_vector"]:
            raise AirflowException(
                f"rebuild incomplete: {row['chunks']} chunks in D1 ({row['chunks_without_vector']} "
                f"without a vector), {vectors} vectors in {index}"
            )
        return result

    verify_counts(counts.output)
