"""The whole bundle parses with no import errors."""

from __future__ import annotations

from pathlib import Path

DAGS = Path(__file__).resolve().parents[2] / "dags"


def test_dagbag_imports_without_errors():
    from airflow.dag_processing.dagbag import DagBag

    bag = DagBag(dag_folder=str(DAGS))
    assert bag.import_errors == {}, f"DAG import errors: {bag.import_errors}"
    for dag_id, dag in bag.dags.items():
        assert dag.tags, f"{dag_id} has no tags"
