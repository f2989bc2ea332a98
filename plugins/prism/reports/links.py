"""`ReportOperator`: a PythonOperator whose callable publishes a report (it returns reports.deliver()'s
result), with extra links to the report on the task in the Airflow UI: **Report (HTML)**, the report's
page (every report has one, rendered from its Markdown), and **Report (Markdown)**, its text.

The links open the report through the dashboard's app (`/prism-dashboard/reports/<key>`), behind
Airflow's login, so no bucket credentials or presigned URLs reach a browser. Airflow computes an
operator's extra links on the worker when the task ends and keeps each as an XCom
(`_link_<class name>`), which the UI reads; a task that published nothing (failed, skipped) has no
link. Only public API: the standard provider's PythonOperator and the SDK's BaseOperatorLink.
"""

from __future__ import annotations

from urllib.parse import quote

from airflow.configuration import conf
from airflow.providers.standard.operators.python import PythonOperator
from airflow.sdk import BaseOperatorLink

DASHBOARD_PREFIX = "/prism-dashboard"


def report_url(s3_url: str | None) -> str:
    """The dashboard's address of a report from its s3:// URL ('' without one)."""
    if not s3_url or not s3_url.startswith("s3://"):
        return ""
    key = s3_url[len("s3://") :].partition("/")[2]
    try:
        base = (conf.get("api", "base_url", fallback="") or "").rstrip("/")
    except Exception:  # noqa: BLE001 - no config: a path relative to the UI's host
        base = ""
    return f"{base}{DASHBOARD_PREFIX}/reports/{quote(key)}"


class _ReportLink(BaseOperatorLink):
    result_key = "report"

    def get_link(self, operator, *, ti_key) -> str:
        # On the worker, ti_key is the running task instance: its own result is at hand.
        try:
            result = ti_key.xcom_pull(task_ids=ti_key.task_id, map_indexes=ti_key.map_index)
        except Exception:  # noqa: BLE001 - no result: no link
            return ""
        return report_url(self.url_of(result)) if isinstance(result, dict) else ""

    def url_of(self, result: dict) -> str | None:
        return result.get(self.result_key)


class HtmlReportLink(_ReportLink):
    name = "Report (HTML)"
    result_key = "report_html"

    def url_of(self, result: dict) -> str | None:
        # Every Markdown report has its page beside it (reports.markdown), named the same with .html.
        markdown = result.get("report")
        return result.get(self.result_key) or (
            markdown[: -len(".md")] + ".html" if isinstance(markdown, str) and markdown.endswith(".md") else None
        )


class MarkdownReportLink(_ReportLink):
    name = "Report (Markdown)"
    result_key = "report"


class ReportOperator(PythonOperator):
    """A PythonOperator for a callable returning reports.deliver()'s result; it links that report.
    Takes PythonOperator's arguments (`op_args` may hold other tasks' outputs). The callable's
    docstring, if any, is the task's doc."""

    operator_extra_links = (HtmlReportLink(), MarkdownReportLink())
    ui_color = "#e0f2fe"

    def __init__(self, *, python_callable, **kwargs) -> None:
        if python_callable.__doc__:
            kwargs.setdefault("doc_md", python_callable.__doc__)
        super().__init__(python_callable=python_callable, **kwargs)
