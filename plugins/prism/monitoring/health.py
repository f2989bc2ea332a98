"""PRISM's health check. A failed check fails the task, with every finding in the message."""

from __future__ import annotations

import time
from collections.abc import Sequence
from typing import Any

from airflow.sdk import BaseOperator
from airflow.sdk.exceptions import AirflowException, AirflowSkipException

from airflow_provider_cloudflare.errors import CloudflareError
from prism.monitoring.dashboard_records import health_snapshot, record
from prism.monitoring.worker import PrismWorkerHook
from prism.runtime import in_backfill

CHECKS = ("worker", "d1", "vectorize", "kv", "ai")


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
        results = {name: self._run(name) for name in self.checks}
        failed = {k: v["detail"] for k, v in results.items() if not v["ok"]}
        for name, res in results.items():
            self.log.info("%-9s %s (%.0f ms) %s", name, "ok" if res["ok"] else "FAILED", res["ms"], res["detail"])
        # Recorded before a failure too: the dashboard shows what failed and when.
        record("health", health_snapshot(results, self._budget()), ti=context.get("ti"))
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

        hook = D1Hook(self.cloudflare_conn_id, priority="monitor")
        rows = hook.rows(hook.find_database(self.database), "SELECT 1 AS ok")
        if rows != [{"ok": 1}]:
            raise AirflowException(f"SELECT 1 returned {rows}")
        return "SELECT 1 ok"

    def _check_vectorize(self) -> str:
        from airflow_provider_cloudflare.hooks.vectorize import VectorizeHook  # requests: see _budget

        hook = VectorizeHook(self.cloudflare_conn_id, priority="monitor")
        hook.query(self.index, [0.0] * self.dimensions, top_k=1)
        return f"query ok, {hook.info(self.index)['vectorCount']} vectors"

    def _check_kv(self) -> str:
        from airflow_provider_cloudflare.hooks.kv import KVHook  # requests: see _budget

        hook = KVHook(self.cloudflare_conn_id, priority="monitor")
        return f"namespace {hook.find_namespace(self.namespace)} reachable"

    def _check_ai(self) -> str:
        from airflow_provider_cloudflare.hooks.ai import WorkersAIHook  # requests: see _budget

        vec = next(
            WorkersAIHook(self.cloudflare_conn_id, priority="monitor").embed(
                ["health check"], model=self.embedding_model
            )
        )
        if len(vec) != self.dimensions:
            raise AirflowException(f"embedding has {len(vec)} dimensions, expected {self.dimensions}")
        return "embedding ok"
