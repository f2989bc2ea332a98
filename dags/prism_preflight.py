"""
### PRISM preflight (manual): is this account ready for a first real run?

Run it once before unpausing anything, and again after changing the token, the config or the
connections: `scripts/local-airflow dags test prism_preflight` locally, or trigger it in the UI.

1. `cloudflare`: the token (user or account token) and the account id; every resource the config
   names exists (D1 database, Vectorize index with the configured dimensions and metric, KV
   namespace, Worker); every permission the DAGs use, each read probed harmlessly. With
   `prove_writes` on, a scratch D1 database and Vectorize index are created and deleted and a KV key
   written and deleted (named `preflight-scratch-*`); off (the default), nothing is written.
2. `pools`: `cloudflare_heavy` (3 slots) and every pool the bundle declares, with their slots.
3. `bucket`: the backups bucket exists; a probe object is written, read back and deleted.
4. `worker`: PRISM's Worker answers `/health` (healthy) and `/metrics`.
5. `verdict`: logs one line per check, `PASS|FAIL|SKIP <check>: <detail> — fix: <what to do>`,
   pushes them as the XCom `lines`, and fails the run when any check failed.
"""

from airflow.sdk import Param, task

from prism import preflight
from prism.dag_factory import prism_dag

with prism_dag(
    "prism_preflight",
    doc_md=__doc__,
    tags=["preflight", "manual"],
    # One attempt: a preflight reports what it finds at once; retrying would only delay the answer.
    task_defaults={"retries": 0},
    params={
        "prove_writes": Param(
            False,
            type="boolean",
            title="Prove the Edit permissions",
            description="Create and delete a scratch D1 database and Vectorize index, and write and "
            "delete a KV key. Off: only harmless reads.",
        ),
    },
) as dag:

    @task
    def cloudflare(params=None) -> list[str]:
        return preflight.account_lines(params["prove_writes"])

    @task
    def pools() -> list[str]:
        return preflight.lines(preflight.pool_checks())

    @task
    def bucket() -> list[str]:
        return preflight.bucket_lines()

    @task
    def worker() -> list[str]:
        return preflight.lines(preflight.worker_checks())

    @task(trigger_rule="all_done")
    def verdict(*groups: list[str], ti=None) -> list[str]:
        return preflight.conclude(groups, ti)

    verdict(cloudflare(), pools(), bucket(), worker())
