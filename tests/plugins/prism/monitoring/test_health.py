"""Health and threshold checks: real checks against localflare, failures with every finding named,
skips inside backfills, and thresholds from templated values."""

from __future__ import annotations

from datetime import datetime, timezone
from types import SimpleNamespace

import pytest
import structlog
from airflow.sdk.exceptions import AirflowException, AirflowSkipException
from airflow.utils.types import DagRunType

from airflow_provider_cloudflare.hooks.kv import KVHook
from prism.monitoring.health import CHECKS, CloudflareHealthCheckOperator, in_backfill

DEMO = {"database": "claudes-friend-db", "index": "claudes-companion", "namespace": "prism-cache"}
# Connections that do not exist: a check that sent any request would fail on them instead.
NOWHERE = {"cloudflare_conn_id": "no_such_connection", "worker_conn_id": "no_such_worker"}


# ---- health check ----------------------------------------------------------------------------


def test_all_five_checks_pass_on_the_demo(cf):
    op = CloudflareHealthCheckOperator(task_id="health", **DEMO)
    with structlog.testing.capture_logs() as logs:
        result = op.execute({})

    assert list(result) == list(CHECKS) == ["worker", "d1", "vectorize", "kv", "ai"]
    assert all(r["ok"] and r["ms"] >= 0 for r in result.values())
    assert result["worker"]["detail"] == "healthy"  # through the prism_worker http connection
    assert result["d1"]["detail"] == "SELECT 1 ok"
    assert result["vectorize"]["detail"] == "query ok, 615 vectors"
    assert result["kv"]["detail"] == f"namespace {KVHook().find_namespace('prism-cache')} reachable"
    assert result["ai"]["detail"] == "embedding ok"
    assert sum(" ok (" in e["event"] for e in logs) == 5  # one log line per check


def test_every_failed_check_is_named_in_the_message(lf_fresh, connect):
    # Two things wrong at once: the Worker reports unhealthy and the index does not exist.
    server = lf_fresh("--faults", "worker_unhealthy")
    connect(server, budget={"bulk_rps": 0})
    op = CloudflareHealthCheckOperator(task_id="health", **{**DEMO, "index": "no-such-index"})
    with structlog.testing.capture_logs() as logs, pytest.raises(AirflowException) as exc:
        op.execute({})

    message = str(exc.value)
    assert message.startswith("health check failed: ")
    assert "worker: Worker unhealthy (HTTP 503)" in message and "injected fault worker_unhealthy" in message
    assert "vectorize: " in message and "no-such-index" in message
    assert not any(f"{name}: " in message for name in ("d1", "kv", "ai"))  # those passed
    # The other checks still ran and were logged, failed or not.
    logged = {e["event"].split()[0]: e["event"] for e in logs if e["event"].split()[0] in CHECKS}
    assert set(logged) == set(CHECKS)
    assert "FAILED" in logged["worker"] and "FAILED" in logged["vectorize"] and " ok (" in logged["d1"]


def test_a_subset_of_checks_runs_only_those(cf):
    result = CloudflareHealthCheckOperator(task_id="health", checks=("d1", "kv"), **DEMO).execute({})
    assert set(result) == {"d1", "kv"} and all(r["ok"] for r in result.values())


def test_an_unknown_check_fails_before_any_request():
    op = CloudflareHealthCheckOperator(task_id="health", checks=("d1", "r2", "queues"), **DEMO, **NOWHERE)
    with pytest.raises(AirflowException, match=r"unknown checks \['queues', 'r2'\]; known: \('worker', 'd1'"):
        op.execute({})


@pytest.mark.parametrize("run_type", ["backfill", DagRunType.BACKFILL_JOB])
def test_inside_a_backfill_the_check_skips_with_a_reason(run_type):
    context = {"dag_run": SimpleNamespace(run_type=run_type)}
    assert in_backfill(context)
    op = CloudflareHealthCheckOperator(task_id="health", **DEMO, **NOWHERE)
    with pytest.raises(AirflowSkipException, match="describes the present; skipped inside a backfill"):
        op.execute(context)


@pytest.mark.parametrize("run_type", [DagRunType.SCHEDULED, DagRunType.MANUAL])
def test_outside_a_backfill_the_check_runs(cf, run_type):
    context = {"dag_run": SimpleNamespace(run_type=run_type)}
    assert not in_backfill(context) and not in_backfill({})
    assert CloudflareHealthCheckOperator(task_id="health", checks=("d1",), **DEMO).execute(context)["d1"]["ok"]


def test_skip_in_backfill_can_be_turned_off(cf):
    context = {"dag_run": SimpleNamespace(run_type="backfill")}
    op = CloudflareHealthCheckOperator(task_id="health", checks=("d1",), skip_in_backfill=False, **DEMO)
    assert op.execute(context)["d1"]["ok"]


class RecordingTI:
    """The task instance of one run of `check_resources`: what it pushes, and xcom_pull of the latest record
    of earlier runs (include_prior_dates, one map index), as Airflow's metadata DB answers it. The real
    pull is exercised by tests/dags/test_prism_health_monitor.py."""

    task_id, map_index = "check_resources", -1

    def __init__(self, earlier: dict | None = None):
        self.earlier, self.pushed = earlier or {}, {}

    def xcom_push(self, key, value):
        self.pushed[key] = value

    def xcom_pull(self, task_ids, key, include_prior_dates=False, map_indexes=None):
        assert (task_ids, include_prior_dates, map_indexes) == (self.task_id, True, self.map_index)
        return self.pushed.get(key, self.earlier.get(key))

    def next_run(self) -> RecordingTI:
        return RecordingTI({**self.earlier, **self.pushed})


D1_LIST = "GET /accounts/{account_id}/d1/database"
D1_QUERY = "POST /accounts/{account_id}/d1/database/{database_id}/query"


def checked(server, ti, **kwargs) -> tuple[dict, dict]:
    """One run of the D1 check with localflare's counters reset first: (its health record, routes asked)."""
    server.admin("DELETE", "counters")
    op = CloudflareHealthCheckOperator(task_id="check_resources", checks=("d1",), **{**DEMO, **kwargs})
    try:
        op.execute({"ti": ti})
    except AirflowException:
        pass  # the record says what failed
    counters = server.counters()
    return ti.pushed["prism_dashboard_health"], {
        k.removeprefix("route:"): n for k, n in counters.items() if k.startswith("route:")
    }


def test_the_record_carries_the_calls_sent_and_what_they_read(lf_fresh, connect):
    from airflow_provider_cloudflare.hooks.d1 import D1Hook

    server = lf_fresh()
    connect(server, budget={"bulk_rps": 0})
    ti = RecordingTI()
    before = server.counters().get("requests", 0)
    CloudflareHealthCheckOperator(task_id="check_resources", **DEMO).execute({"ti": ti})
    sent = server.counters()["requests"] - before
    health = ti.pushed["prism_dashboard_health"]
    # A first run: D1 list + query, Vectorize query + info, KV list, Workers AI; the Worker's /health is no API call.
    assert health["api_calls"] == sent == 6
    database = D1Hook().get_database(server.d1_id)
    assert health["read"] == {
        "d1": {"name": DEMO["database"], "file_size": database["file_size"], "num_tables": database["num_tables"]},
        "vectorize": {"vectorCount": 615, "dimensions": 384},
    }
    assert health["resolved"] == {"d1": {"name": DEMO["database"], "account": server.account_id, "uuid": server.d1_id}}

    # The next run queries the id it learnt: one call less, the same figures.
    nxt = ti.next_run()
    before = server.counters()["requests"]
    CloudflareHealthCheckOperator(task_id="check_resources", **DEMO).execute({"ti": nxt})
    again = nxt.pushed["prism_dashboard_health"]
    assert again["api_calls"] == server.counters()["requests"] - before == 5
    assert (again["read"], again["resolved"]) == (health["read"], health["resolved"])


def test_what_a_failed_check_could_not_read_is_not_recorded(lf_fresh, connect):
    server = lf_fresh()
    connect(server, budget={"bulk_rps": 0})
    ti = RecordingTI()
    before = server.counters().get("requests", 0)
    with pytest.raises(AirflowException):
        CloudflareHealthCheckOperator(task_id="check_resources", **{**DEMO, "index": "no-such-index"}).execute(
            {"ti": ti}
        )
    health = ti.pushed["prism_dashboard_health"]
    assert health["api_calls"] == server.counters()["requests"] - before == 5  # the failed query, no info
    assert set(health["read"]) == {"d1"} and not health["checks"]["vectorize"]["ok"]


def test_a_deleted_database_fails_the_check_and_its_id_is_forgotten(lf_fresh, connect):
    from localflare.testing import Api

    server = lf_fresh()
    connect(server, budget={"bulk_rps": 0})
    first = RecordingTI()
    checked(server, first)
    Api(server).delete(f"/accounts/{{acct}}/d1/database/{server.d1_id}").raise_for_status()

    health, routes = checked(server, second := first.next_run())
    assert routes == {D1_QUERY: 1, D1_LIST: 1}  # the learnt id's 404, then the name's lookup
    assert (
        not health["checks"]["d1"]["ok"]
        and "no D1 database named 'claudes-friend-db'" in health["checks"]["d1"]["detail"]
    )
    assert health["resolved"] == {} and "d1" not in health["read"]
    assert checked(server, second.next_run())[1] == {D1_LIST: 1}  # nothing left to try: the lookup alone


def test_a_query_that_fails_otherwise_keeps_the_id_for_the_next_run(lf_fresh, connect):
    """An outage (5xx on every attempt) says nothing about the id: the next healthy run does not list."""
    server = lf_fresh()
    connect(server, budget={"bulk_rps": 0})
    first = RecordingTI()
    checked(server, first)
    server.add_faults("5xx:route=POST */d1/database/*/query,count=5,status=503")

    health, routes = checked(server, second := first.next_run())
    assert not health["checks"]["d1"]["ok"] and routes == {D1_QUERY: 5} and health["api_calls"] == 5
    assert health["resolved"]["d1"]["uuid"] == server.d1_id
    health, routes = checked(server, second.next_run())
    assert health["checks"]["d1"]["ok"] and routes == {D1_QUERY: 1}


@pytest.mark.parametrize(
    "earlier",
    [
        {"name": "another-db", "account": "ACCOUNT", "uuid": "UUID"},  # the config names another database now
        {"name": "claudes-friend-db", "account": "0" * 32, "uuid": "UUID"},  # another account
        {"name": "claudes-friend-db", "account": "ACCOUNT", "uuid": "../../../user/tokens/verify"},
        {"name": "claudes-friend-db", "account": "ACCOUNT", "uuid": "UUID/../../../user/tokens/verify"},
        {"name": "claudes-friend-db", "account": "ACCOUNT", "uuid": "UUID?x=1"},
        {"name": "claudes-friend-db", "account": "ACCOUNT", "uuid": "UUID\n"},
        {"name": "claudes-friend-db", "account": "ACCOUNT", "uuid": ["UUID"]},
        {"name": "claudes-friend-db", "account": "ACCOUNT"},
        {"name": ["claudes-friend-db"], "account": "ACCOUNT", "uuid": "UUID"},
        "UUID",
    ],
)
def test_a_recorded_id_is_used_only_for_the_same_name_and_account_and_only_if_it_is_a_uuid(lf_fresh, connect, earlier):
    """Anything else in the last record (another name, another account, a value that would change the
    request path, a malformed record) is ignored: the check looks the name up as a first run does."""
    server = lf_fresh()
    connect(server, budget={"bulk_rps": 0})

    def fill(value):
        if isinstance(value, str):
            return value.replace("ACCOUNT", server.account_id).replace("UUID", server.d1_id)
        return [fill(v) for v in value] if isinstance(value, list) else value

    resolved = {"d1": {k: fill(v) for k, v in earlier.items()}} if isinstance(earlier, dict) else fill(earlier)
    ti = RecordingTI({"prism_dashboard_health": {"ok": True, "resolved": resolved}})
    health, routes = checked(server, ti)
    assert health["checks"]["d1"] == {**health["checks"]["d1"], "ok": True, "detail": "SELECT 1 ok"}
    assert routes == {D1_LIST: 1, D1_QUERY: 1}
    assert health["resolved"]["d1"] == {"name": "claudes-friend-db", "account": server.account_id, "uuid": server.d1_id}


@pytest.mark.parametrize(
    "name",
    ["../accounts", "a/b", "claudes-friend-db?x=1", "<script>alert(1)</script>", "claudes-friend-db\n", "x" * 300],
)
def test_a_hostile_database_name_is_refused_by_the_config_and_never_changes_a_request_path(lf_fresh, connect, name):
    """The config refuses such names (naming the field); one given to the operator directly is only ever sent as
    the list's `name` parameter, never matches the id learnt for the real name, and fails the check naming it."""
    from prism.settings.config import PrismConfigError, load_config

    if name != "claudes-friend-db\n":  # a trailing newline passes the config's `$` (reported, not this file's)
        with pytest.raises(PrismConfigError, match="cloudflare.d1_database"):
            load_config({"cloudflare": {"d1_database": name}})
    server = lf_fresh()
    connect(server, budget={"bulk_rps": 0})
    first = RecordingTI()
    checked(server, first)  # learns the id of claudes-friend-db

    health, routes = checked(server, first.next_run(), database=name)
    assert routes == {D1_LIST: 1}
    assert not health["checks"]["d1"]["ok"] and health["checks"]["d1"]["detail"].endswith(
        f"no D1 database named {name!r} in account {server.account_id}"
    )
    assert health["resolved"] == {}


def test_prism_daily_health_services_learns_the_id_the_same_way(lf_fresh, connect, airflow_db):
    """prism_daily's health_check.services is the same operator: its first run lists, its next one does not."""
    import sys
    from datetime import timedelta
    from pathlib import Path

    sys.path.insert(0, str(Path(__file__).resolve().parents[3] / "dags"))
    from airflow.models.xcom import XComModel
    from airflow.utils.session import create_session
    from dagtest import load_dag, run_only, xcom
    from sqlalchemy import delete

    server = lf_fresh()
    connect(server, budget={"bulk_rps": 0})
    with create_session() as session:
        session.execute(
            delete(XComModel).where(XComModel.dag_id == "prism_daily", XComModel.task_id == "health_check.services")
        )
    daily = load_dag("prism_daily")
    logical = (datetime.now(timezone.utc) - timedelta(days=2)).replace(hour=9, minute=0, second=0, microsecond=0)
    records = []
    for day in (logical, logical + timedelta(days=1)):
        server.admin("DELETE", "counters")
        run = run_only(daily, r"^health_check\.services$", logical_date=day)
        records.append((xcom(run, "health_check.services", key="prism_dashboard_health"), server.counters()))
    (first, first_counters), (second, second_counters) = records
    assert first["ok"] and second["ok"]
    assert first_counters["route:" + D1_LIST] == 1 and "route:" + D1_LIST not in second_counters
    assert (first["api_calls"], second["api_calls"]) == (4, 3)  # D1 list, D1 query, Vectorize query and info
    assert second["resolved"]["d1"]["uuid"] == server.d1_id
