"""Commands in PRISM's npm project (update, audit, test, deploy).

What runs, where and with which extra environment comes only from the deployment's config, section
`npm` (include/prism.config.json, the `prism_config` Variable): never from a trigger's Params, which
anyone allowed to trigger a DAG can set. Each command is an argument list, never a shell string, and
runs through child_process (allow-listed environment, redacted output).
"""

from __future__ import annotations

import logging
from pathlib import Path

from airflow.sdk.exceptions import AirflowSkipException

from prism import child_process
from prism.refusals import refuse

log = logging.getLogger(__name__)
OUTPUT_TAIL = child_process.OUTPUT_TAIL
TIMEOUT = 1800  # seconds a step may take; `npm update` on a cold cache is slow
STEPS = ("update", "audit", "test", "deploy")


def run_command(command: list[str], cwd: str, env_names=(), timeout: float = TIMEOUT) -> dict:
    """Run one command in the project directory; returns the command, its exit code and the end of its
    output (127 when the program does not exist, as a shell would say), all redacted."""
    done = child_process.run(list(command), cwd, env_names=env_names, timeout=timeout)
    output = child_process.tail(done.output)
    log.info("%s exited %d\n%s", done.argv, done.returncode, output)
    return {"command": done.argv, "returncode": done.returncode, "output": output}


def npm_project(config: dict, action: str = "to run npm") -> str | None:
    """The config's npm.project_dir: None when unset; a refusal when it names no directory."""
    directory = (config.get("npm") or {}).get("project_dir")
    if directory and not Path(directory).is_dir():
        raise refuse(action, f"npm.project_dir {directory!r} (in the config) is not a directory")
    return directory or None


def run_step(config: dict, step: str, project: str) -> dict:
    """The config's npm.<step>_command in the project, with the names in npm.env passed through."""
    npm = config["npm"]
    return run_command(npm[f"{step}_command"], project, env_names=npm.get("env") or ())


def npm_audit(config: dict) -> dict:
    """npm.audit_command in the npm project; skipped when none is configured."""
    directory = npm_project(config, "to run npm audit")
    if not directory:
        raise AirflowSkipException(
            "npm audit: no npm project configured (set npm.project_dir in "
            "include/prism.config.json or the prism_config Variable)"
        )
    return run_step(config, "audit", directory)
