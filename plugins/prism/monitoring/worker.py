"""PRISM's own Worker: `GET /health` and `GET /metrics`, through the http connection `prism_worker`."""

from __future__ import annotations

from functools import cached_property

from airflow.sdk import BaseHook

from airflow_provider_cloudflare.errors import CloudflareError


class PrismWorkerHook(BaseHook):
    """Reads PRISM's Worker endpoints. The connection's host is the Worker's base URL.

    :param http_conn_id: an ``http`` connection (default ``prism_worker``).
    :param timeout: seconds for connect and read; a health check must answer quickly.
    """

    conn_name_attr = "http_conn_id"
    default_conn_name = "prism_worker"
    conn_type = "http"
    hook_name = "PRISM Worker"

    def __init__(self, http_conn_id: str = default_conn_name, timeout: float = 10.0, **kwargs):
        super().__init__(**kwargs)
        self.http_conn_id = http_conn_id
        self.timeout = timeout

    @cached_property
    def _http(self):
        # Imported when a request is made: the http provider's hook pulls aiohttp, ~0.16 s more DAG parsing.
        from airflow.providers.http.hooks.http import HttpHook

        return HttpHook(method="GET", http_conn_id=self.http_conn_id)

    def _get(self, endpoint: str, params: dict | None = None):
        try:
            return self._http.run(
                endpoint, data=params, extra_options={"check_response": False, "timeout": self.timeout}
            )
        except Exception as exc:  # noqa: BLE001 - any transport failure is an unreachable Worker
            raise CloudflareError(f"PRISM Worker unreachable at {endpoint}: {type(exc).__name__}: {exc}") from None

    def health(self) -> dict:
        """{http_status, status, checks, ...}; status is 'healthy' only when the Worker says so."""
        resp = self._get("/health")
        try:
            body = resp.json()
        except ValueError:
            body = {"status": "unparseable", "body": resp.text[:200]}
        return {"http_status": resp.status_code, **body}

    def metrics(self, period: str = "24h") -> dict:
        resp = self._get("/metrics", {"period": period})
        if resp.status_code != 200:
            raise CloudflareError(
                f"PRISM Worker /metrics answered HTTP {resp.status_code}: {resp.text[:200]}", status=resp.status_code
            )
        return resp.json()
