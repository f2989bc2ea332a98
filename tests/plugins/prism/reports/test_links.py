"""@report_task: a @task whose report is linked from the task in the Airflow UI."""

from __future__ import annotations

from prism.reports.links import HtmlReportLink, MarkdownReportLink, report_task, report_url


def test_report_url_goes_through_the_dashboard():
    assert report_url("s3://prism-backups/reports/prism_monthly/202611/capacity.html").endswith(
        "/prism-dashboard/reports/reports/prism_monthly/202611/capacity.html"
    )
    assert report_url(None) == "" and report_url("file:///x") == ""


def test_links_read_the_tasks_result():
    class TI:
        task_id, map_index = "r", -1

        def __init__(self, value):
            self.value = value

        def xcom_pull(self, task_ids, map_indexes):
            return self.value

    result = {"report": "s3://b/reports/d/p/x.md", "report_html": "s3://b/reports/d/p/x.html"}
    assert HtmlReportLink().get_link(None, ti_key=TI(result)).endswith("/prism-dashboard/reports/reports/d/p/x.html")
    assert MarkdownReportLink().get_link(None, ti_key=TI(result)).endswith("/reports/d/p/x.md")
    assert HtmlReportLink().get_link(None, ti_key=TI(None)) == ""  # failed or skipped: no link


def test_report_task_is_a_task_with_the_links():
    from airflow.sdk import DAG

    with DAG("links", schedule=None):

        @report_task(trigger_rule="all_done")
        def make() -> dict:
            return {}

        op = make().operator
    assert [link.name for link in op.operator_extra_links] == ["Report (HTML)", "Report (Markdown)"]
    assert op.trigger_rule == "all_done" and op.custom_operator_name == "@report_task"
