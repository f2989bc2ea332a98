"""Running PRISM's indexer and embedder (`indexing.indexer_command` / `embedder_command`), the
index-then-embed tasks the index DAGs map over their repos, and what those DAGs decide around them:
which repos to index, since when, and the summary and report of what the runs wrote.

The shipped config names no indexer: a deployment names PRISM's own (the demo, the local stacks and
the tests name the demo indexer in their overlay, include/prism.demo.json). Without one, index tasks
skip, naming the keys to set, and a rebuild refuses before it clears anything.

The command runs through child_process in `indexing.working_dir`: an allow-listed environment plus
the names in `indexing.env`, and what an indexer needs passed explicitly (CLOUDFLARE_API_TOKEN,
CLOUDFLARE_ACCOUNT_ID, CLOUDFLARE_API_BASE_URL, PRISM_CLOUDFLARE_BUDGET, PRISM_D1_DATABASE,
PRISM_VECTORIZE_INDEX, PRISM_EMBEDDING_MODEL), never an Airflow connection. What it prints is redacted
(the token in every form, and every secret Airflow's masker knows) before it is logged, returned or raised.
"""

from __future__ import annotations

import json
import logging
import os
import sys
from datetime import datetime, timedelta, timezone

from airflow.sdk import BaseHook, task
from airflow.sdk.exceptions import AirflowException, AirflowSkipException
from airflow.sdk.log import mask_secret

from airflow_provider_cloudflare.hooks.cloudflare import DEFAULT_BASE_URL
from prism import child_process
from prism.param_checks import parse_iso_with_zone, shown
from prism.refusals import refuse
from prism.reports.markdown import markdown, publish_report, report_key
from prism.runtime import in_backfill, window
from prism.settings.config import runtime_config
from prism.settings.paths import BUNDLE as ROOT
from prism.settings.pools import HEAVY_POOL

CONN_ID = "cloudflare_default"
log = logging.getLogger(__name__)


def missing_indexer(config: dict) -> str | None:
    """None when the indexer and embedder are configured; else why not, naming the keys to set."""
    indexing = config["indexing"]
    missing = [f"indexing.{kind}_command" for kind in ("indexer", "embedder") if not indexing.get(f"{kind}_command")]
    if not missing:
        return None
    return (
        f"no indexer is configured: set {' and '.join(missing)} (and indexing.working_dir, indexing.env) "
        "in include/prism.config.json or the prism_config Variable to PRISM's own indexer and embedder"
    )


def skip_without_indexer(config: dict) -> None:
    """Skip the index task (and so what follows it) when the config names no indexer."""
    reason = missing_indexer(config)
    if reason:
        raise AirflowSkipException(f"{reason}; the index is left as it is")


def flags(since: str | None = None, rebuild: bool = False) -> list[str]:
    """The command-line flags PRISM's indexer and embedder take for an incremental or full run."""
    return [*(["--since", since] if since else []), *(["--rebuild"] if rebuild else [])]


def indexer_env(config: dict, conn) -> dict[str, str]:
    """What an indexer is given explicitly: Cloudflare's credentials as wrangler takes them, and the
    resources to write to."""
    extra, cf = conn.extra_dejson, config["cloudflare"]
    return {
        "CLOUDFLARE_API_TOKEN": conn.password or "",
        "CLOUDFLARE_ACCOUNT_ID": str(extra.get("account_id") or ""),
        "CLOUDFLARE_API_BASE_URL": str(extra.get("base_url") or DEFAULT_BASE_URL),
        "PRISM_CLOUDFLARE_BUDGET": json.dumps(extra.get("budget") or {}),
        "PRISM_D1_DATABASE": cf["d1_database"],
        "PRISM_VECTORIZE_INDEX": cf["vectorize_index"],
        "PRISM_EMBEDDING_MODEL": cf.get("embedding_model", ""),
        # the bundle's hooks, for indexers written in Python like the demo's
        "PYTHONPATH": os.pathsep.join(filter(None, [str(ROOT / "plugins"), os.environ.get("PYTHONPATH")])),
    }


def run_prism(kind: str, repo: str, *args: str) -> dict:
    """Run PRISM's `kind` ("indexer" or "embedder") for one repo, as the config says, and return the
    JSON summary it prints last. Raises AirflowException with its output when it fails; skips when the
    config names no such command."""
    config = runtime_config()
    indexing = config["indexing"]
    if not indexing.get(f"{kind}_command"):
        skip_without_indexer(config)
    command = list(indexing[f"{kind}_command"])
    if command[0] in ("python", "python3"):
        command[0] = sys.executable  # the worker's interpreter, which has the hooks' dependencies
    conn = BaseHook.get_connection(CONN_ID)  # from the environment, the metadata DB or a secrets backend
    token = conn.password
    mask_secret(token)  # Airflow's own log masking too, for anything else this task logs
    argv = [*command, "--repo", repo, *args]
    done = child_process.run(
        argv,
        ROOT / (indexing.get("working_dir") or "."),
        env_names=indexing.get("env") or (),
        explicit_env=indexer_env(config, conn),
        secrets=[token],
    )
    shown = " ".join(done.argv[1:] if argv[0] == sys.executable else done.argv)
    output = done.output.strip()
    log.info("%s exited with %d:\n%s", shown, done.returncode, output)
    if done.returncode:
        raise AirflowException(f"{shown} exited with {done.returncode}:\n" + output[-4000:])
    for line in reversed(done.stdout.splitlines()):
        if line.startswith("{"):
            return child_process.redact(json.loads(line), token)  # the masker also hides sensitive keys
    return {"repo": repo, "output": done.stdout[-2000:]}


def index_then_embed(repo, since=None, rebuild: bool = False):
    """Tasks `index` (PRISM's indexer for the repo) then `embed` (its embedder), in the task group
    being defined, usually one mapped over the repos. `embed` returns both summaries. Embedders run
    one at a time: Vectorize mutation ids are not ordered, so two concurrent writers could each wait
    for the other's mutation."""

    @task(task_id="index", pool=HEAVY_POOL)
    def index(repo: str, since: str | None = None, rebuild: bool = False) -> dict:
        return run_prism("indexer", repo, *flags(since, rebuild))

    @task(task_id="embed", pool=HEAVY_POOL, max_active_tis_per_dag=1)
    def embed(indexed: dict, since: str | None = None, rebuild: bool = False) -> dict:
        return {"index": indexed, "embed": run_prism("embedder", indexed["repo"], *flags(since, rebuild))}

    return embed(index(repo, since, rebuild), since, rebuild)


# ---- around the index runs: which repos, since when, and what they wrote -----------------------


def embedded_runs(context, task_id: str) -> list[dict]:
    """What every map index of the `embed` task returned in this run ({"index": …, "embed": …}). A list
    of task ids makes xcom_pull return a list even when one repo was mapped."""
    return [r for r in context["ti"].xcom_pull(task_ids=[task_id]) if r]


def weekly_repos(context) -> list[str]:
    """The repos the weekly index update maps over: all of indexing.repos. Skipped inside a backfill
    (the indexer reads the repos as they are now) and when the config names no indexer; either way
    the weekly report still counts the window."""
    if in_backfill(context):
        raise AirflowSkipException(
            "inside a backfill: the indexer reads the repositories as they are now, "
            "not as they were in the window; the report still counts the window"
        )
    config = runtime_config()
    skip_without_indexer(config)
    return config["indexing"]["repos"]


def weekly_report(new_docs: dict, bounds: dict, context, period: timedelta) -> dict:
    """The weekly index update's report: the window's new documents (new_documents.sql's result) and
    what each repo's indexer and embedder wrote, published under reports/prism_weekly/<period>/."""
    count = new_docs["rows"][0]["new_documents"]
    runs = embedded_runs(context, "index_update.update_repo.embed")
    lines = [
        f"- {r['index']['repo']}: {r['index'].get('documents_written', 0)} documents and "
        f"{r['index'].get('chunks_written', 0)} chunks written, {r['embed'].get('chunks_embedded', 0)} "
        f"chunks embedded"
        for r in runs
    ]
    text = markdown(
        "PRISM weekly index update",
        window(context, default=period),
        {
            "New documents in the window": f"{count} documents were created in the window.",
            "Indexer and embedder": lines or ["Not run in this run (see the index_update.repos task)."],
        },
    )
    print(text)
    key = report_key("prism_weekly", "index_update", bounds["period"])
    uri = publish_report(runtime_config()["backups"]["bucket"], key, text)
    return {"new_documents": count, "repos": runs, "report": uri}


def incremental_repos(params: dict) -> list[str]:
    """The repos an incremental update asks for (params `repos`, empty: all), each one of
    indexing.repos, in the config's order; `since` must be a real past time with a zone. Refuses
    before anything changes; skips when the config names no indexer."""
    configured = runtime_config()["indexing"]["repos"]
    asked = params.get("repos") or []
    if not isinstance(asked, list) or not all(isinstance(r, str) for r in asked):
        raise refuse("to index", f"repos must be a list of owner/name, not {shown(asked)}")
    unknown = sorted(set(asked) - set(configured))
    if unknown:
        raise refuse("to index", f"not in indexing.repos {configured}: {shown(unknown)}")
    if params.get("since") is not None:
        try:
            parse_iso_with_zone("since", params["since"], datetime.now(timezone.utc))
        except ValueError as exc:
            raise refuse("to index", str(exc)) from None
    skip_without_indexer(runtime_config())  # no indexer configured: nothing runs, the skip names the keys
    return [r for r in configured if r in (asked or configured)]


def changed_since(last: dict, override: str | None = None) -> str | None:
    """Index what changed after this: the `since` param when given, else the last update
    (last_update.sql's MAX(created_at)); None when the index is empty (index everything)."""
    found = last["rows"][0]["last_update"] if last.get("rows") else None
    value = override or found
    print(
        f"last update: {found or '(no documents)'}; indexing what changed after "
        f"{value or 'the beginning (the index is empty)'}" + (" (from the since param)" if override else "")
    )
    return value


def incremental_summary(since: str | None, runs: list[dict]) -> dict:
    """What an incremental update wrote, in total and per repo, from the `embed` tasks' results."""
    out = {
        "since": since,
        "documents_written": sum(r["index"].get("documents_written", 0) for r in runs),
        "chunks_embedded": sum(r["embed"].get("chunks_embedded", 0) for r in runs),
        "repos": {
            r["index"]["repo"]: {
                "documents_written": r["index"].get("documents_written", 0),
                "chunks_embedded": r["embed"].get("chunks_embedded", 0),
            }
            for r in runs
        },
    }
    print(f"incremental update since {since}: {out}")
    return out
