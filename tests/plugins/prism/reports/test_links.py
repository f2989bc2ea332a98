"""ReportOperator: a PythonOperator whose report is linked from the task in the Airflow UI."""

from __future__ import annotations

from prism.reports.links import HtmlReportLink, MarkdownReportLink, ReportOperator, report_url


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
    # Every report has its HTML page beside its Markdown: the HTML link opens it even for an older result.
    older = {"report": "s3://b/reports/d/p/x.md"}
    assert HtmlReportLink().get_link(None, ti_key=TI(older)).endswith("/prism-dashboard/reports/reports/d/p/x.html")
    assert HtmlReportLink().get_link(None, ti_key=TI({"report": "s3://b/r.txt"})) == ""


def test_a_report_operator_is_a_python_operator_with_the_links():
    from airflow.providers.standard.operators.python import PythonOperator
    from airflow.sdk import DAG, task

    def make(figures: dict, **context) -> dict:
        """Publish the report."""
        return {}

    with DAG("links", schedule=None):
        figures = task(lambda: {}, task_id="figures")()
        op = ReportOperator(task_id="report", python_callable=make, op_args=[figures], trigger_rule="all_done")
    assert [link.name for link in op.operator_extra_links] == ["Report (HTML)", "Report (Markdown)"]
    assert [link.xcom_key for link in op.operator_extra_links] == ["_link_HtmlReportLink", "_link_MarkdownReportLink"]
    assert isinstance(op, PythonOperator) and op.trigger_rule == "all_done"
    assert op.upstream_task_ids == {"figures"}  # an output in op_args wires its task upstream
    assert op.doc_md == "Publish the report."  # the callable's docstring, as @task does


def test_the_report_operator_uses_no_private_airflow_class():
    """Only public API: the standard provider's PythonOperator and the SDK's BaseOperatorLink."""
    import ast
    import inspect

    import prism.reports.links as links

    for node in ast.walk(ast.parse(inspect.getsource(links))):
        if isinstance(node, ast.ImportFrom):
            names = [*node.module.split("."), *(alias.name for alias in node.names)]
            assert not [n for n in names if n.startswith("_") and n != "__future__"], ast.unparse(node)
    private = [c for c in ReportOperator.__mro__ if c.__module__.startswith("airflow") and c.__name__.startswith("_")]
    assert private == []
