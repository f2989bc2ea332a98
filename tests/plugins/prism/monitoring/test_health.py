"""Health and threshold checks: real checks against localflare, failures with every finding named,
skips inside backfills, and thresholds from templated values."""

from __future__ import annotations

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
