"""npm project commands: argument lists run in the project directory, their exit codes reported."""

from __future__ import annotations

import pytest
from airflow.sdk.exceptions import AirflowException, AirflowSkipException
from airflow.sdk.definitions.param import ParamValidationError

from prism_cloudflare.commands import command_param, npm_audit, npm_project, run_command


def test_a_command_runs_in_the_project_and_keeps_the_end_of_its_output(tmp_path):
    (tmp_path / "package.json").write_text("{}")
    assert run_command(["ls"], str(tmp_path)) == {"command": ["ls"], "returncode": 0, "output": "package.json\n"}
    failed = run_command(["sh", "-c", "yes line | head -2000; exit 3"], str(tmp_path))
    assert failed["returncode"] == 3 and len(failed["output"]) == 4000 and failed["output"].endswith("line\n")


def test_a_missing_program_is_exit_code_127(tmp_path):
    out = run_command(["no-such-program-prism"], str(tmp_path))
    assert out["returncode"] == 127 and "no-such-program-prism" in out["output"]


def test_the_project_dir_param(tmp_path):
    assert npm_project({"npm_project_dir": None}) is None
    assert npm_project({"npm_project_dir": str(tmp_path)}) == str(tmp_path)
    with pytest.raises(AirflowException, match="not a directory"):
        npm_project({"npm_project_dir": str(tmp_path / "absent")})


def test_npm_audit_skips_without_a_project_and_reports_findings_with_one(tmp_path):
    with pytest.raises(AirflowSkipException, match="no npm project configured"):
        npm_audit({"npm_project_dir": None, "npm_audit_command": ["true"]})
    assert npm_audit({"npm_project_dir": str(tmp_path), "npm_audit_command": ["false"]})["returncode"] == 1


def test_a_command_param_is_a_non_empty_argument_list():
    param = command_param(["npm", "test"], "The test command.")
    assert param.resolve() == ["npm", "test"] and param.description == "The test command."
    for bad in ([], [""], "npm test"):
        with pytest.raises(ParamValidationError):
            param.resolve(bad)


def test_airflow_connections_and_variables_stay_out_of_the_command_environment(tmp_path, monkeypatch):
    import sys

    from prism_cloudflare.commands import run_command

    monkeypatch.setenv("AIRFLOW_CONN_CLOUDFLARE_DEFAULT", '{"password": "secret-token"}')
    monkeypatch.setenv("AIRFLOW_VAR_PRISM_CONFIG", "{}")
    monkeypatch.setenv("PRISM_VISIBLE", "yes")
    result = run_command([sys.executable, "-c", "import os; print(sorted(k for k in os.environ if 'PRISM' in k or 'AIRFLOW_' in k))"],
                         str(tmp_path))
    assert result["returncode"] == 0 and "PRISM_VISIBLE" in result["output"]
    assert "AIRFLOW_CONN_" not in result["output"] and "AIRFLOW_VAR_" not in result["output"]
