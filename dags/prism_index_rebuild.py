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
from prism.maintenance import rebuild
from prism.maintenance.indexing import index_then_embed
from prism.param_checks import ONE_LINE_PATTERN, confirmation_help, exact_word
from prism.settings.pools import HEAVY_POOL

DB = "{{ prism().cloudflare.d1_database }}"
INDEX = "{{ prism().cloudflare.vectorize_index }}"
BUCKET = "{{ prism().backups.bucket }}"
PREFIX = "prebuild/{{ run_id }}"
CONFIRMATION = rebuild.CONFIRMATION


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
            description=confirmation_help(
                CONFIRMATION,
                "The run clears every document, chunk and vector and rebuilds them; anything else stops it "
                "before anything changes.",
            ),
        ),
        "reason": Param(
            "",
            type="string",
            maxLength=rebuild.REASON_MAX,
            pattern=ONE_LINE_PATTERN,
            title="Reason",
            description="Required by this form (Trigger stays disabled until it is filled): why the index is "
            "rebuilt, on one line (logged with the run, for the maintenance record).",
        ),
    },
) as dag:

    @task(retries=0)
    def validate_params(**context) -> list[str]:
        """The typed confirmation, and the config; returns the repos to reindex."""
        return rebuild.validate(context["params"])

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
            return rebuild.record_index()

        @task
        def verify(d1: dict, vectors: dict) -> dict:
            """Read each object back from S3: its sha256 and size must be what the backup wrote."""
            return rebuild.verify_backup({"d1": d1, "vectorize": vectors})

        recorded = index_config()
        verified = verify(d1_backup.output, vectors_backup.output)

    repos >> backup

    with TaskGroup("clear_index", tooltip="Manual Index Rebuild: steps 1-3") as clear:
        clear_documents = D1SqlOperator(task_id="clear_documents", sql="index/clear_documents.sql", database=DB)

        @task(pool=HEAVY_POOL)
        def recreate_vectorize(recorded: dict) -> dict:
            """Delete the index and create it again with the config's dimensions and metric."""
            return rebuild.recreate_index(recorded)

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
        return rebuild.verify_counts(counts)

    verify_counts(counts.output)
