"""The preflight for a real account: every check a first run depends on, one line each.

Each check gives a `Check`; its line is `PASS|FAIL|SKIP <check>: <detail> — fix: <what to do>` (no fix on
PASS). Reads are probed harmlessly: lists, gets, a `SELECT 1`, a zero-vector query, one embedding,
one GraphQL query. Writes (creating and deleting a scratch D1 database and Vectorize index, and
writing and deleting a KV key) run only with `prove_writes`. Nothing here raises for a failed check:
every check runs, and `verdict()` fails the run afterwards.
"""

from __future__ import annotations

import json
import re
import subprocess
import sys
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone

from airflow.sdk.exceptions import AirflowFailException
from airflow.utils.session import create_session

from airflow_provider_cloudflare.errors import CloudflareAuthError, CloudflareError, CloudflareNotFound
from prism.monitoring.worker import PrismWorkerHook
from prism.settings.config import runtime_config
from prism.settings.pools import pool_definitions

# Every permission group the DAGs use, and what for (the README's "Production setup" lists the same).
PERMISSIONS = {
    "D1 Read": "find the database, its size (health, resource usage, backups)",
    "D1 Edit": "SQL (health SELECT 1, cleanups, reports), exports, imports, scratch databases",
    "Vectorize Read": "index info, queries, exports (backups)",
    "Vectorize Edit": "orphan vector deletes, restores, rebuilds, scratch indexes",
    "Workers KV Storage Read": "namespace and key listing, snapshots (backups)",
    "Workers KV Storage Edit": "restores, scratch namespaces of verification",
    "Workers Scripts Read": "the Worker's deployments and versions",
    "Workers AI Read": "embeddings (health check, indexing)",
    "Account Analytics Read": "GraphQL analytics (log review, reports, usage)",
}
# A short, unique marker for everything the preflight creates, so an operator can spot leftovers.
SCRATCH_PREFIX = "preflight-scratch-"
WORKER_NAME_RE = re.compile(r"\A[a-z0-9](?:[a-z0-9_-]{0,61}[a-z0-9])?\Z")
MAX_DETAIL = 400


def clean(text: object, limit: int = MAX_DETAIL) -> str:
    """One printable line: control characters escaped (a newline cannot forge a second PASS line), long
    text cut. The text goes to logs and XCom as data; the dashboard and reports escape it themselves."""
    out = "".join(ch if ch.isprintable() else ch.encode("unicode_escape").decode("ascii") for ch in str(text))
    return out if len(out) <= limit else out[: limit - 3] + "..."


@dataclass(frozen=True)
class Check:
    status: str  # PASS, FAIL or SKIP
    name: str
    detail: str
    fix: str = ""

    @property
    def line(self) -> str:
        text = f"{self.status} {clean(self.name, 80)}: {clean(self.detail)}"
        return text + (f" — fix: {clean(self.fix)}" if self.status != "PASS" and self.fix else "")


def passed(name: str, detail: str) -> Check:
    return Check("PASS", name, detail)


def failed(name: str, detail: str, fix: str) -> Check:
    return Check("FAIL", name, detail, fix)


def _grant(permission: str) -> str:
    return (
        f"give the API token the permission '{permission}' (dash.cloudflare.com → My Profile → API Tokens → "
        f"edit the token), then run the preflight again"
    )


def _from_error(name: str, exc: Exception, permission: str, missing_fix: str = "") -> Check:
    """A failed probe as a FAIL line: a refusal names the permission, a 404 says what to create."""
    if isinstance(exc, CloudflareAuthError) and exc.code == 9109:
        return failed(
            name,
            f"the token may not use this account: {exc}",
            "check account_id in the cloudflare_default connection and the token's account resources",
        )
    if isinstance(exc, CloudflareAuthError) or (isinstance(exc, CloudflareError) and exc.status in (401, 403)):
        return failed(name, f"refused, the token lacks '{permission}' ({exc})", _grant(permission))
    if isinstance(exc, CloudflareNotFound) and missing_fix:
        return failed(name, f"not found: {exc}", missing_fix)
    return failed(name, f"{type(exc).__name__}: {exc}", "see the error; rerun the preflight when Cloudflare answers")


def _probe(name: str, permission: str, action: Callable[[], str], missing_fix: str = "") -> Check:
    try:
        return passed(name, action())
    except Exception as exc:  # noqa: BLE001 - every failure becomes a FAIL line, never an aborted preflight
        return _from_error(name, exc, permission, missing_fix)


# ---- the Cloudflare connection, resources and permissions -----------------------------------
def cloudflare_checks(cfg: dict, *, prove_writes: bool, conn_id: str = "cloudflare_default") -> list[Check]:
    # The Cloudflare hooks pull requests (~35 ms), which the preflight DAG's file otherwise never imports.
    from airflow_provider_cloudflare.hooks.ai import WorkersAIHook
    from airflow_provider_cloudflare.hooks.analytics import WorkersAnalyticsHook
    from airflow_provider_cloudflare.hooks.cloudflare import CloudflareBaseHook
    from airflow_provider_cloudflare.hooks.d1 import D1Hook
    from airflow_provider_cloudflare.hooks.kv import KVHook
    from airflow_provider_cloudflare.hooks.vectorize import VectorizeHook

    cf = cfg["cloudflare"]
    # priority="monitor": the preflight is a handful of calls and should not wait on bulk pacing.
    kw = {"cloudflare_conn_id": conn_id, "priority": "monitor", "max_attempts": 2}
    base, d1, vec, kv = CloudflareBaseHook(**kw), D1Hook(**kw), VectorizeHook(**kw), KVHook(**kw)
    ai, analytics = WorkersAIHook(**kw), WorkersAnalyticsHook(**kw)
    conn_fix = (
        "set the API token (password) and account_id (extra) of the connection "
        f"'{conn_id}', type cloudflare; `airflow connections test {conn_id}` checks both"
    )
    try:
        ok, detail = base.verify_token()
    except Exception as exc:  # noqa: BLE001 - a missing or broken connection
        return [failed("token", f"{type(exc).__name__}: {exc}", conn_fix)]
    checks = [Check("PASS" if ok else "FAIL", "token", detail, "" if ok else conn_fix)]
    if not ok:
        return checks  # every other probe would only repeat that the token is refused
    ok, detail = base.verify_account()
    checks.append(Check("PASS" if ok else "FAIL", "account", detail, "" if ok else conn_fix))
    if not ok:
        return checks

    db_name, index, ns_title, worker = cf["d1_database"], cf["vectorize_index"], cf["kv_namespace"], cf["worker_name"]
    dims, metric = int(cf["vectorize_dimensions"]), cf["vectorize_metric"]
    found: dict[str, str] = {}

    def d1_database() -> str:
        found["d1"] = d1.find_database(db_name)
        info = d1.get_database(found["d1"])
        return f"{db_name!r} exists (uuid {found['d1']}, {info.get('file_size', '?')} bytes)"

    checks.append(
        _probe(
            "D1 database [D1 Read]",
            "D1 Read",
            d1_database,
            f"create it (`wrangler d1 create {db_name}`) or set cloudflare.d1_database in the config",
        )
    )

    def vectorize_index() -> str:
        config = vec.get_index(index).get("config") or {}
        got = (config.get("dimensions"), config.get("metric"))
        if got != (dims, metric):
            raise _Mismatch(f"{index!r} has dimensions {got[0]} and metric {got[1]}, the config wants {dims}/{metric}")
        return f"{index!r} exists, {dims} dimensions, {metric}"

    vec_check = _probe(
        "Vectorize index [Vectorize Read]",
        "Vectorize Read",
        vectorize_index,
        f"create it (`wrangler vectorize create {index} --dimensions={dims} --metric={metric}`) or set "
        "cloudflare.vectorize_index in the config",
    )
    if vec_check.status == "FAIL" and "the config wants" in vec_check.detail:
        vec_check = failed(
            vec_check.name,
            vec_check.detail.removeprefix("_Mismatch: "),
            "an index's dimensions and metric cannot change: recreate the index with the configured "
            "ones (prism_index_rebuild does it) or fix cloudflare.vectorize_dimensions/_metric",
        )
    checks.append(vec_check)

    def kv_namespace() -> str:
        found["kv"] = kv.find_namespace(ns_title)
        next(iter(kv.list_keys(found["kv"])), None)  # the key list is what backups read
        return f"{ns_title!r} exists (id {found['kv']}); its keys can be listed"

    checks.append(
        _probe(
            "KV namespace [Workers KV Storage Read]",
            "Workers KV Storage Read",
            kv_namespace,
            f"create it (`wrangler kv namespace create {ns_title}`) or set cloudflare.kv_namespace",
        )
    )

    def worker_script() -> str:
        if not WORKER_NAME_RE.match(worker):
            raise _Invalid(f"{worker!r} is not a Worker name (lowercase letters, digits, - and _)")
        deployments = analytics.deployments(worker)
        return f"{worker!r} exists, {len(deployments)} deployment(s)"

    worker_check = _probe(
        "Worker script [Workers Scripts Read]",
        "Workers Scripts Read",
        worker_script,
        f"deploy the Worker `{worker}` (`wrangler deploy`) or set cloudflare.worker_name",
    )
    if worker_check.status == "FAIL" and worker_check.detail.startswith("_Invalid"):
        worker_check = failed(
            worker_check.name,
            worker_check.detail.removeprefix("_Invalid: "),
            "set cloudflare.worker_name to the Worker's name",
        )
    checks.append(worker_check)

    # Reads of the other permission groups, each harmless.
    def d1_query() -> str:
        if "d1" not in found:
            raise _Skipped("needs the D1 database")
        d1.query(found["d1"], "SELECT 1")
        return f"SELECT 1 on {db_name!r} answered (the query endpoint needs D1 Edit)"

    def vectorize_query() -> str:
        vec.query(index, [0.0] * dims, top_k=1)
        return f"a zero-vector query (topK 1) on {index!r} answered"

    def ai_embed() -> str:
        vectors = list(ai.embed(["preflight"], model=cf.get("embedding_model") or "@cf/baai/bge-small-en-v1.5"))
        return f"one embedding of {len(vectors[0])} dimensions"

    def analytics_query() -> str:
        end = datetime.now(timezone.utc).replace(minute=0, second=0, microsecond=0)
        traffic = analytics.worker_traffic(worker, end - timedelta(hours=1), end)
        return f"GraphQL answered ({traffic['requests']} requests in the last full hour)"

    for name, permission, action in (
        ("D1 query [D1 Edit]", "D1 Edit", d1_query),
        ("Vectorize query [Vectorize Read]", "Vectorize Read", vectorize_query),
        ("Workers AI [Workers AI Read]", "Workers AI Read", ai_embed),
        ("GraphQL analytics [Account Analytics Read]", "Account Analytics Read", analytics_query),
    ):
        check = _probe(name, permission, action)
        if check.status == "FAIL" and check.detail.startswith("_Skipped"):
            check = Check("SKIP", name, check.detail.removeprefix("_Skipped: "), "fix the D1 database check first")
        checks.append(check)

    checks += write_checks(d1, vec, kv, found.get("kv"), dims, metric, prove_writes)
    return checks


def write_checks(d1, vec, kv, kv_id: str | None, dims: int, metric: str, prove_writes: bool) -> list[Check]:
    """Create and delete a scratch D1 database and Vectorize index, and write and delete a KV key."""
    names = (
        "D1 scratch database [D1 Edit]",
        "Vectorize scratch index [Vectorize Edit]",
        "KV scratch key [Workers KV Storage Edit]",
    )
    if not prove_writes:
        return [
            Check(
                "SKIP",
                n,
                "not proven: prove_writes is off, so nothing was written",
                "trigger prism_preflight with prove_writes=true to create and delete scratch resources",
            )
            for n in names
        ]
    scratch = SCRATCH_PREFIX + uuid.uuid4().hex[:12]

    def d1_scratch() -> str:
        created = d1.create_database(scratch)
        d1.delete_database(created["uuid"])
        return f"created and deleted the database {scratch!r}"

    def vectorize_scratch() -> str:
        vec.create_index(scratch, dims, metric, description="PRISM preflight scratch index, deleted at once")
        vec.delete_index(scratch)
        return f"created and deleted the index {scratch!r} ({dims}/{metric})"

    def kv_scratch() -> str:
        if kv_id is None:
            raise _Skipped("needs the KV namespace")
        key = f"__{scratch}"
        # The TTL is a net: should the delete fail, the key still vanishes within a minute.
        kv.put_value(kv_id, key, b"preflight", expiration_ttl=60)
        kv.delete_value(kv_id, key)
        return f"wrote and deleted the key {key!r} (60 s TTL as a net)"

    out = []
    for name, permission, action in zip(
        names, ("D1 Edit", "Vectorize Edit", "Workers KV Storage Edit"), (d1_scratch, vectorize_scratch, kv_scratch)
    ):
        check = _probe(name, permission, action)
        if check.status == "FAIL" and check.detail.startswith("_Skipped"):
            check = Check("SKIP", name, check.detail.removeprefix("_Skipped: "), "fix the KV namespace check first")
        out.append(check)
    return out


class _Mismatch(Exception):
    pass


class _Invalid(Exception):
    pass


class _Skipped(Exception):
    pass


# ---- pools ----------------------------------------------------------------------------------
def expected_pools() -> dict[str, int]:
    """{pool: slots} the DAGs use, from their one definition (include/pools.json through prism.settings.pools)."""
    return {name: int(spec["slots"]) for name, spec in pool_definitions().items()}


def read_pools() -> dict[str, int]:
    """{pool: slots} as Airflow has them. Through the ORM where this process may use it (`airflow dags test`,
    dag.test()); else through `airflow pools list` (a task on a worker may not open the metadata DB itself)."""
    try:
        # Lazy and inside the try: a task process has no core ORM loaded (~0.3 s) and may not use it.
        from airflow.models.pool import Pool

        with create_session() as session:
            return {p.pool: int(p.slots) for p in session.query(Pool).all()}
    except Exception:  # noqa: BLE001 - ORM blocked in a task subprocess: ask Airflow's own CLI
        return read_pools_cli()


def read_pools_cli() -> dict[str, int]:
    out = subprocess.run(
        [sys.executable, "-m", "airflow", "pools", "list", "--output", "json"],
        capture_output=True,
        text=True,
        timeout=180,
        check=True,
    ).stdout
    start = out.find("[")
    return {p["pool"]: int(p["slots"]) for p in json.loads(out[start:])}


def pool_checks(
    expected: dict[str, int] | None = None, reader: Callable[[], dict[str, int]] = read_pools
) -> list[Check]:
    expected = expected or expected_pools()
    try:
        have = reader()
    except Exception as exc:  # noqa: BLE001
        return [
            failed(
                f"pool {name}",
                f"could not read Airflow's pools: {type(exc).__name__}: {exc}",
                "run `airflow pools list` on the scheduler host to check by hand",
            )
            for name in expected
        ]
    out = []
    for name, slots in sorted(expected.items()):
        fix = f'`airflow pools set {name} {slots} "PRISM: {name}"` (or `airflow pools import include/pools.json`)'
        if name not in have:
            out.append(failed(f"pool {name}", "missing: tasks in a missing pool are never scheduled", fix))
        elif have[name] != slots:
            out.append(failed(f"pool {name}", f"has {have[name]} slots, the DAGs are built for {slots}", fix))
        else:
            out.append(passed(f"pool {name}", f"{slots} slot(s)"))
    return out


# ---- the bucket -----------------------------------------------------------------------------
def bucket_checks(bucket: str, aws_conn_id: str = "aws_default") -> list[Check]:
    """The bucket exists, and a probe object can be written, read back and deleted."""
    # Imported when the bucket is checked: S3Hook pulls boto3 (~0.3 s), too slow for DAG parsing.
    from airflow.providers.amazon.aws.hooks.s3 import S3Hook

    name = "bucket"
    conn_fix = (
        f"check the connection '{aws_conn_id}' (type aws: access key, secret, region; extra endpoint_url for R2) "
        f"and backups.bucket in the config"
    )
    try:
        s3 = S3Hook(aws_conn_id=aws_conn_id)
        if not s3.check_for_bucket(bucket):
            return [
                failed(
                    name,
                    f"{bucket!r} does not exist or the credentials cannot see it",
                    f"create the bucket {bucket!r} (R2: `wrangler r2 bucket create {bucket}`) or {conn_fix}",
                )
            ]
    except Exception as exc:  # noqa: BLE001
        return [failed(name, f"{type(exc).__name__}: {exc}", conn_fix)]
    checks = [passed(name, f"{bucket!r} exists")]
    key, body = f"preflight/{SCRATCH_PREFIX}{uuid.uuid4().hex[:12]}.txt", f"preflight {uuid.uuid4().hex}".encode()
    try:
        s3.load_bytes(body, key=key, bucket_name=bucket, replace=False)
        back = s3.get_key(key, bucket).get()["Body"].read()
        if back != body:
            raise ValueError(f"read back {len(back)} bytes that differ from the {len(body)} written")
        s3.delete_objects(bucket, [key])
        if s3.check_for_key(key, bucket):
            raise ValueError(f"{key} is still there after the delete")
        checks.append(passed("bucket write/read/delete", f"wrote, read back and deleted {key!r}"))
    except Exception as exc:  # noqa: BLE001
        checks.append(
            failed(
                "bucket write/read/delete",
                f"{type(exc).__name__}: {exc}",
                "the credentials need s3:PutObject, s3:GetObject, s3:DeleteObject and s3:ListBucket on "
                f"{bucket!r} (R2: an Object Read & Write token); {conn_fix}",
            )
        )
    return checks


# ---- PRISM's Worker ---------------------------------------------------------------------------
def worker_checks(http_conn_id: str = "prism_worker") -> list[Check]:
    hook = PrismWorkerHook(http_conn_id=http_conn_id)
    fix = f"check the host of the connection '{http_conn_id}' (type http): the Worker's base URL"
    out = []
    try:
        health = hook.health()
        if health.get("http_status") == 200 and health.get("status") == "healthy":
            out.append(passed("Worker /health", "healthy"))
        else:
            out.append(
                failed(
                    "Worker /health",
                    f"HTTP {health.get('http_status')}, status {health.get('status')!r}",
                    f"see the Worker's checks {health.get('checks')!r}; {fix}",
                )
            )
    except Exception as exc:  # noqa: BLE001
        out.append(failed("Worker /health", f"{type(exc).__name__}: {exc}", fix))
    try:
        metrics = hook.metrics("24h")
        if not isinstance(metrics, dict) or "requests" not in metrics:
            raise ValueError(
                f"no 'requests' in the answer (keys {sorted(metrics)[:10] if isinstance(metrics, dict) else type(metrics).__name__})"
            )
        out.append(passed("Worker /metrics", "answered with request figures"))
    except Exception as exc:  # noqa: BLE001
        out.append(failed("Worker /metrics", f"{type(exc).__name__}: {exc}", fix))
    return out


# ---- the verdict ----------------------------------------------------------------------------
def lines(checks: list[Check]) -> list[str]:
    return [c.line for c in checks]


def verdict(all_lines: list[str]) -> tuple[bool, str]:
    """(every check passed?, summary). SKIP lines do not fail the preflight."""
    if not all_lines:
        return False, "no check ran"
    failures = [line for line in all_lines if line.startswith("FAIL ")]
    total = len(all_lines)
    if failures:
        return False, f"{len(failures)} of {total} checks failed: " + "; ".join(
            f.split(" — fix:")[0][5:] for f in failures
        )
    skipped = sum(1 for line in all_lines if line.startswith("SKIP "))
    return True, f"all {total - skipped} checks passed" + (f", {skipped} skipped" if skipped else "")


# ---- the DAG's tasks: one call each --------------------------------------------------------------


def account_lines(prove_writes: bool) -> list[str]:
    return lines(cloudflare_checks(runtime_config(), prove_writes=bool(prove_writes)))


def bucket_lines() -> list[str]:
    return lines(bucket_checks(runtime_config()["backups"]["bucket"]))


def conclude(groups, ti) -> list[str]:
    """Print every line, push them as XCom `lines`, and fail the run (after all checks ran) on a FAIL."""
    found = [line for group in groups for line in (group or [])]
    for line in found:
        print(line)
    ti.xcom_push(key="lines", value=found)
    ok, summary = verdict(found)
    print(summary)
    if not ok:
        raise AirflowFailException(f"preflight failed: {summary}")
    return found
