"""prism_health_monitor's `usage` task: PRISM's usage as it is now (usage.usage_snapshot), recorded for the
dashboard and checked against the thresholds. A crossing alerts with the findings of the investigation it
calls for and does not fail the task. Point-in-time, so it skips inside a backfill.

It runs after the run's health check and records the REST calls the run made: the check's count (its
`health` record) plus its own, in `api_budget.calls_this_run` (by task in `calls_by_task`). The calls of an
investigation, made only when an alert goes out, come after the record and are not in it."""

from __future__ import annotations

from datetime import datetime, timezone

from airflow.sdk.exceptions import AirflowSkipException

from prism.alerts import alert
from prism.monitoring.api_calls import ApiCalls
from prism.monitoring.dashboard_records import record, recorded, run_budget
from prism.monitoring.usage import threshold_checks, usage_snapshot
from prism.runtime import capture_labels, in_backfill
from prism.settings.config import runtime_config


def alert_crossings(snapshot: dict) -> list[dict]:
    """One warning per crossed threshold in `snapshot["checks"]`, with its investigation's findings; the
    crossed checks."""
    crossed = [check for check in snapshot["checks"] if check["crossed"]]
    for check in crossed:
        alert(
            f"Health monitor: {check['metric']} is {check['value']} (threshold {check['threshold']})"
            + (f": {check['resource']}" if check.get("resource") else ""),
            f"the Worker's /metrics over {snapshot['window']['start']} to {snapshot['window']['end']}",
            "warning",
            [check["investigation"]],
        )
    return crossed


def live_usage(checked_by: str, **context) -> dict:
    """Read the usage snapshot, label it with the run's logical date and the capture time, check it
    against the thresholds, record it for the dashboard and alert on each crossing. `checked_by`: the
    task id of the run's health check, which ran before and whose reads and call count this reuses.
    Returns the requests, performance and checks with the capture time."""
    if in_backfill(context):
        raise AirflowSkipException("usage describes the present; skipped inside a backfill")
    config, ti = runtime_config(), context["ti"]
    checked, calls = recorded("health", checked_by, ti) or {}, ApiCalls()
    now = datetime.now(timezone.utc)
    snapshot = {**usage_snapshot(config["cloudflare"], now, checked, calls), **capture_labels(context)}
    # The check's observation when GraphQL's answer carried no x-ratelimit headers.
    observed = snapshot["api_budget"] or checked.get("api_budget")
    snapshot["api_budget"] = run_budget(observed, {checked_by: checked.get("api_calls"), ti.task_id: calls.count})
    snapshot["checks"] = threshold_checks(snapshot, config["thresholds"])
    record("usage", snapshot)
    alert_crossings(snapshot)
    return {k: snapshot[k] for k in ("requests", "performance", "checks", "captured_at")}
