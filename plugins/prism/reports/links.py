"""`@report_task`: a `@task` that publishes a report (it returns reports.deliver()'s result), with
extra links to the report on the task in the Airflow UI.

The links open the report through the dashboard's app (`/prism-dashboard/reports/<key>`), behind
Airflow's login, so no bucket credentials or presigned URLs reach a browser. Airflow computes an
extra link on the worker when the task ends and keeps it as an XCom; a task that published nothing
(failed, skipped) has no link.
"""

from __future__ import annotations

from urllib.parse import quote

from airflow.providers.standard.decorators.python import _PythonDecoratedOperator
from airflow.sdk import BaseOperatorLink
from airflow.sdk.bases.decorator import task_decorator_factory

DASHBOARD_PREFIX = "/prism-dashboard"


def report_url(s3_url: str | None) -> str:
    """The dashboard's address of a report from its s3:// URL ('' without one)."""
    if not s3_url or not s3_url.startswith("s3://"):
        return ""
    key = s3_url[len("s3://") :].partition("/")[2]
    try:
        from airflow.configuration import conf

        base = (conf.get("api", "base_url", fallback="") or "").rstrip("/")
    except Exception:  # noqa: BLE001 - no config: a path relative to the UI's host
        base = ""
    return f"{base}{DASHBOARD_PREFIX}/reports/{quote(key)}"


class _ReportLink(BaseOperatorLink):
    result_key = "report"

    def get_link(self, operator, *, ti_key) -> str:
        try:
            result = ti_key.xcom_pull(task_ids=ti_key.task_id, map_indexes=ti_key.map_index)
        except Exception:  # noqa: BLE001 - no result: no link
            return ""
        return report_url((result or {}).get(self.result_key)) if isinstance(result, dict) else ""


class HtmlReportLink(_ReportLink):
    name = "Report (HTML)"
    result_key = "report_html"


class MarkdownReportLink(_ReportLink):
    name = "Report (Markdown)"
    result_key = "report"


class _ReportDecoratedOperator(_PythonDecoratedOperator):
    operator_extra_links = (HtmlReportLink(), MarkdownReportLink())
    custom_operator_name = "@report_task"


def report_task(python_callable=None, **kwargs):
    """`@task` for a task returning reports.deliver()'s result; takes @task's arguments."""
    return task_decorator_factory(
        python_callable=python_callable, decorated_operator_class=_ReportDecoratedOperator, **kwargs
    )
