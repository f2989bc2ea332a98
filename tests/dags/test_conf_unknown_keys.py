"""Extra conf keys never choose what runs: every DAG in dags/, triggered with keys it does not declare
(commands, a project directory, a working directory, an environment), runs none of its tasks' code.

Airflow 3.3 merges every conf key into `params` and passes undeclared ones unchecked, so the refusal
is each task's pre_execute (prism_dag's default_args): the run fails with
"refusing to run: unknown conf keys [...]. Nothing was changed.", the command's marker file never
appears, and localflare sees no API call at all.
"""

from __future__ import annotations

import html
from datetime import datetime, timedelta, timezone
from pathlib import Path

import pytest
from dagtest import DAGS, load_dag, states

DAG_IDS = sorted(p.stem for p in DAGS.glob("*.py") if not p.name.startswith("_"))
YESTERDAY = f"{datetime.now(timezone.utc) - timedelta(days=1):%Y%m%d}"
# Declared Params set as a run that would otherwise go ahead, so only the extra keys are wrong.
VALID = {
    "prism_disaster_recovery": {"source": "s3", "backup_date": YESTERDAY, "targets": ["d1"], "confirm": "RESTORE"},
    "prism_index_rebuild": {"confirm": "REBUILD", "reason": "unknown-key test"},
    "prism_monthly": {"run_day": 7, "run_dependency_update": True},
    "prism_quarterly": {"quarter": 1},
    "prism_preflight": {"prove_writes": True},
}


def hostile_keys(marker: Path) -> dict:
    """What a trigger form, the REST API or `airflow dags trigger --conf` could add to pick a program,
    a path or an environment: the names the DAGs used to take, and a few more."""
    command = ["sh", "-c", f"touch {marker}"]
    return {
        "npm_update_command": command,
        "npm_audit_command": command,
        "npm_test_command": command,
        "npm_deploy_command": command,
        "indexer_command": command,
        "embedder_command": command,
        "command": " ".join(command),
        "npm_project_dir": "/",
        "working_dir": "/tmp",
        "env": {"LD_PRELOAD": str(marker), "PATH": "/tmp", "AIRFLOW__CORE__FERNET_KEY": "x"},
        "<script>alert(1)</script>": "x",
        "k" * 300: "long key",
    }


@pytest.fixture
def setup(lf_fresh, connect, bucket, alerts, tmp_path):
    server = lf_fresh()
    connect(server, budget={"bulk_rps": 0})
    return server, bucket, alerts, tmp_path / "pwned"


@pytest.mark.parametrize("dag_id", DAG_IDS)
def test_unknown_conf_keys_refuse_the_run_and_nothing_runs(dag_id, setup, s3, airflow_db):
    server, bucket, alerts, marker = setup
    dag = load_dag(dag_id)
    conf = {**{k: v for k, v in VALID.get(dag_id, {}).items() if k in dag.params}, **hostile_keys(marker)}
    assert not set(hostile_keys(marker)) & set(dag.params), "a command, path or environment is a Param"
    calls_before = server.counters()

    run = dag.test(run_conf=conf)  # the Param schema passes it: the undeclared keys have no schema

    assert run.state == "failed"
    got = states(run)
    assert got and set(got.values()) <= {"failed", "upstream_failed"}, got  # no task's code ran
    assert not marker.exists()
    assert server.counters() == calls_before  # not one Cloudflare API call, read or write
    assert s3.list_keys(bucket) == []
    failed = [t for t, s in got.items() if s == "failed"]
    assert failed and len(alerts) == len(failed), (failed, alerts)
    for text in map(html.unescape, alerts):  # Slack text arrives with <, > and & escaped
        assert "refusing to run: unknown conf keys [" in text and text.rstrip().endswith("Nothing was changed."), text
        assert "npm_update_command" in text and "'env'" in text and "<script>alert(1)</script>" in text
        assert "k" * 300 not in text and "k" * 60 + "..." in text  # a long key is cut, the line stays short


def test_declared_keys_alone_are_not_refused():
    """The check refuses only what the DAG does not declare (the pre_execute itself, on a real context)."""
    from prism.dag_factory import refuse_unknown_conf
    from prism.refusals import Refused

    class Run:
        def __init__(self, conf):
            self.conf = conf

    dag = load_dag("prism_disaster_recovery")
    refuse_unknown_conf({"dag": dag, "dag_run": Run({"confirm": "RESTORE", "backup_date": "20260101"})})
    refuse_unknown_conf({"dag": dag, "dag_run": Run(None)})
    refuse_unknown_conf({"dag": dag, "dag_run": None})
    with pytest.raises(
        Refused,
        match=r"^refusing to run: unknown conf keys \['working_dir'\] \(prism_disaster_recovery "
        r"does not declare them; its Params are \[.*'backup_date'.*\]\)\. Nothing was changed\.$",
    ):
        refuse_unknown_conf({"dag": dag, "dag_run": Run({"confirm": "RESTORE", "working_dir": "/tmp"})})
    weekly = load_dag("prism_weekly")
    with pytest.raises(Refused, match=r"prism_weekly does not declare them; it takes no conf"):
        refuse_unknown_conf({"dag": weekly, "dag_run": Run({"env": {}})})


@pytest.mark.parametrize("dag_id", DAG_IDS)
def test_every_task_refuses_unknown_keys_first(dag_id):
    """Every task of every DAG has the check as its pre_execute: a task added later without it fails here."""
    from prism.dag_factory import refuse_unknown_conf

    dag = load_dag(dag_id)
    missing = [t.task_id for t in dag.tasks if getattr(t, "_pre_execute_hook", None) is not refuse_unknown_conf]
    assert missing == []
