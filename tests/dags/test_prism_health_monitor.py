"""prism_health_monitor runs end to end against localflare, and alerts when a resource is down."""

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
