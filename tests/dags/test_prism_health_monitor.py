"""prism_health_monitor runs end to end against localflare, alerts when a resource is down, and carries a Deadline Alert."""

from __future__ import annotations

from pathlib import Path

import pytest

DAGS = Path(__file__).resolve().parents[2] / "dags"


@pytest.fixture(scope="module")
def dag():
    from airflow.dag_processing.dagbag import DagBag

    return DagBag(dag_folder=str(DAGS / "prism_health_monitor.py")).get_dag("prism_health_monitor")


def test_all_resources_healthy(cf, airflow_db, dag):
    run = dag.test()
    assert run.state == "success"


def test_a_missing_index_fails_the_run_and_alerts(lf_fresh, connect, airflow_db, dag, alerts):
    from localflare.testing import Api

    server = lf_fresh()
    connect(server, budget={"bulk_rps": 0})
    Api(server).delete(f"/accounts/{{acct}}/vectorize/v2/indexes/{server.index_name}").raise_for_status()
    run = dag.test()
    assert run.state == "failed"
    assert len(alerts) == 1
    assert "prism_health_monitor.check_resources failed" in alerts[0] and "vectorize" in alerts[0]


def test_no_alert_when_healthy(cf, airflow_db, dag, alerts):
    assert dag.test().state == "success"
    assert alerts == []


def test_usage_is_recorded_for_the_dashboard(cf, airflow_db, dag, alerts):
    import sys

    sys.path.insert(0, str(Path(__file__).resolve().parent))
    from dagtest import xcom

    from airflow_provider_cloudflare.hooks.d1 import D1Hook
    from prism.monitoring.worker import PrismWorkerHook

    run = dag.test()
    assert run.state == "success" and alerts == []
    health = xcom(run, "check_resources", key="prism_dashboard_health")
    assert health["ok"] is True and set(health["checks"]) == {"d1", "vectorize", "kv", "ai"}
    assert health["api_budget"]["limit"] == 1200 and 0 < health["api_budget"]["used"] < 1200
    usage = xcom(run, "usage", key="prism_dashboard_usage")
    metrics = PrismWorkerHook().metrics("24h")
    assert (
        usage["requests"]["total"] == metrics["requests"]["total"]
        and usage["cache"]["entries"] == metrics["cache"]["entries"]
    )
    d1 = D1Hook()
    assert usage["d1"]["file_size"] == d1.get_database(cf.d1_id)["file_size"]
    assert {r["name"] for r in usage["limits"]} >= {
        "ai_neurons",
        "d1_rows_read",
        "d1_database_bytes",
        "kv_reads",
        "vectorize_stored_dimensions",
        "vectorize_queried_dimensions",
    }
    assert len(usage["hourly"]) in (23, 24) and not any(c["crossed"] for c in usage["checks"])


def test_an_incident_alerts_with_the_diagnosis(lf_fresh, connect, airflow_db, dag, alerts):
    """A localflare fault raises the Worker's error rate: the monitor's usage check crosses the
    threshold and its alert carries the high-error-rate investigation's findings."""
    import sys

    sys.path.insert(0, str(Path(__file__).resolve().parent))
    from dagtest import xcom

    from prism.monitoring.worker import PrismWorkerHook

    server = lf_fresh("--faults", "error_rate:rate=0.3")
    connect(server, budget={"bulk_rps": 0})
    run = dag.test()
    assert run.state == "success"  # a crossed threshold alerts, it does not fail the run
    rate = PrismWorkerHook().metrics("24h")["requests"]["error_rate"]
    assert 29 < rate < 31
    (alert,) = alerts
    assert alert.startswith(f"[PRISM WARNING] Health monitor: error rate (%) is {rate} (threshold 0.5)")
    assert "Diagnosis: high error rate (guide: Troubleshooting, Issue 1: High Error Rate)" in alert
    for finding in (
        "[!!] Recent errors (GraphQL Analytics)",
        "errors by outcome: exceededResources",
        "[ok] Worker status",
        "/health: healthy (HTTP 200)",
        "[ok] Dependency checks",
        "D1 SELECT 1: ok",
        "Recent deployments",
        "by devops@prism.example",
        "Resolution (guide): check for recent deployments",
    ):
        assert finding in alert, finding
    assert server.token not in alert
    # The dashboard shows the alert with its diagnosis.
    (recorded,) = xcom(run, "usage", key="prism_dashboard_alert")
    assert recorded["investigations"] == ["high_error_rate"] and "Diagnosis: high error rate" in recorded["body"]
    assert [c["metric"] for c in xcom(run, "usage", key="prism_dashboard_usage")["checks"] if c["crossed"]] == [
        "error rate (%)"
    ]


def test_a_run_that_has_not_succeeded_ten_minutes_after_it_was_queued_alerts(airflow_db, dag):
    """The DAG's Deadline Alert: measured from when the run was queued, run by the triggerer (async), and
    the callback is importable there from plugins/ (sending is tested in tests/plugins/prism/test_alerts.py)."""
    import importlib
    from datetime import timedelta

    from airflow.sdk import AsyncCallback, DeadlineReference

    from prism.alerts import deadline_missed

    (deadline,) = dag.deadline  # DAG keeps its deadlines as a list
    assert deadline.reference == DeadlineReference.DAGRUN_QUEUED_AT
    assert deadline.interval == timedelta(minutes=10)
    assert isinstance(deadline.callback, AsyncCallback) and deadline.callback.path == "prism.alerts.deadline_missed"
    module, _, name = deadline.callback.path.rpartition(".")
    assert getattr(importlib.import_module(module), name) is deadline_missed


def test_the_scheduler_reads_the_deadline_and_a_test_run_still_succeeds(cf, airflow_db, dag):
    """dag.test() writes the bundle's DAGs to the metadata DB as the DAG processor does: the deadline the
    scheduler reads is there. The test run itself succeeds (PrismDAG.test: apache/airflow#73428)."""
    from airflow.models.deadline_alert import DeadlineAlert
    from airflow.models.serialized_dag import SerializedDagModel
    from airflow.utils.session import create_session
    from sqlalchemy import select

    assert dag.test().state == "success"
    assert len(dag.deadline) == 1  # the test run leaves the DAG's deadline in place
    with create_session() as session:
        serialized = SerializedDagModel.get("prism_health_monitor", session=session)
        (row,) = session.scalars(select(DeadlineAlert).where(DeadlineAlert.serialized_dag_id == serialized.id))
        assert row.reference["reference_type"] == "DagRunQueuedAtDeadline"
        assert row.interval["__data__"] == 600
        assert "prism.alerts.deadline_missed" in str(row.callback_def)
