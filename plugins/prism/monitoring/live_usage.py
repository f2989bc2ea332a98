"""prism_health_monitor's `usage` task: PRISM's usage as it is now (usage.usage_snapshot), recorded for the
dashboard and checked against the thresholds. A crossing alerts with the findings of the investigation it
calls for and does not fail the task. Point-in-time, so it skips inside a backfill."""

from __future__ import annotations

from datetime import datetime, timezone

from airflow.sdk.exceptions import AirflowSkipException

from prism.alerts import alert
from prism.monitoring.dashboard_records import record
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


def live_usage(**context) -> dict:
    """Read the usage snapshot, label it with the run's logical date and the capture time, check it
    against the thresholds, record it for the dashboard and alert on each crossing. Returns the
    requests, performance and checks with the capture time."""
    if in_backfill(context):
        raise AirflowSkipException("usage describes the present; skipped inside a backfill")
    config = runtime_config()
    snapshot = {**usage_snapshot(config["cloudflare"], datetime.now(timezone.utc)), **capture_labels(context)}
    snapshot["checks"] = threshold_checks(snapshot, config["thresholds"])
    record("usage", snapshot)
    alert_crossings(snapshot)
    return {k: snapshot[k] for k in ("requests", "performance", "checks", "captured_at")}
