"""PRISM's health check. A failed check fails the task, with every finding in the message.

The check records (dashboard_records `health`) how many REST requests it sent and the D1 and Vectorize
figures its requests answered anyway: the D1 database's size (D1 reports it with every query) and table
count, the index's vector count and dimensions. The health monitor's `usage` task shows those instead of
asking Cloudflare again.

It also records the D1 database's id (uuid) the configured name resolved to, and its next run queries that
id directly instead of listing the account's databases: one REST call less per run. The id is only ever
taken from this task's own record in Airflow's metadata DB (dashboard_records.last_recorded), for the same
database name and account, and must look like a uuid; the configured name stays the source of truth. A
first run lists once; so does a run after the id answers 404 (the database was recreated under the same
name), which says so in the check's detail.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from airflow.sdk import BaseOperator
from airflow.sdk.exceptions import AirflowException, AirflowSkipException

from airflow_provider_cloudflare.errors import CloudflareError, CloudflareNotFound
from prism.monitoring.api_calls import ApiCalls
from prism.monitoring.dashboard_records import health_snapshot, last_recorded, record
from prism.monitoring.worker import PrismWorkerHook
from prism.runtime import in_backfill
from prism.settings.paths import SQL_DIR

CHECKS = ("worker", "d1", "vectorize", "kv", "ai")
# SELECT 1, and in the same request the user tables (D1's own num_tables is documented as inaccurate).
# No leading comment in the file: the hook retries only statements it can see are read-only.
D1_PROBE = "health/d1_probe.sql"  # under include/sql


class CloudflareHealthCheckOperator(BaseOperator):
    """Check PRISM's resources now: the Worker's /health, D1 `SELECT 1`, a zero-vector Vectorize
    query (topK 1), KV, and a Workers AI embedding. It uses the monitoring share of the API budget.

    A health check says how things are *now*, so inside a backfill it skips with that reason
    instead of pretending to describe the past.
    """

    template_fields: Sequence[str] = ("database", "index", "namespace", "embedding_model")
    ui_color = "#2db47d"

    def __init__(
        self,
        *,
        database: str,
        index: str,
        namespace: str,
        checks: Sequence[str] = CHECKS,
        dimensions: int = 384,
        embedding_model: str = "@cf/baai/bge-small-en-v1.5",
        cloudflare_conn_id: str = "cloudflare_default",
        worker_conn_id: str = "prism_worker",
        skip_in_backfill: bool = True,
        **kwargs,
    ):
        super().__init__(**kwargs)
        self.database = database
        self.index = index
        self.namespace = namespace
        self.checks = checks
        self.dimensions = dimensions
        self.embedding_model = embedding_model
        self.cloudflare_conn_id = cloudflare_conn_id
        self.worker_conn_id = worker_conn_id
        self.skip_in_backfill = skip_in_backfill

    def execute(self, context) -> dict[str, Any]:
        unknown = set(self.checks) - set(CHECKS)
        if unknown:
            raise AirflowException(f"unknown checks {sorted(unknown)}; known: {CHECKS}")
        if self.skip_in_backfill and in_backfill(context):
            raise AirflowSkipException("a health check describes the present; skipped inside a backfill")
        self._calls, self._read, self._resolved, self._ti = ApiCalls(), {}, {}, context.get("ti")
        results = {name: self._run(name) for name in self.checks}
        failed = {k: v["detail"] for k, v in results.items() if not v["ok"]}
        for name, res in results.items():
            self.log.info("%-9s %s (%.0f ms) %s", name, "ok" if res["ok"] else "FAILED", res["ms"], res["detail"])
        # Recorded before a failure too: the dashboard shows what failed and when.
        snapshot = health_snapshot(
            results, self._budget(), api_calls=self._calls.count, read=self._read, resolved=self._resolved
        )
        record("health", snapshot, ti=self._ti)
        if failed:
            raise AirflowException("health check failed: " + "; ".join(f"{k}: {v}" for k, v in failed.items()))
        return results

    def _budget(self):
        """The API budget the checks' requests observed (None when no API check ran)."""
        if not set(self.checks) - {"worker"}:
            return None
        try:
            # The Cloudflare hooks pull requests (~35 ms), which the health monitor's DAG file otherwise never
            # imports: each check imports its hook when it runs.
            from airflow_provider_cloudflare.hooks.cloudflare import CloudflareBaseHook

            return CloudflareBaseHook(self.cloudflare_conn_id, priority="monitor").budget
        except Exception:  # noqa: BLE001 - no connection: nothing was observed
            return None

    def _run(self, name: str) -> dict:
        started = time.monotonic()
        try:
            detail = getattr(self, f"_check_{name}")()
            ok = True
        except (CloudflareError, AirflowException, KeyError, ValueError) as exc:
            ok, detail = False, str(exc)
        return {"ok": ok, "detail": detail, "ms": round((time.monotonic() - started) * 1000, 1)}

    def _check_worker(self) -> str:
        health = PrismWorkerHook(self.worker_conn_id).health()
        if health.get("status") != "healthy":
            raise AirflowException(f"Worker unhealthy (HTTP {health['http_status']}): {health.get('checks') or health}")
        return "healthy"

    def _check_d1(self) -> str:
        from airflow_provider_cloudflare.hooks.d1 import D1Hook  # requests: see _budget

        hook = self._calls.watch(D1Hook(self.cloudflare_conn_id, priority="monitor"))
        known, note = self._known_d1(hook.account_id), ""
        uuid = self._resolve_d1(hook, known)
        try:
            probe, tables = hook.query(uuid, (Path(SQL_DIR) / D1_PROBE).read_text())
        except CloudflareNotFound:
            if known is None:
                raise
            # Deleted, or recreated under the same name (a new id): the name decides, so look it up again.
            uuid = self._resolve_d1(hook, None)
            probe, tables = hook.query(uuid, (Path(SQL_DIR) / D1_PROBE).read_text())
            note = f"; database id {known} not found (recreated?), {self.database!r} looked up again: {uuid}"
        if probe["results"] != [{"ok": 1}]:
            raise AirflowException(f"SELECT 1 returned {probe['results']}")
        self._read["d1"] = {
            "name": self.database,
            "file_size": (probe.get("meta") or {}).get("size_after"),
            "num_tables": tables["results"][0]["tables"],
        }
        return "SELECT 1 ok" + note

    def _known_d1(self, account: str) -> str | None:
        """The id this task's last record resolved the configured database name to in this account; None
        when there is none, or it was for another name or account, or is not a uuid (then: list)."""
        known = last_recorded("health", self._ti)
        for key in ("resolved", "d1"):  # a record of another shape is no record
            known = known.get(key) if isinstance(known, dict) else None
        if not isinstance(known, dict) or (known.get("name"), known.get("account")) != (self.database, account):
            return None
        from airflow_provider_cloudflare.operators.d1 import UUID_RE  # requests: see _budget

        uuid = known.get("uuid")  # a uuid is the only shape of recorded id ever put into a request path
        return uuid if isinstance(uuid, str) and UUID_RE.fullmatch(uuid) else None

    def _resolve_d1(self, hook, known: str | None) -> str:
        """`known`, or the id the D1 list gives for the configured name; recorded for the next run even if
        the query then fails (an outage must not cost the next healthy run a list)."""
        self._resolved.pop("d1", None)
        uuid = known or hook.find_database(self.database)
        self._resolved["d1"] = {"name": self.database, "account": hook.account_id, "uuid": uuid}
        return uuid

    def _check_vectorize(self) -> str:
        from airflow_provider_cloudflare.hooks.vectorize import VectorizeHook  # requests: see _budget

        hook = self._calls.watch(VectorizeHook(self.cloudflare_conn_id, priority="monitor"))
        hook.query(self.index, [0.0] * self.dimensions, top_k=1)
        info = hook.info(self.index)
        self._read["vectorize"] = {"vectorCount": info["vectorCount"], "dimensions": info.get("dimensions")}
        return f"query ok, {info['vectorCount']} vectors"

    def _check_kv(self) -> str:
        from airflow_provider_cloudflare.hooks.kv import KVHook  # requests: see _budget

        hook = self._calls.watch(KVHook(self.cloudflare_conn_id, priority="monitor"))
        return f"namespace {hook.find_namespace(self.namespace)} reachable"

    def _check_ai(self) -> str:
        from airflow_provider_cloudflare.hooks.ai import WorkersAIHook  # requests: see _budget

        hook = self._calls.watch(WorkersAIHook(self.cloudflare_conn_id, priority="monitor"))
        vec = next(hook.embed(["health check"], model=self.embedding_model))
        if len(vec) != self.dimensions:
            raise AirflowException(f"embedding has {len(vec)} dimensions, expected {self.dimensions}")
        return "embedding ok"
