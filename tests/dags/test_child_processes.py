"""Child processes under real DAG runs (dag.test()): commands come only from the config, a child gets no
secret of the worker's, what it prints is redacted everywhere a person sees it, and the shipped
config runs no indexer (index tasks skip, a rebuild refuses before it clears anything).

`env` (the program) stands in for npm and the indexer: it prints the environment it was given.
"""

from __future__ import annotations

import json
import logging
import uuid
from pathlib import Path

import pytest
from dagtest import load_dag, recent, run_only, states, xcom

ALLOWED = {"PATH", "HOME", "LANG", "TMPDIR"}
DAY_7_NPM = r"^(windows|calendar_day|day_7\.dependency_update\..+|day_7\.security_audit\.npm_audit)$"
INDEXER_GIVEN = {
    "CLOUDFLARE_API_TOKEN",
    "CLOUDFLARE_ACCOUNT_ID",
    "CLOUDFLARE_API_BASE_URL",
    "PRISM_CLOUDFLARE_BUDGET",
    "PRISM_D1_DATABASE",
    "PRISM_VECTORIZE_INDEX",
    "PRISM_EMBEDDING_MODEL",
    "PYTHONPATH",
}
# A value a person would have to see redacted: registered with the masker, and hostile as text.
HOSTILE = "<script>alert('x')</script> \"q\" \u00e9\u6f22 " + "long" * 60
# What a PRISM indexer might do: print its environment, then its JSON summary; exit with argv[1].
ENV_INDEXER = (
    "import json, os, sys; env = dict(os.environ); "
    "print('\\n'.join(f'{k}={v}' for k, v in sorted(env.items()))); "
    "print(json.dumps({'repo': sys.argv[sys.argv.index('--repo') + 1], 'env': env})); "
    "sys.exit(int(sys.argv[1]))"
)


@pytest.fixture
def worker_secrets(monkeypatch, lf):
    """What a worker's environment holds (docker-compose.yaml sets the AIRFLOW__ ones), each value unique
    to this test; and one value the config passes on purpose, registered with the masker."""
    from airflow.configuration import conf
    from airflow.sdk.log import mask_secret
    from cryptography.fernet import Fernet

    values = {
        "AIRFLOW__API_AUTH__JWT_SECRET": "jwt-" + uuid.uuid4().hex,
        "AIRFLOW__CORE__FERNET_KEY": Fernet.generate_key().decode(),
        # the value Airflow already uses: this process's own runs must still reach their DB
        "AIRFLOW__DATABASE__SQL_ALCHEMY_CONN": conf.get("database", "sql_alchemy_conn"),
        "AWS_SECRET_ACCESS_KEY": "aws-" + uuid.uuid4().hex,
        "CLOUDFLARE_API_TOKEN": lf.token,
    }
    for name, value in values.items():
        monkeypatch.setenv(name, value)
    passed = f"passed-{uuid.uuid4().hex}-{HOSTILE}"
    mask_secret(passed)
    monkeypatch.setenv("PRISM_PASSED_SECRET", passed)
    return {**values, "PRISM_PASSED_SECRET": passed}


def env_lines(output: str) -> dict[str, str]:
    return dict(
        line.split("=", 1) for line in output.splitlines() if "=" in line and line.split("=", 1)[0].isidentifier()
    )


def assert_nothing_secret(text: str, secrets: dict, *, where: str) -> None:
    for name, value in secrets.items():
        assert value not in text, f"{name}'s value in {where}"
    for line in text.splitlines():  # no worker variable reached a child's printed environment
        assert not line.startswith(("AIRFLOW", "AWS_")), (where, line)


def task_log(caplog, capfd) -> str:
    out, err = capfd.readouterr()
    return caplog.text + out + err


# ---- npm commands ------------------------------------------------------------------------------


def test_npm_commands_come_from_the_config_get_no_secrets_and_are_redacted(
    cf, s3, bucket, configure, airflow_db, alerts, worker_secrets, tmp_path, caplog, capfd
):
    caplog.set_level(logging.INFO)
    project = tmp_path / "proj ' \"<b>\u00e9"  # a hostile path, as a deployment might name one
    project.mkdir()
    configure(
        {
            "backups": {"bucket": bucket},
            "npm": {
                "project_dir": str(project),
                "update_command": ["env"],
                "audit_command": ["env"],
                "test_command": ["sh", "-c", "env; echo '<script>tests failed</script> \u00e9'; exit 1"],
                "deploy_command": ["touch", "deployed"],
                "env": ["PRISM_PASSED_SECRET"],
            },
        }
    )
    dag = load_dag("prism_monthly")
    run = run_only(dag, DAY_7_NPM, logical_date=recent(7), run_conf={"run_dependency_update": True})
    logged = task_log(caplog, capfd)

    st = states(run)
    assert [
        st[f"day_7.dependency_update.{t}"] for t in ("enabled", "npm_update", "npm_audit", "npm_test", "deploy")
    ] == ["success", "success", "success", "failed", "upstream_failed"]
    assert st["day_7.security_audit.npm_audit"] == "success" and not (project / "deployed").exists()
    outputs = {
        task: xcom(run, task)
        for task in (
            "day_7.dependency_update.npm_update",
            "day_7.dependency_update.npm_audit",
            "day_7.security_audit.npm_audit",
        )
    }
    for task, result in outputs.items():
        assert result["command"] == ["env"] and result["returncode"] == 0
        env = env_lines(result["output"])
        # The child's whole environment: the allow-list and the one name the config gives, redacted.
        assert set(env) <= ALLOWED | {"PRISM_PASSED_SECRET"} | {n for n in env if n.startswith("LC_")}, (task, set(env))
        assert {"PATH", "HOME"} <= set(env) and env["PRISM_PASSED_SECRET"] == "***", task
        assert_nothing_secret(json.dumps(result, ensure_ascii=False), worker_secrets, where=f"XCom of {task}")
    # The failed test step's alert carries its output, redacted (how Slack text escapes <> is the notifier's).
    assert len(alerts) == 1 and "day_7.dependency_update.npm_test failed" in alerts[0]
    assert "PRISM_PASSED_SECRET=***" in alerts[0] and "tests failed" in alerts[0]
    assert_nothing_secret(alerts[0], worker_secrets, where="the alert")
    assert "PRISM_PASSED_SECRET=***" in logged
    assert_nothing_secret(logged, worker_secrets, where="the task log")


def test_a_trigger_cannot_name_a_command_a_directory_or_an_environment(
    cf, s3, bucket, configure, airflow_db, alerts, tmp_path
):
    """The conf keys the Params had before: whatever the run does with them, none of it runs."""
    project, elsewhere = tmp_path / "project", tmp_path / "elsewhere"
    project.mkdir()
    elsewhere.mkdir()
    configure(
        {
            "backups": {"bucket": bucket},
            "npm": {
                "project_dir": str(project),
                "update_command": ["true"],
                "audit_command": ["true"],
                "test_command": ["true"],
                "deploy_command": ["true"],
            },
        }
    )
    attack = ["sh", "-c", f"touch {elsewhere}/pwned; touch pwned"]
    conf = {
        "run_dependency_update": True,
        "npm_project_dir": str(elsewhere),
        "npm_update_command": attack,
        "npm_audit_command": attack,
        "npm_test_command": attack,
        "npm_deploy_command": attack,
        "npm_env": ["AIRFLOW__CORE__FERNET_KEY"],
    }
    dag = load_dag("prism_monthly")
    try:
        run_only(dag, DAY_7_NPM, logical_date=recent(7), run_conf=conf)
    except Exception:  # noqa: BLE001 - refusing the unknown keys outright is fine too
        pass
    assert not (elsewhere / "pwned").exists() and not (project / "pwned").exists()
    assert list(elsewhere.iterdir()) == []


def test_quarterly_npm_audit_runs_the_configured_command_only(cf, configure, tmp_path):
    dag = load_dag("prism_quarterly")
    audit = dag.get_task("q3.dependency_audit.npm_audit").python_callable
    configure({"npm": {"project_dir": str(tmp_path), "audit_command": ["sh", "-c", "pwd; exit 2"]}})
    result = audit()
    assert result == {"command": ["sh", "-c", "pwd; exit 2"], "returncode": 2, "output": f"{tmp_path}\n"}


# ---- the indexer -------------------------------------------------------------------------------


def test_the_indexer_gets_the_token_explicitly_and_nothing_else_of_the_worker(
    cf, configure, airflow_db, alerts, worker_secrets, caplog, capfd
):
    caplog.set_level(logging.INFO)
    configure(
        {
            "indexing": {
                "repos": ["prism/core"],
                "env": ["PRISM_PASSED_SECRET"],
                "indexer_command": ["python", "-c", ENV_INDEXER, "0"],
                "embedder_command": ["python", "-c", ENV_INDEXER, "3"],
            }
        }
    )
    dag = load_dag("prism_index_incremental")
    run = dag.test(run_conf={"since": "2026-01-01T00:00:00Z"})
    logged = task_log(caplog, capfd)

    st = states(run)
    assert (st["update_repo.index[0]"], st["update_repo.embed[0]"]) == ("success", "failed")
    summary = xcom(run, "update_repo.index")  # xcom of map index 0
    env = summary["env"]
    assert set(env) - {"PWD", "LC_CTYPE"} <= ALLOWED | INDEXER_GIVEN | {"PRISM_PASSED_SECRET"}, set(env)
    assert env["CLOUDFLARE_API_TOKEN"] == "***" and env["PRISM_PASSED_SECRET"] == "***"
    assert (env["CLOUDFLARE_ACCOUNT_ID"], env["CLOUDFLARE_API_BASE_URL"]) == (cf.account_id, cf.api_url)
    assert not [k for k in env if k.startswith(("AIRFLOW", "AWS_"))]
    assert_nothing_secret(json.dumps(summary, ensure_ascii=False), worker_secrets, where="the indexer's XCom")
    assert len(alerts) == 1 and "update_repo.embed failed" in alerts[0] and "exited with 3" in alerts[0]
    assert "CLOUDFLARE_API_TOKEN=***" in alerts[0] and "PRISM_PASSED_SECRET=***" in alerts[0]
    assert_nothing_secret(alerts[0], worker_secrets, where="the alert")
    assert "CLOUDFLARE_API_TOKEN=***" in logged
    assert_nothing_secret(logged, worker_secrets, where="the task log")


# ---- the shipped default: no indexer -----------------------------------------------------------


@pytest.fixture
def shipped(monkeypatch):
    """The config as a deployment gets it: no overlay (the tests' own layer names the demo indexer)."""
    monkeypatch.delenv("PRISM_CONFIG_OVERLAY", raising=False)


def test_the_shipped_config_names_no_indexer_and_no_npm_project(shipped):
    from prism.settings.config import load_config

    raw = json.loads((Path(__file__).resolve().parents[2] / "include" / "prism.config.json").read_text())
    config = load_config()
    for indexing in (raw["indexing"], config["indexing"]):
        assert indexing.get("indexer_command") is None and indexing.get("embedder_command") is None
    assert config["npm"]["project_dir"] is None and config["backups"]["kv_include_values"] is True


def test_weekly_index_update_skips_naming_the_keys_without_an_indexer(shipped, cf, airflow_db, alerts):
    from airflow.sdk.exceptions import AirflowSkipException

    dag = load_dag("prism_weekly")
    with pytest.raises(
        AirflowSkipException,
        match=r"no indexer is configured: set indexing.indexer_command and "
        r"indexing.embedder_command",
    ):
        dag.get_task("index_update.repos").python_callable(dag_run=None)
    run = run_only(dag, r"^index_update\.(repos|update_repo\.)")
    assert run.state == "success"
    assert {
        k: v
        for k, v in states(run).items()
        if k.startswith("index_update.") and k.split(".")[1] in ("repos", "update_repo")
    } == {
        "index_update.repos": "skipped",
        "index_update.update_repo.index": "skipped",
        "index_update.update_repo.embed": "skipped",
    }
    assert alerts == []


def test_incremental_update_skips_without_an_indexer(shipped, server, airflow_db, alerts):
    from airflow_provider_cloudflare.hooks.d1 import D1Hook

    count = lambda: D1Hook().rows(server.d1_id, "SELECT COUNT(*) AS n FROM documents")[0]["n"]  # noqa: E731
    before = count()
    run = load_dag("prism_index_incremental").test()
    assert run.state == "success"
    assert set(states(run).values()) == {"skipped"}
    assert count() == before and alerts == []


def test_rebuild_refuses_before_clearing_anything_without_an_indexer(shipped, server, bucket, s3, airflow_db, alerts):
    from airflow_provider_cloudflare.hooks.d1 import D1Hook
    from airflow_provider_cloudflare.hooks.vectorize import VectorizeHook

    d1, vec = D1Hook(), VectorizeHook()
    before = (
        d1.rows(server.d1_id, "SELECT COUNT(*) AS n FROM document_chunks")[0]["n"],
        vec.info(server.index_name)["vectorCount"],
    )
    run = load_dag("prism_index_rebuild").test(run_conf={"confirm": "REBUILD", "reason": "no indexer configured"})
    assert run.state == "failed"
    others = states(run)
    assert others.pop("validate_params") == "failed"
    assert set(others.values()) == {"upstream_failed"}, others
    assert (
        d1.rows(server.d1_id, "SELECT COUNT(*) AS n FROM document_chunks")[0]["n"],
        vec.info(server.index_name)["vectorCount"],
    ) == before
    assert s3.list_keys(bucket) == []
    assert (
        len(alerts) == 1
        and (
            "refusing to rebuild: no indexer is configured: set indexing.indexer_command and indexing.embedder_command"
        )
        in alerts[0]
        and "Nothing was changed." in alerts[0]
    )
