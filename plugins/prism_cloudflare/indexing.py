"""Running PRISM's indexer and embedder (`indexing.indexer_command` / `embedder_command`), and the
index-then-embed tasks the index DAGs map over their repos.

The command runs as a subprocess in `indexing.working_dir`, with the Cloudflare connection in its
environment. Its output is logged, and put in the error when it fails, with the API token redacted:
the child has the token and might print it.
"""

from __future__ import annotations

import json
import logging
import os
import subprocess
import sys
from pathlib import Path
from urllib.parse import quote

ROOT = Path(__file__).resolve().parents[2]
CONN_ID = "cloudflare_default"
REDACTED = "***"
log = logging.getLogger(__name__)


def redact(text: str, secret: str | None) -> str:
    """`text` without `secret`, as written raw, inside a JSON string or in a URL."""
    if not secret:
        return text
    for form in sorted({secret, json.dumps(secret)[1:-1], quote(secret, safe="")}, key=len, reverse=True):
        text = text.replace(form, REDACTED)
    return text


def flags(since: str | None = None, rebuild: bool = False) -> list[str]:
    """The command-line flags PRISM's indexer and embedder take for an incremental or full run."""
    return [*(["--since", since] if since else []), *(["--rebuild"] if rebuild else [])]


def run_prism(kind: str, repo: str, *args: str) -> dict:
    """Run PRISM's `kind` ("indexer" or "embedder") for one repo, as the config says, and return the
    JSON summary it prints last. Raises AirflowException with its output when it fails."""
    from airflow.sdk import BaseHook
    from airflow.sdk.exceptions import AirflowException
    from airflow.sdk.log import mask_secret

    from prism_cloudflare.config import runtime_config

    config = runtime_config()
    command = list(config["indexing"][f"{kind}_command"])
    if command[0] in ("python", "python3"):
        command[0] = sys.executable  # the worker's interpreter, which has the hooks' dependencies
    conn = BaseHook.get_connection(CONN_ID)  # from the environment, the metadata DB or a secrets backend
    token = conn.password
    mask_secret(token)  # Airflow's own log masking too, for anything else this task logs
    env = {**os.environ,
           "PYTHONPATH": os.pathsep.join(filter(None, [str(ROOT / "plugins"), os.environ.get("PYTHONPATH")])),
           "PRISM_D1_DATABASE": config["cloudflare"]["d1_database"],
           "PRISM_VECTORIZE_INDEX": config["cloudflare"]["vectorize_index"],
           "PRISM_EMBEDDING_MODEL": config["cloudflare"].get("embedding_model", "")}
    env.setdefault(f"AIRFLOW_CONN_{CONN_ID.upper()}", conn.as_json())
    argv = [*command, "--repo", repo, *args]
    shown = " ".join(argv[1:] if argv[0] == sys.executable else argv)
    proc = subprocess.run(argv, cwd=ROOT / config["indexing"]["working_dir"], env=env, capture_output=True,
                          text=True, errors="replace")
    stdout = redact(proc.stdout, token)
    output = redact((proc.stdout + proc.stderr).strip(), token)
    log.info("%s exited with %d:\n%s", redact(shown, token), proc.returncode, output)
    if proc.returncode:
        # Redacted before cutting, so no cut can leave part of the token.
        raise AirflowException(redact(f"{shown} exited with {proc.returncode}:\n", token) + output[-4000:])
    for line in reversed(stdout.splitlines()):
        if line.startswith("{"):
            return json.loads(line)
    return {"repo": repo, "output": stdout[-2000:]}


def index_then_embed(repo, since=None, rebuild: bool = False):
    """Tasks `index` (PRISM's indexer for the repo) then `embed` (its embedder), in the task group
    being defined, usually one mapped over the repos. `embed` returns both summaries. Embedders run
    one at a time: Vectorize mutation ids are not ordered, so two concurrent writers could each wait
    for the other's mutation."""
    from airflow.sdk import task

    @task(task_id="index", pool="cloudflare_heavy")
    def index(repo: str, since: str | None = None, rebuild: bool = False) -> dict:
        return run_prism("indexer", repo, *flags(since, rebuild))

    @task(task_id="embed", pool="cloudflare_heavy", max_active_tis_per_dag=1)
    def embed(indexed: dict, since: str | None = None, rebuild: bool = False) -> dict:
        return {"index": indexed, "embed": run_prism("embedder", indexed["repo"], *flags(since, rebuild))}

    return embed(index(repo, since, rebuild), since, rebuild)
