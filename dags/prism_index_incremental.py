"""
### PRISM incremental index update (manual)

The guide's **Index Updates: Incremental Index Update**.

1. `validate_params`: the repos asked for must be in `indexing.repos`; fails before anything changes.
2. `last_update`: `MAX(created_at)` over documents (`include/sql/index/last_update.sql`); the `since`
   param overrides it. With no documents at all, everything is indexed.
3. `update_repo` (mapped over the repos): PRISM's indexer `--since <last update>`, then its embedder
   `--since <last update>`. With no indexer in the config (none in the shipped config), the run skips
   at `validate_params`, naming the keys to set.
4. `summary`: what each repo took, logged and returned.

Embedders run one at a time (Vectorize mutation ids are not ordered, so concurrent writers could
each wait for the other's mutation).
"""

from airflow.sdk import Param, task, task_group

from airflow_provider_cloudflare.operators.d1 import D1SqlOperator
from prism.dag_factory import prism_dag
from prism.maintenance import indexing
from prism.param_checks import ISO_WITH_ZONE_PATTERN, REPO_PATTERN

DB = "{{ prism().cloudflare.d1_database }}"


with prism_dag(
    "prism_index_incremental",
    doc_md=__doc__,
    tags=["index", "manual"],
    params={
        "repos": Param(
            [],
            type="array",
            items={"type": "string", "pattern": REPO_PATTERN, "maxLength": 201},
            uniqueItems=True,
            maxItems=100,
            title="Repositories",
            description="owner/name of the repos to update, each one of indexing.repos; empty: all of them.",
        ),
        "since": Param(
            None,
            type=["null", "string"],
            pattern=ISO_WITH_ZONE_PATTERN,
            maxLength=40,
            title="Since",
            description="Index what changed after this time (ISO 8601 with a zone, e.g. "
            "2026-11-01T00:00:00Z; a real time, not in the future) instead of the last update, "
            "MAX(documents.created_at). Empty: the last update.",
        ),
    },
) as dag:

    @task(retries=0)
    def validate_params(**context) -> list[str]:
        return indexing.incremental_repos(context["params"])

    repos = validate_params()
    last_update = D1SqlOperator(task_id="last_update", sql="index/last_update.sql", database=DB)
    repos >> last_update

    @task
    def since(last: dict, **context) -> str | None:
        return indexing.changed_since(last, context["params"].get("since"))

    changed_since = since(last_update.output)

    @task_group
    def update_repo(repo: str, since: str | None):
        indexing.index_then_embed(repo, since=since)

    @task
    def summary(since: str | None, **context) -> dict:
        return indexing.incremental_summary(since, indexing.embedded_runs(context, "update_repo.embed"))

    update_repo.partial(since=changed_since).expand(repo=repos) >> summary(changed_since)
