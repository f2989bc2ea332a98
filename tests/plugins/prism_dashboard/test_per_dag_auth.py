"""Under a per-DAG auth manager the dashboard opens only for a user who may read every PRISM DAG.
What the request names (a `dag_id` in the query, a report key) chooses nothing: before issue 11 the
dashboard asked about the query's `dag_id`, so a user granted one unrelated DAG opened it all."""

from __future__ import annotations

import os
import sys
from pathlib import Path

import pytest

HERE = Path(__file__).resolve().parent
PATHS = ["/prism-dashboard/", "/prism-dashboard/data.json", "/prism-dashboard/reports/prism_monthly/202611/capacity.md"]


@pytest.fixture(scope="module")
def prism_dags(airflow_db) -> list[str]:
    """The bundle's DAGs written to the metadata DB (as the DAG processor would), their ids."""
    from airflow.dag_processing.bundles.manager import DagBundlesManager
    from airflow.dag_processing.dagbag import BundleDagBag, sync_bag_to_db
    from airflow.models.dag import DagModel
    from airflow.utils.session import create_session
    from sqlalchemy import select

    manager = DagBundlesManager()
    manager.sync_bundles_to_db()
    for bundle in manager.get_all_dag_bundles():
        if not bundle.is_initialized:
            bundle.initialize()
        sync_bag_to_db(
            BundleDagBag(dag_folder=bundle.path, bundle_path=bundle.path, bundle_name=bundle.name),
            bundle.name,
            bundle.version,
        )
    with create_session() as session:
        ids = sorted(session.scalars(select(DagModel.dag_id).where(DagModel.dag_id.like("prism%"))))
    assert {"prism_daily", "prism_weekly", "prism_health_monitor", "prism_disaster_recovery"} <= set(ids), ids
    return ids


@pytest.fixture(scope="module")
def client(prism_dags):
    """Airflow's API app with the per-DAG auth manager; the process's own manager is put back after."""
    import airflow.api_fastapi.app as api_app
    from fastapi.testclient import TestClient

    sys.path.insert(0, str(HERE))
    before_env, before = os.environ.get("AIRFLOW__CORE__AUTH_MANAGER"), api_app._AuthManagerState.instance
    os.environ["AIRFLOW__CORE__AUTH_MANAGER"] = "per_dag_auth.GrantedDagsAuthManager"
    try:
        app = api_app.create_app()
        assert type(api_app.get_auth_manager()).__name__ == "GrantedDagsAuthManager"
        yield TestClient(app, base_url="http://127.0.0.1")
    finally:
        if before_env is None:
            os.environ.pop("AIRFLOW__CORE__AUTH_MANAGER", None)
        else:
            os.environ["AIRFLOW__CORE__AUTH_MANAGER"] = before_env
        api_app._AuthManagerState.instance = before


def _auth() -> dict:
    from airflow.api_fastapi.app import get_auth_manager
    from airflow.api_fastapi.auth.managers.simple.user import SimpleAuthManagerUser

    return {
        "Authorization": "Bearer "
        + get_auth_manager().generate_jwt(SimpleAuthManagerUser(username="op", role="viewer"))
    }


@pytest.mark.parametrize("path", PATHS)
def test_a_user_granted_one_unrelated_dag_is_refused_whatever_the_query_names(client, monkeypatch, path):
    monkeypatch.setenv("PRISM_TEST_GRANTED_DAGS", "team_b_etl")
    headers = _auth()
    answers = {
        q: client.get(path + q, headers=headers)
        for q in ("?dag_id=team_b_etl", "", "?dag_id=~", "?dag_id=team_b_etl&dag_id=prism_daily", "?dag_id=prism_daily")
    }
    assert {q: r.status_code for q, r in answers.items()} == dict.fromkeys(answers, 403)
    assert all(
        r.json() == {"detail": "Forbidden"} and r.headers["x-content-type-options"] == "nosniff"
        for r in answers.values()
    )


def test_a_user_lacking_one_prism_dag_is_refused(client, monkeypatch, prism_dags):
    headers = _auth()
    for missing in ("prism_weekly", "prism_health_monitor"):
        monkeypatch.setenv("PRISM_TEST_GRANTED_DAGS", ",".join(d for d in prism_dags if d != missing))
        for path in PATHS:
            assert client.get(f"{path}?dag_id=prism_daily", headers=headers).status_code == 403, (missing, path)


def test_a_user_granted_every_prism_dag_sees_the_dashboard_and_only_their_data(client, monkeypatch, prism_dags):
    from per_dag_auth import GrantedDagsAuthManager

    monkeypatch.setenv("PRISM_TEST_GRANTED_DAGS", ",".join(prism_dags))
    GrantedDagsAuthManager.asked.clear()
    resp = client.get("/prism-dashboard/?dag_id=team_b_etl", headers=_auth())
    assert resp.status_code == 200 and "<h1>PRISM dashboard</h1>" in resp.text
    # Asked about the PRISM DAGs themselves (their XComs and task instances), never about the query's DAG.
    assert {(m, e, d) for m, e, d in GrantedDagsAuthManager.asked} == {
        ("GET", entity, d) for d in prism_dags for entity in ("XCOM", "TASK_INSTANCE")
    }
    data = client.get("/prism-dashboard/data.json", headers=_auth()).json()
    assert {r["dag_id"] for r in data["reports"] + data["alerts"]} <= set(prism_dags)


def test_no_token_is_still_401_and_a_forged_one_403(client):
    for path in PATHS:
        assert client.get(path + "?dag_id=prism_daily").status_code == 401
        assert client.get(path, headers={"Authorization": "Bearer x.y.z"}).status_code == 403
