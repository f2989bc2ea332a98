"""Commands in PRISM's npm project (update, audit, test, deploy), given as argument lists by Params."""

from __future__ import annotations

import logging
import os
import subprocess
from pathlib import Path

from airflow.sdk import Param
from airflow.sdk.exceptions import AirflowException, AirflowSkipException

log = logging.getLogger(__name__)
OUTPUT_TAIL = 4000  # what of a command's output is kept: XCom and alerts need the end, not all of it


def run_command(command: list[str], cwd: str, timeout: float = 1800) -> dict:
    """Run one command in the project directory; returns its exit code and the end of its output
    (127 when the program does not exist, as a shell would say)."""
    log.info("running %s in %s", command, cwd)
    # npm scripts can print their environment: keep Airflow's connections and variables out of it
    env = {k: v for k, v in os.environ.items() if not k.startswith(("AIRFLOW_CONN_", "AIRFLOW_VAR_"))}
    try:
        proc = subprocess.run(command, cwd=cwd, env=env, capture_output=True, text=True, timeout=timeout, check=False)
    except FileNotFoundError as exc:
        return {"command": command, "returncode": 127, "output": str(exc)}
    output = (proc.stdout + proc.stderr)[-OUTPUT_TAIL:]
    log.info("%s exited %d\n%s", command, proc.returncode, output)
    return {"command": command, "returncode": proc.returncode, "output": output}


def npm_project(params: dict) -> str | None:
    """The Param npm_project_dir: None when empty, an error when it names no directory."""
    directory = params.get("npm_project_dir")
    if directory and not Path(directory).is_dir():
        raise AirflowException(f"npm_project_dir {directory!r} is not a directory")
    return directory


def npm_audit(params: dict) -> dict:
    """The Param npm_audit_command in the npm project; skipped when none is configured."""
    directory = npm_project(params)
    if not directory:
        raise AirflowSkipException("npm audit: no npm project configured (Param npm_project_dir is empty)")
    return run_command(params["npm_audit_command"], directory)


def command_param(default: list[str], description: str) -> Param:
    """A Param holding a command as an argument list (never a shell string)."""
    return Param(default, type="array", minItems=1, items={"type": "string", "minLength": 1}, description=description)
