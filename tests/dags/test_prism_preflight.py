"""prism_preflight with dag.test(): every check runs, the lines come back as XCom, any FAIL fails the run."""

from __future__ import annotations

import json

import pytest
from dagtest import load_dag, states, xcom


@pytest.fixture
def dag():
    # A fresh DAG per test: dag.test(run_conf=...) leaves the conf in the DAG object's params.
    return load_dag("prism_preflight")


@pytest.fixture
def pools(airflow_db):
    """The pools the bundle declares, created in the test's Airflow DB (and removed after)."""
    from airflow.models.pool import Pool
    from airflow.utils.session import create_session

    from prism.preflight import expected_pools

    wanted = expected_pools()
    with create_session() as session:
        for name, slots in wanted.items():
            Pool.create_or_update_pool(name, slots, "preflight test", include_deferred=False, session=session)
    yield wanted
    with create_session() as session:
        for name in wanted:
            session.query(Pool).filter(Pool.pool == name).delete()


def test_a_ready_account_passes(dag, server, bucket, pools):
    run = dag.test(run_conf={"prove_writes": True})
    assert str(run.state) == "success", states(run)
    lines = xcom(run, "verdict", key="lines")
    assert lines and all(line.startswith("PASS ") for line in lines), lines
    assert any(line.startswith("PASS pool cloudflare_heavy: 3 slot(s)") for line in lines)
    assert any(line.startswith("PASS bucket write/read/delete") for line in lines)
    assert any(line.startswith("PASS Worker /metrics") for line in lines)


def test_by_default_nothing_is_written_and_a_missing_pool_fails_the_run(dag, server, bucket, airflow_db):
    run = dag.test()
    assert str(run.state) == "failed"
    assert states(run) == {
        "cloudflare": "success",
        "pools": "success",
        "bucket": "success",
        "worker": "success",
        "verdict": "failed",
    }
    lines = xcom(run, "verdict", key="lines")
    assert [line.split(":")[0] for line in lines if line.startswith("SKIP ")] == [
        "SKIP D1 scratch database [D1 Edit]",
        "SKIP Vectorize scratch index [Vectorize Edit]",
        "SKIP KV scratch key [Workers KV Storage Edit]",
    ]
    assert (
        "FAIL pool cloudflare_heavy: missing: tasks in a missing pool are never scheduled — fix: "
        '`airflow pools set cloudflare_heavy 3 "PRISM: cloudflare_heavy"` (or `airflow pools import include/pools.json`)'
        in lines
    )
    assert [line for line in lines if line.startswith("FAIL ") and not line.startswith("FAIL pool ")] == []


def test_a_token_without_a_permission_fails_naming_it(dag, lf_fresh, monkeypatch, bucket, pools):
    from prism.preflight import PERMISSIONS

    server = lf_fresh("--token", "narrow=" + ",".join(p for p in PERMISSIONS if p != "Vectorize Read"))
    monkeypatch.setenv(
        "AIRFLOW_CONN_CLOUDFLARE_DEFAULT",
        json.dumps(
            {
                "conn_type": "cloudflare",
                "password": "narrow",
                "extra": {"account_id": server.account_id, "base_url": server.api_url},
            }
        ),
    )
    monkeypatch.setenv("AIRFLOW_CONN_PRISM_WORKER", json.dumps({"conn_type": "http", "host": server.worker_url}))
    run = dag.test()
    assert str(run.state) == "failed" and states(run)["verdict"] == "failed"
    failed = [line for line in xcom(run, "verdict", key="lines") if line.startswith("FAIL ")]
    assert [line.split(":")[0] for line in failed] == [
        "FAIL Vectorize index [Vectorize Read]",
        "FAIL Vectorize query [Vectorize Read]",
    ]
    assert all("give the API token the permission 'Vectorize Read'" in line for line in failed)


def test_unknown_conf_is_refused(dag, server, bucket, pools):
    run = dag.test(run_conf={"prove_writes": True, "command": "rm -rf /"})
    assert str(run.state) == "failed"
    assert xcom(run, "cloudflare") is None  # nothing ran
