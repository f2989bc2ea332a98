"""The npm tasks of the maintenance calendar: prism_monthly's day-7 dependency update (update, audit,
test, deploy) and the npm audit of the monthly security audit and the quarterly reviews.

The commands come from the deployment's config only (maintenance.commands); the Param
`run_dependency_update` only switches the update on.
"""

from __future__ import annotations

from airflow.sdk.exceptions import AirflowException, AirflowSkipException

from prism.maintenance import commands
from prism.refusals import refuse
from prism.runtime import in_backfill
from prism.settings.config import runtime_config

UPDATE_ACTION = "to update the npm dependencies"


def enabled(**context) -> str:
    """Off by default; on, it needs the config's npm project. Checked before anything changes."""
    if not context["params"]["run_dependency_update"]:
        raise AirflowSkipException(
            "the dependency update is off (Param run_dependency_update is false, the default): set "
            "npm.project_dir in the config and trigger a run with run_dependency_update=true"
        )
    if in_backfill(context):
        raise AirflowSkipException("the dependency update deploys the present, so it is skipped inside a backfill")
    directory = commands.npm_project(runtime_config(), UPDATE_ACTION)
    if not directory:
        raise refuse(
            UPDATE_ACTION,
            "run_dependency_update is true but npm.project_dir is not set in the config "
            "(include/prism.config.json or the prism_config Variable)",
        )
    return directory


def npm_step(project: str, step: str, gate: bool) -> dict:
    """The config's npm.<step>_command; with gate=True a non-zero exit fails it (and stops the deploy)."""
    result = commands.run_step(runtime_config(), step, project)
    if gate and result["returncode"] != 0:
        why = "tests failed after the dependency update; not deploying" if step == "test" else "stopping"
        raise AirflowException(
            f"{' '.join(result['command'])} exited {result['returncode']}: {why}\n{result['output'][-1500:]}"
        )
    return result


def npm_audit() -> dict:
    """The config's npm.audit_command in npm.project_dir; skipped when there is none. Never from a Param."""
    return commands.npm_audit(runtime_config())
