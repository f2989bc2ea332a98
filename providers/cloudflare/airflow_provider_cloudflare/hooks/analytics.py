"""Workers deployments and versions, and the GraphQL Analytics API (Worker traffic, D1, Workers AI, KV).

GraphQL answers `errors` with HTTP 200; those are failures here. Every query takes an explicit
time window, so reports are computed for a run's data interval, never for "now".
"""

from __future__ import annotations

from datetime import datetime, timezone
from typing import Any
from urllib.parse import quote

from airflow_provider_cloudflare.errors import GraphQLError
from airflow_provider_cloudflare.hooks.cloudflare import CloudflareBaseHook

WORKER_TRAFFIC = """
query($account: string!, $script: string!, $start: Time!, $end: Time!) {
  viewer { accounts(filter: {accountTag: $account}) {
    workersInvocationsAdaptive(limit: 10000, filter: {scriptName: $script, datetime_geq: $start, datetime_lt: $end}) {
      sum { requests errors subrequests wallTime }
      quantiles { wallTimeP50 wallTimeP95 wallTimeP99 }
      dimensions { status }
    } } } }"""

# Requests, errors and p95 per time bucket: DIM is datetimeHour (per hour) or date (per UTC day).
_WORKER_SERIES = """
query($account: string!, $script: string!, $start: Time!, $end: Time!) {
  viewer { accounts(filter: {accountTag: $account}) {
    workersInvocationsAdaptive(limit: 10000, filter: {scriptName: $script, datetime_geq: $start, datetime_lt: $end},
                               orderBy: [DIM_ASC]) {
      sum { requests errors }
      quantiles { wallTimeP95 }
      dimensions { DIM }
    } } } }"""
WORKER_HOURLY = _WORKER_SERIES.replace("DIM", "datetimeHour")
WORKER_DAILY = _WORKER_SERIES.replace("DIM", "date")

USAGE = """
query($account: string!, $db: string!, $start: Time!, $end: Time!) {
  viewer { accounts(filter: {accountTag: $account}) {
    d1AnalyticsAdaptiveGroups(limit: 10000, filter: {databaseId: $db, datetimeHour_geq: $start, datetimeHour_lt: $end}) {
      sum { readQueries writeQueries rowsRead rowsWritten }
    }
    aiInferenceAdaptiveGroups(limit: 10000, filter: {datetime_geq: $start, datetime_lt: $end}) {
      count sum { totalNeurons }
    }
    kvOperationsAdaptiveGroups(limit: 10000, filter: {datetime_geq: $start, datetime_lt: $end}) {
      sum { requests } dimensions { actionType }
    } } } }"""


def _iso(value: datetime) -> str:
    return value.astimezone(timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")


class WorkersAnalyticsHook(CloudflareBaseHook):
    """Deployments, versions and GraphQL analytics for a Worker and the account's D1, Vectorize and KV."""

    hook_name = "Cloudflare Workers analytics"

    # ---- deployments and versions ---------------------------------------------------------
    def deployments(self, script: str) -> list[dict]:
        """Newest first. (The SDK's deployments.list reads the wrong field; the REST shape is {deployments: [...]}.)"""
        return self.get(self.account_path(f"/workers/scripts/{quote(script, safe='')}/deployments"))["deployments"]

    def versions(self, script: str) -> list[dict]:
        return list(self._versions(script))

    def _versions(self, script: str):
        page = 1
        while True:
            body = self.request(
                "GET",
                self.account_path(f"/workers/scripts/{quote(script, safe='')}/versions"),
                idempotent=True,
                params={"page": page, "per_page": 50},
            ).json()
            items = body["result"]["items"]
            yield from items
            if len(items) < 50:
                return
            page += 1

    # ---- GraphQL --------------------------------------------------------------------------
    def graphql(self, query: str, variables: dict[str, Any]) -> dict:
        body = self.request(
            "POST", "/graphql", idempotent=True, json_body={"query": query, "variables": variables}, expect_json=False
        ).json()
        if body.get("errors"):
            raise GraphQLError("; ".join(e.get("message", "?") for e in body["errors"]), method="POST", path="/graphql")
        return body["data"]

    def _account(self, query: str, variables: dict) -> dict:
        return self.graphql(query, {"account": self.account_id, **variables})["viewer"]["accounts"][0]

    def worker_traffic(self, script: str, start: datetime, end: datetime) -> dict:
        """Totals for [start, end): requests, errors, error rate, per-status counts, wall-time quantiles (ms)."""
        groups = self._account(WORKER_TRAFFIC, {"script": script, "start": _iso(start), "end": _iso(end)})[
            "workersInvocationsAdaptive"
        ]
        requests_ = sum(g["sum"]["requests"] for g in groups)
        errors = sum(g["sum"]["errors"] for g in groups)
        overall = max(groups, key=lambda g: g["sum"]["requests"], default=None)
        ok_group = next((g for g in groups if g["dimensions"]["status"] == "success"), overall)
        quantiles = (ok_group or {}).get("quantiles") or {}
        return {
            "window": {"start": _iso(start), "end": _iso(end)},
            "requests": requests_,
            "errors": errors,
            "error_rate_percent": round(100 * errors / requests_, 4) if requests_ else 0.0,
            "status": {g["dimensions"]["status"]: g["sum"]["requests"] for g in groups},
            "wall_time_ms": {k.replace("wallTime", "").lower(): round(v / 1000, 1) for k, v in quantiles.items()},
            "subrequests": sum(g["sum"]["subrequests"] for g in groups),
        }

    def worker_hourly(self, script: str, start: datetime, end: datetime) -> list[dict]:
        groups = self._account(WORKER_HOURLY, {"script": script, "start": _iso(start), "end": _iso(end)})[
            "workersInvocationsAdaptive"
        ]
        return [
            {
                "hour": g["dimensions"]["datetimeHour"],
                "requests": g["sum"]["requests"],
                "errors": g["sum"]["errors"],
                "p95_ms": round(g["quantiles"]["wallTimeP95"] / 1000, 1),
            }
            for g in groups
        ]

    def worker_daily(self, script: str, start: datetime, end: datetime) -> list[dict]:
        """Per UTC day of [start, end): requests, errors and wall-time p95 (ms)."""
        groups = self._account(WORKER_DAILY, {"script": script, "start": _iso(start), "end": _iso(end)})[
            "workersInvocationsAdaptive"
        ]
        return [
            {
                "date": g["dimensions"]["date"],
                "requests": g["sum"]["requests"],
                "errors": g["sum"]["errors"],
                "p95_ms": round(g["quantiles"]["wallTimeP95"] / 1000, 1),
            }
            for g in groups
        ]

    def usage(self, database_id: str, start: datetime, end: datetime) -> dict:
        """D1 reads and writes, Workers AI neurons and KV operations for [start, end)."""
        acct = self._account(USAGE, {"db": database_id, "start": _iso(start), "end": _iso(end)})
        d1 = acct["d1AnalyticsAdaptiveGroups"]
        ai = acct["aiInferenceAdaptiveGroups"]
        return {
            "window": {"start": _iso(start), "end": _iso(end)},
            "d1": {k: sum(g["sum"][k] for g in d1) for k in ("readQueries", "writeQueries", "rowsRead", "rowsWritten")},
            "ai": {"requests": sum(g["count"] for g in ai), "neurons": sum(g["sum"]["totalNeurons"] for g in ai)},
            "kv": {g["dimensions"]["actionType"]: g["sum"]["requests"] for g in acct["kvOperationsAdaptiveGroups"]},
        }
