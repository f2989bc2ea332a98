"""The backup sets' lineage as the bundle declares it: the tasks that produce a set name its Asset as an
outlet, the tasks that read sets name them as inlets, and no task reads a kind of set nothing produces."""

from __future__ import annotations

from pathlib import Path

import pytest

from prism.backups.assets import DAILY_SETS, EVERY_SET, MONTHLY_SETS, SAFETY_SETS

DAGS = Path(__file__).resolve().parents[4] / "dags"


@pytest.fixture(scope="module")
def bag():
    from airflow.dag_processing.dagbag import DagBag

    bag = DagBag(dag_folder=str(DAGS))
    assert bag.import_errors == {}, bag.import_errors
    return bag


def task(bag, dag_id: str, task_id: str):
    return bag.dags[dag_id].get_task(task_id)


@pytest.mark.parametrize(
    "dag_id, group, asset",
    [
        ("prism_daily", "daily_backup", DAILY_SETS),
        ("prism_monthly", "day_1.backup_verification", MONTHLY_SETS),
        ("prism_disaster_recovery", "safety_backup", SAFETY_SETS),
    ],
)
def test_a_backup_set_is_produced_by_its_finalize_task(bag, dag_id, group, asset):
    assert task(bag, dag_id, f"{group}.finalize").outlets == [asset]
    for other in ("plan", "d1", "vectorize", "kv"):  # staging is not the set yet
        assert task(bag, dag_id, f"{group}.{other}").outlets == []


@pytest.mark.parametrize(
    "dag_id, group, asset",
    [("prism_daily", "daily_backup", DAILY_SETS), ("prism_monthly", "day_1.backup_verification", MONTHLY_SETS)],
)
def test_verification_reads_the_set_it_verifies(bag, dag_id, group, asset):
    assert task(bag, dag_id, f"{group}.verify").inlets == [asset]


def test_disaster_recovery_restores_read_every_kind_of_set(bag):
    for target in ("d1", "vectorize", "kv"):
        assert task(bag, "prism_disaster_recovery", f"restore.{target}").inlets == EVERY_SET


def test_every_set_read_is_produced_somewhere(bag):
    tasks = [t for dag in bag.dags.values() for t in dag.tasks]
    produced = {a.name for t in tasks for a in t.outlets}
    read = {a.name for t in tasks for a in t.inlets}
    assert produced == {a.name for a in EVERY_SET}
    assert read <= produced
