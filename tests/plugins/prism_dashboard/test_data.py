"""The dashboard's figures come from Airflow's metadata DB: what the health monitor's runs recorded."""

from __future__ import annotations

from pathlib import Path

from prism_dashboard.data import backup_standing, dashboard

DAGS = Path(__file__).resolve().parents[3] / "dags"


def test_the_health_monitor_runs_are_what_the_dashboard_reads(cf, airflow_db):
    from airflow.dag_processing.dagbag import DagBag
    from airflow.utils.session import create_session

    dag = DagBag(dag_folder=str(DAGS / "prism_health_monitor.py")).get_dag("prism_health_monitor")
    run = dag.test()
    with create_session() as session:
        data = dashboard(session)
    mine = [h for h in data["health"] if h["run_id"] == run.run_id]
    assert (
        len(mine) == 1 and mine[0]["status"] == "healthy" and set(mine[0]["checks"]) == {"d1", "vectorize", "kv", "ai"}
    )
    assert data["usage_run"] == run.run_id and data["usage"]["requests"]["total"] > 0


def _set(cadence: str, period: str, status: str, at: str) -> dict:
    return {
        "cadence": cadence,
        "period": period,
        "status": status,
        "at": at,
        "captured_at": at,
        "bytes": 1,
        "method": "m",
    }


def test_the_last_verified_set_is_the_newest_whose_latest_result_is_verified():
    records = [
        _set("daily", "20261127", "verified", "2026-11-27T09:10"),
        _set("daily", "20261128", "verified", "2026-11-28T09:10"),
        _set("daily", "20261128", "failed", "2026-11-29T04:00"),  # a drill failed it afterwards
        _set("daily", "20261129", "failed", "2026-11-29T09:10"),
        _set("monthly", "202611", "verified", "2026-11-01T03:20"),
    ]
    standing = backup_standing(records)
    assert standing["daily"]["last_verified"]["period"] == "20261127"
    assert standing["daily"]["latest"]["period"] == "20261129" and standing["daily"]["latest"]["status"] == "failed"
    assert standing["monthly"]["last_verified"]["period"] == "202611" and "safety" not in standing
    assert backup_standing([_set("daily", "20261129", "failed", "x")])["daily"]["last_verified"] is None
