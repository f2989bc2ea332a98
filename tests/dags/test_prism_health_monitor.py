"""prism_health_monitor runs end to end against localflare, alerts when a resource is down, and carries a Deadline Alert."""

from __future__ import annotations

from pathlib import Path

import pytest
from dagtest import states, xcom

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
    forget_earlier_checks()
    Api(server).delete(f"/accounts/{{acct}}/vectorize/v2/indexes/{server.index_name}").raise_for_status()
    run = dag.test()
    assert run.state == "failed"
    assert len(alerts) == 1
    assert "prism_health_monitor.check_resources failed" in alerts[0] and "vectorize" in alerts[0]
    # usage ran after the failed check all the same, with what the check could read and its calls.
    assert states(run) == {"check_resources": "failed", "usage": "success"}
    usage = xcom(run, "usage", key="prism_dashboard_usage")
    assert usage["unavailable"]["vectorize"].startswith("not read by the health check: ")
    assert usage["d1"]["file_size"] > 0
    # D1 list and query, the failed Vectorize query (no info), KV, AI: a first run.
    assert usage["api_budget"]["calls_by_task"] == {"check_resources": 5, "usage": 1}


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


D1_LIST = "GET /accounts/{account_id}/d1/database"
D1_QUERY = "POST /accounts/{account_id}/d1/database/{database_id}/query"
STEADY = {
    D1_QUERY: 1,
    "POST /accounts/{account_id}/vectorize/v2/indexes/{index_name}/query": 1,
    "GET /accounts/{account_id}/vectorize/v2/indexes/{index_name}/info": 1,
    "GET /accounts/{account_id}/storage/kv/namespaces": 1,
    "POST /accounts/{account_id}/ai/run/{model_name:path}": 1,
    "POST /graphql": 1,
}


def forget_earlier_checks() -> None:
    """No earlier health record of the monitor's check in the metadata DB: the next run is its first."""
    from airflow.models.xcom import XComModel
    from airflow.utils.session import create_session
    from sqlalchemy import delete

    with create_session() as session:
        session.execute(
            delete(XComModel).where(
                XComModel.dag_id == "prism_health_monitor",
                XComModel.task_id == "check_resources",
                XComModel.key == "prism_dashboard_health",
            )
        )


def counted_run(server, dag):
    """One dag.test() run with localflare's counters reset first: (run, routes asked, requests answered)."""
    server.admin("DELETE", "counters")
    run = dag.test()
    counters = server.counters()
    routes = {k.removeprefix("route:"): n for k, n in counters.items() if k.startswith("route:")}
    return run, routes, counters.get("requests", 0)


def test_the_first_run_learns_the_d1_id_and_every_later_run_makes_six_calls(lf_fresh, connect, airflow_db, dag, alerts):
    """Issue 13: at most 6 Cloudflare API calls a run, measured by the tasks themselves (the check's count plus
    usage's own), equal to what localflare answered and shown on the API budget panel. The first run lists
    the D1 databases once to learn the id of the configured one; the next run queries that id directly."""
    server = lf_fresh()
    connect(server, budget={"bulk_rps": 0})
    forget_earlier_checks()

    first, routes, answered = counted_run(server, dag)
    assert first.state == "success" and alerts == []
    assert routes == {D1_LIST: 1, **STEADY}  # every endpoint once
    budget = xcom(first, "usage", key="prism_dashboard_usage")["api_budget"]
    assert budget["calls_this_run"] == answered == 7
    assert budget["calls_by_task"] == {"check_resources": 6, "usage": 1}
    health = xcom(first, "check_resources", key="prism_dashboard_health")
    assert health["resolved"]["d1"] == {"name": "claudes-friend-db", "account": server.account_id, "uuid": server.d1_id}

    second, routes, answered = counted_run(server, dag)
    assert second.state == "success" and alerts == []
    assert routes == STEADY and D1_LIST not in routes
    budget = xcom(second, "usage", key="prism_dashboard_usage")["api_budget"]
    assert budget["calls_this_run"] == answered == 6
    assert budget["calls_by_task"] == {"check_resources": 5, "usage": 1}
    health = xcom(second, "check_resources", key="prism_dashboard_health")
    assert health["checks"]["d1"]["detail"] == "SELECT 1 ok" and health["resolved"]["d1"]["uuid"] == server.d1_id
    # The D1 figures usage shows still come from the check's query.
    assert xcom(second, "usage", key="prism_dashboard_usage")["d1"]["num_tables"] == health["read"]["d1"]["num_tables"]


def test_a_database_recreated_under_the_same_name_is_looked_up_again(lf_fresh, connect, airflow_db, dag, alerts):
    """The learnt id answers 404 once the database is deleted and created again: that run lists once, queries
    the new id, stays healthy and says so; the run after it is back to 6 calls."""
    from localflare.testing import Api

    server = lf_fresh()
    connect(server, budget={"bulk_rps": 0})
    forget_earlier_checks()
    assert dag.test().state == "success"
    api = Api(server)
    api.delete(f"/accounts/{{acct}}/d1/database/{server.d1_id}").raise_for_status()
    created = api.post("/accounts/{acct}/d1/database", json={"name": "claudes-friend-db"})
    new_id = created.json()["result"]["uuid"]
    assert new_id != server.d1_id

    run, routes, answered = counted_run(server, dag)
    assert run.state == "success" and alerts == []
    assert routes == {**STEADY, D1_LIST: 1, D1_QUERY: 2}  # the old id's 404, the lookup, the new id's query
    health = xcom(run, "check_resources", key="prism_dashboard_health")
    assert health["checks"]["d1"]["detail"] == (
        f"SELECT 1 ok; database id {server.d1_id} not found (recreated?), 'claudes-friend-db' looked up again: {new_id}"
    )
    assert health["resolved"]["d1"]["uuid"] == new_id and health["read"]["d1"]["num_tables"] == 0  # the new, empty one
    assert xcom(run, "usage", key="prism_dashboard_usage")["api_budget"]["calls_this_run"] == answered == 8

    after, routes, answered = counted_run(server, dag)
    assert after.state == "success" and routes == STEADY and answered == 6


def test_a_renamed_database_in_the_config_is_looked_up_not_taken_from_the_last_run(
    lf_fresh, connect, configure, airflow_db, dag, alerts
):
    """The config's name is the source of truth: an id learnt for another name is not used, even though it
    still answers (the old database exists)."""
    from localflare.testing import Api

    server = lf_fresh()
    connect(server, budget={"bulk_rps": 0})
    forget_earlier_checks()
    assert dag.test().state == "success"  # learns the id of claudes-friend-db
    renamed = Api(server).post("/accounts/{acct}/d1/database", json={"name": "prism-renamed"}).json()["result"]["uuid"]
    configure({"cloudflare": {"d1_database": "prism-renamed"}})

    run, routes, answered = counted_run(server, dag)
    assert run.state == "success" and alerts == []
    assert routes == {D1_LIST: 1, **STEADY} and answered == 7
    health = xcom(run, "check_resources", key="prism_dashboard_health")
    assert health["resolved"]["d1"] == {"name": "prism-renamed", "account": server.account_id, "uuid": renamed}
    assert health["read"]["d1"] == {
        "name": "prism-renamed",
        "file_size": health["read"]["d1"]["file_size"],
        "num_tables": 0,
    }
    assert counted_run(server, dag)[1] == STEADY  # and then remembered for the new name


def test_a_hostile_database_name_in_the_config_is_refused_before_any_d1_call(
    lf_fresh, connect, configure, airflow_db, dag, alerts
):
    """A name that would change the request path never reaches a request, a learnt id or not: the config
    check refuses it, naming the field, and the check fails on that."""
    server = lf_fresh()
    connect(server, budget={"bulk_rps": 0})
    forget_earlier_checks()
    assert dag.test().state == "success"
    configure({"cloudflare": {"d1_database": "../accounts/<script>"}})
    run, routes, answered = counted_run(server, dag)
    assert run.state == "failed" and states(run)["check_resources"] == "failed"
    assert routes == {} and answered == 0  # usage reads the same config: nothing asked at all
    assert "cloudflare.d1_database: '../accounts/&lt;script&gt;' does not match" in alerts[0]


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
