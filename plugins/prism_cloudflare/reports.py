"""Reports: Markdown written to the backup bucket under reports/, keyed by DAG and period.

A report names the window it covers and, for point-in-time figures, when they were captured, so a
report made in a backfill never passes for one made at the time.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime

from prism_cloudflare.config import runtime_config
from prism_cloudflare.notifiers import send_alert

REPORTS_PREFIX = "reports"


def report_key(dag_id: str, name: str, period: str) -> str:
    """reports/<dag_id>/<period>/<name>.md, e.g. reports/prism_monthly/202611/performance.md"""
    return f"{REPORTS_PREFIX}/{dag_id}/{period}/{name}.md"


def markdown(title: str, window: tuple[datetime, datetime], sections: dict[str, list[str] | str],
             captured: dict | None = None) -> str:
    """A report: title, the window, optional capture labels, then sections of lines."""
    lines = [f"# {title}", "", f"Window: {window[0].isoformat()} to {window[1].isoformat()} (UTC)"]
    if captured:
        lines.append(f"Captured at {captured['captured_at']}" + (" (inside a backfill: live figures are from the "
                                                                   "capture time, not the window)" if captured.get("in_backfill") else ""))
    for heading, body in sections.items():
        lines += ["", f"## {heading}", ""]
        lines += body if isinstance(body, list) else [body]
    return "\n".join(lines) + "\n"


def publish_report(bucket: str, key: str, text: str, aws_conn_id: str = "aws_default") -> str:
    from airflow.providers.amazon.aws.hooks.s3 import S3Hook

    S3Hook(aws_conn_id=aws_conn_id).load_string(text, key=key, bucket_name=bucket, replace=True)
    return f"s3://{bucket}/{key}"


@dataclass
class Report:
    """A report ready to deliver: where it goes (reports/<dag_id>/<period>/<name>.md), its text, the
    alerts its figures call for (send_alert keyword arguments) and what its task returns besides."""

    name: str
    period: str
    text: str
    summary: dict = field(default_factory=dict)
    alerts: list[dict] = field(default_factory=list)


def deliver(dag_id: str, report: Report) -> dict:
    """Send the report's alerts, publish it to the config's bucket, and return its address with its summary."""
    for alert in report.alerts:
        send_alert(**alert)
    url = publish_report(runtime_config()["backups"]["bucket"], report_key(dag_id, report.name, report.period), report.text)
    return {"report": url, **report.summary}


# ---- building blocks of report text ------------------------------------------------------------

def pulled(context, task_id: str):
    """What a task of this run returned (None when it was skipped or returned nothing)."""
    return context["ti"].xcom_pull(task_ids=task_id)


def result_rows(result: dict | None) -> list[dict]:
    """The rows of a D1SqlOperator result, [] when it has none (or the task did not run)."""
    return (result or {}).get("rows") or []


def number(n) -> str:
    """1234567 -> '1,234,567', 2.5 -> '2.50', anything else as str()."""
    if isinstance(n, float) and n.is_integer():
        n = int(n)
    return f"{n:,}" if isinstance(n, int) else f"{n:,.2f}" if isinstance(n, float) else str(n)


def traffic_lines(traffic: dict) -> list[str]:
    """Report lines for a traffic_in() result: requests, errors, success rate, latency, and its note."""
    if not traffic.get("available"):
        return [f"- Traffic figures {traffic['note']}"]
    wall = traffic.get("wall_time_ms") or {}
    lines = [f"- Window queried: {traffic['window']['start']} to {traffic['window']['end']}",
             f"- Total requests: {number(traffic['requests'])}",
             f"- Errors: {number(traffic['errors'])} (error rate {traffic['error_rate_percent']}%)",
             f"- Success rate: {round(100 - traffic['error_rate_percent'], 4)}%",
             f"- P95 latency: {wall.get('p95', 'n/a')} ms (p50 {wall.get('p50', 'n/a')} ms, p99 {wall.get('p99', 'n/a')} ms)"]
    return lines + ([f"- Note: {traffic['note']}"] if traffic.get("note") else [])


def checklist_item(done: bool | None, text: str) -> str:
    """A checklist line: [x] done, [!] needs attention, [ ] not done (skipped)."""
    return f"- [{'x' if done else '!' if done is False else ' '}] {text}"
