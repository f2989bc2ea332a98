"""
### PRISM health monitor (every 5 minutes)

The guide's continuous monitoring: D1 `SELECT 1`, a zero-vector Vectorize query (topK 1), the KV
cache namespace and a Workers AI embedding, each timed (`check_resources`). Any failure fails the run
and alerts (log, plus Slack/e-mail when `prism_slack`/`prism_smtp` exist), with the findings of the
guide's *High Error Rate* investigation attached (recent errors, the Worker's status, dependency
checks, recent deployments).

`usage` runs after the check, failed or not, and gathers what the dashboard shows (the Worker's
`/metrics` for 24 h, the D1 database's size and the Vectorize index as the check read them, the last
24 hours per hour from GraphQL, the API budget) and compares the error rate, p95 and the highest
free-tier share with the thresholds: a crossing alerts with the matching investigation (high error
rate, slow performance, resource exhaustion) and does not fail the run. Both tasks record their
figures for the dashboard, with the Cloudflare API calls the run made: 6 (five for the checks, one
GraphQL); 7 on the first run, which learns the D1 database's id, and 8 on the run after the database
was recreated (its old id answers 404, then a lookup by name). They spend only the monitoring share of
the API budget, so they keep working while backups run. The check alone decides the run's state (`usage` is a teardown without a setup).

A health check describes the present, so runs inside a backfill skip with that reason.

A run that has not succeeded 10 minutes after it was queued (stuck in the queue, or failed) misses its
Deadline Alert: the triggerer alerts on the same channels (`prism.alerts.deadline_missed`).
"""

from datetime import timedelta

from airflow.sdk import AsyncCallback, CronTriggerTimetable, DeadlineAlert, DeadlineReference, task

from prism.alerts import PrismAlertNotifier, deadline_missed
from prism.dag_factory import prism_dag
from prism.monitoring.health import CloudflareHealthCheckOperator
from prism.monitoring.live_usage import live_usage
from prism.settings.config import schedule

with prism_dag(
    "prism_health_monitor",
    schedule=CronTriggerTimetable(schedule("prism_health_monitor", "*/5 * * * *"), timezone="UTC"),
    doc_md=__doc__,
    tags=["monitoring"],
    dagrun_timeout=timedelta(minutes=4),  # a health check that hangs is a failed one
    task_defaults={"retries": 0, "execution_timeout": timedelta(minutes=3)},
    deadline=DeadlineAlert(
        reference=DeadlineReference.DAGRUN_QUEUED_AT,
        interval=timedelta(minutes=10),
        callback=AsyncCallback(deadline_missed),
    ),
) as dag:
    check = CloudflareHealthCheckOperator(
        task_id="check_resources",
        checks=("d1", "vectorize", "kv", "ai"),
        database="{{ prism().cloudflare.d1_database }}",
        index="{{ prism().cloudflare.vectorize_index }}",
        namespace="{{ prism().cloudflare.kv_namespace }}",
        on_failure_callback=PrismAlertNotifier(investigation="high_error_rate"),
    )

    # Live usage for the dashboard, checked against the thresholds, reusing what the check read. A teardown
    # without a setup runs once the check is done, failed too, and leaves the run's state to the check.
    check >> task(live_usage, task_id="usage")(check.task_id).as_teardown()
