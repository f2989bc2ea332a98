"""
### PRISM health monitor (every 5 minutes)

The guide's continuous monitoring: D1 `SELECT 1`, a zero-vector Vectorize query (topK 1), the KV
cache namespace and a Workers AI embedding, each timed. Any failure fails the run and alerts
(log, plus Slack/e-mail when `prism_slack`/`prism_smtp` exist). It spends only the monitoring share
of the API budget, so it keeps working while backups run.

A health check describes the present, so runs inside a backfill skip with that reason.
"""

from datetime import timedelta

from airflow.sdk import CronTriggerTimetable

from prism_cloudflare.config import schedule
from prism_cloudflare.dags import prism_dag
from prism_cloudflare.operators.checks import CloudflareHealthCheckOperator

with prism_dag(
    "prism_health_monitor",
    schedule=CronTriggerTimetable(schedule("prism_health_monitor", "*/5 * * * *"), timezone="UTC"),
    doc_md=__doc__,
    tags=["monitoring"],
    dagrun_timeout=timedelta(minutes=4),  # a health check that hangs is a failed one
    task_defaults={"retries": 0, "execution_timeout": timedelta(minutes=3)},
) as dag:
    CloudflareHealthCheckOperator(
        task_id="check_resources",
        checks=("d1", "vectorize", "kv", "ai"),
        database="{{ prism().cloudflare.d1_database }}",
        index="{{ prism().cloudflare.vectorize_index }}",
        namespace="{{ prism().cloudflare.kv_namespace }}",
    )
