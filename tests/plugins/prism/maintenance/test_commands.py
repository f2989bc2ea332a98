"""npm project commands and the one child-process runner: argument lists from the config, run in the
project directory with an allow-listed environment, their output redacted."""

from __future__ import annotations

import json
import sys
import time
import uuid

import pytest
from airflow.sdk.exceptions import AirflowFailException, AirflowSkipException

from prism import child_process
from prism.maintenance.commands import npm_audit, npm_project, run_command, run_step
from prism.settings.config import PrismConfigError, load_config

PRINT_ENV = [sys.executable, "-c", "import json, os; print(json.dumps(dict(os.environ)))"]


def npm_config(**npm) -> dict:
    return load_config({"npm": npm})


def test_a_command_runs_in_the_project_and_keeps_the_end_of_its_output(tmp_path):
    (tmp_path / "package.json").write_text("{}")
    assert run_command(["ls"], str(tmp_path)) == {"command": ["ls"], "returncode": 0, "output": "package.json\n"}
    failed = run_command(["sh", "-c", "yes line | head -2000; exit 3"], str(tmp_path))
    assert failed["returncode"] == 3 and len(failed["output"]) == 4000 and failed["output"].endswith("line\n")


def test_a_missing_program_is_exit_code_127_and_a_timeout_124(tmp_path):
    out = run_command(["no-such-program-prism"], str(tmp_path))
    assert out["returncode"] == 127 and "no-such-program-prism" in out["output"]
    # A grandchild holding the output open is killed too: the task does not wait for it.
    started = time.monotonic()
    slow = run_command(["sh", "-c", "echo started; sleep 30 & wait"], str(tmp_path), timeout=0.5)
    assert (
        slow["returncode"] == 124
        and slow["output"].startswith("started\n")
        and "timed out after 0.5 s" in slow["output"]
    )
    assert time.monotonic() - started < 10


def test_the_project_dir_comes_from_the_config(tmp_path):
    assert npm_project(npm_config()) is None  # the shipped default: no npm project
    assert npm_project(npm_config(project_dir=str(tmp_path))) == str(tmp_path)
    with pytest.raises(
        AirflowFailException,
        match=r"^refusing to run npm: npm.project_dir '.*absent' \(in the config\) "
        r"is not a directory\. Nothing was changed\.$",
    ):
        npm_project(npm_config(project_dir=str(tmp_path / "absent")))


def test_npm_audit_skips_without_a_project_and_reports_findings_with_one(tmp_path):
    with pytest.raises(AirflowSkipException, match=r"no npm project configured \(set npm.project_dir"):
        npm_audit(npm_config(audit_command=["true"]))
    assert npm_audit(npm_config(project_dir=str(tmp_path), audit_command=["false"]))["returncode"] == 1
    assert (
        run_step(npm_config(project_dir=str(tmp_path), deploy_command=["touch", "deployed"]), "deploy", str(tmp_path))[
            "returncode"
        ]
        == 0
    )
    assert (tmp_path / "deployed").exists()


@pytest.mark.parametrize(
    "npm",
    [
        {"update_command": "npm update"},  # a shell string, not an argument list
        {"test_command": []},
        {"deploy_command": [""]},
        {"project_dir": "relative/path"},
        {"env": ["NOT A NAME"]},
        {"env": ["OK\n"]},
        {"env": "PATH"},
        {"update_commmand": ["npm", "update"]},  # a misspelt key is an error, not ignored
    ],
)
def test_bad_npm_config_is_refused_naming_the_field(npm):
    with pytest.raises(PrismConfigError, match=r"npm"):
        npm_config(**npm)


def test_the_child_gets_only_the_allow_list_and_the_names_the_config_gives(tmp_path, monkeypatch):
    secrets = {
        "AIRFLOW__API_AUTH__JWT_SECRET": "jwt-" + uuid.uuid4().hex,
        "AIRFLOW__CORE__FERNET_KEY": "fernet-" + uuid.uuid4().hex,
        "AIRFLOW__DATABASE__SQL_ALCHEMY_CONN": f"postgresql://airflow:{uuid.uuid4().hex}@db/airflow",
        "AIRFLOW_CONN_CLOUDFLARE_DEFAULT": json.dumps({"password": "cf-" + uuid.uuid4().hex}),
        "AIRFLOW_VAR_PRISM_CONFIG": "{}",
        "AWS_SECRET_ACCESS_KEY": "aws-" + uuid.uuid4().hex,
        "AWS_ACCESS_KEY_ID": "AKIA" + uuid.uuid4().hex[:16],
        "CLOUDFLARE_API_TOKEN": "tok-" + uuid.uuid4().hex,
        "PRISM_NOT_NAMED": "not-named-" + uuid.uuid4().hex,
    }
    for name, value in {
        **secrets,
        "LC_ALL": "C.UTF-8",
        "LANG": "C.UTF-8",
        "TMPDIR": str(tmp_path),
        "NPM_CONFIG_REGISTRY": "https://registry.example/",
    }.items():
        monkeypatch.setenv(name, value)
    result = run_command(PRINT_ENV, str(tmp_path), env_names=["NPM_CONFIG_REGISTRY", "UNSET_NAME"])
    env = json.loads(result["output"])
    assert set(env) - {"PWD"} <= {"PATH", "HOME", "LANG", "LC_ALL", "TMPDIR", "NPM_CONFIG_REGISTRY"}
    assert env["NPM_CONFIG_REGISTRY"] == "https://registry.example/" and env["LC_ALL"] == "C.UTF-8"
    assert {"PATH", "HOME", "TMPDIR"} <= set(env)
    for value in secrets.values():
        assert value not in result["output"]
    # A name the config gives is passed on, even an AIRFLOW one: the deployment chose it.
    named = run_command(PRINT_ENV, str(tmp_path), env_names=["AIRFLOW_VAR_PRISM_CONFIG"])
    assert json.loads(named["output"])["AIRFLOW_VAR_PRISM_CONFIG"] == "{}"


def test_what_a_child_prints_is_redacted_with_every_registered_secret(tmp_path, monkeypatch):
    from airflow.sdk.log import mask_secret

    registered = f'registered-{uuid.uuid4().hex}-\u00e9"<script>'
    other = f"webhook-{uuid.uuid4().hex}"
    mask_secret(registered)
    mask_secret(other)
    monkeypatch.setenv("PRISM_PASSED", registered)
    script = "import os, sys; v = os.environ['PRISM_PASSED']; print('stdout', v); print('argv', sys.argv[1], file=sys.stderr)"
    result = run_command([sys.executable, "-c", script, other], str(tmp_path), env_names=["PRISM_PASSED"])
    assert result["output"] == "stdout ***\nargv ***\n"
    assert other not in json.dumps(result["command"]) and result["command"][-1] == "***"
    # explicit secrets: the raw, JSON-escaped and URL-quoted forms
    token = f'tok/{uuid.uuid4().hex}"x'
    done = child_process.run(
        [
            sys.executable,
            "-c",
            "import json, sys; t = sys.argv[1]; print(t, json.dumps(t)); "
            "from urllib.parse import quote; print('https://x/?t=' + quote(t, safe=''))",
            token,
        ],
        tmp_path,
        secrets=[token],
    )
    assert token.split("/")[1] not in done.output and done.output == '*** "***"\nhttps://x/?t=***\n'


def test_redact_walks_a_summary_and_hides_sensitive_keys():
    from airflow.sdk.log import mask_secret

    secret = f"summary-{uuid.uuid4().hex}"
    mask_secret(secret)
    assert child_process.redact({"repo": "prism/core", "note": f"x {secret} y", "password": "p4ssw0rd-long"}) == {
        "repo": "prism/core",
        "note": "x *** y",
        "password": "***",
    }


def test_env_names_must_be_names():
    for bad in ("A B", "1ABC", "X=Y", ""):
        with pytest.raises(ValueError, match="not an environment variable name"):
            child_process.child_env([bad], environ={})
