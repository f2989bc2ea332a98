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
