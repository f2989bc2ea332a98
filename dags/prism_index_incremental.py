"""
### PRISM incremental index update (manual)

The guide's **Index Updates: Incremental Index Update**.

1. `validate_params`: the repos asked for must be in `indexing.repos`; fails before anything changes.
2. `last_update`: `MAX(created_at)` over documents (`include/sql/index/last_update.sql`); the `since`
   param overrides it. With no documents at all, everything is indexed.
3. `update_repo` (mapped over the repos): PRISM's indexer `--since <last update>`, then its embedder
   `--since <last update>`.
4. `summary`: what each repo took, logged and returned.

Embedders run one at a time (Vectorize mutation ids are not ordered, so concurrent writers could
each wait for the other's mutation).
"""

from airflow.sdk import Param, task, task_group

from prism_cloudflare.dags import prism_dag
from prism_cloudflare.indexing import index_then_embed
from prism_cloudflare.operators.d1_sql import D1SqlOperator

DB = "{{ prism().cloudflare.d1_database }}"
REPO_PATTERN = r"^[\w.-]+/[\w.-]+$"
TIME_PATTERN = r"^\d{4}-\d{2}-\d{2}([ T]\d{2}:\d{2}(:\d{2}(\.\d+)?)?)?(Z|[+-]\d{2}:?\d{2})?$"


with prism_dag(
    "prism_index_incremental",
    doc_md=__doc__,
    tags=["index", "manual"],
    params={
        "repos": Param([], type="array", items={"type": "string", "pattern": REPO_PATTERN}, uniqueItems=True,
                       title="Repositories",
                       description="owner/name of the repos to update, each one of indexing.repos; empty: all of them."),
        "since": Param(None, type=["null", "string"], pattern=TIME_PATTERN, title="Since (UTC)",
                       description="Index what changed after this time (ISO 8601, e.g. 2026-11-01 00:00:00) instead "
                                   "of the last update, MAX(documents.created_at). Empty: the last update."),
    },
) as dag:

    @task(retries=0)
    def validate_params(**context) -> list[str]:
        from datetime import datetime

        from airflow.sdk.exceptions import AirflowFailException

        from prism_cloudflare.config import runtime_config

        params = context["params"]
        configured = runtime_config()["indexing"]["repos"]
        unknown = sorted(set(params.get("repos") or []) - set(configured))
        if unknown:
            raise AirflowFailException(f"not in indexing.repos {configured}: {unknown}; nothing was changed")
        if params.get("since"):
            try:
                datetime.fromisoformat(params["since"].replace("Z", "+00:00"))
            except ValueError as exc:
                raise AirflowFailException(f"since={params['since']!r} is not a time: {exc}; nothing was changed") from None
        return [r for r in configured if r in (params.get("repos") or configured)]

    repos = validate_params()
    last_update = D1SqlOperator(task_id="last_update", sql="index/last_update.sql", database=DB)
    repos >> last_update

    @task
    def since(last: dict, **context) -> str | None:
        override = context["params"].get("since")
        found = last["rows"][0]["last_update"] if last.get("rows") else None
        value = override or found
        print(f"last update: {found or '(no documents)'}; indexing what changed after "
              f"{value or 'the beginning (the index is empty)'}" + (" (from the since param)" if override else ""))
        return value

    changed_since = since(last_update.output)

    @task_group
    def update_repo(repo: str, since: str | None):
        index_then_embed(repo, since=since)

    @task
    def summary(since: str | None, **context) -> dict:
        # A list of task ids: every map index's value, as a list even when there is one repo.
        runs = [r for r in context["ti"].xcom_pull(task_ids=["update_repo.embed"]) if r]
        out = {"since": since, "documents_written": sum(r["index"].get("documents_written", 0) for r in runs),
               "chunks_embedded": sum(r["embed"].get("chunks_embedded", 0) for r in runs),
               "repos": {r["index"]["repo"]: {"documents_written": r["index"].get("documents_written", 0),
                                              "chunks_embedded": r["embed"].get("chunks_embedded", 0)} for r in runs}}
        print(f"incremental update since {since}: {out}")
        return out

    update_repo.partial(since=changed_since).expand(repo=repos) >> summary(changed_since)
