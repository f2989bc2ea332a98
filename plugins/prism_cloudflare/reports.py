"""Reports: Markdown written to the backup bucket under reports/, keyed by DAG and period.

A report names the window it covers and, for point-in-time figures, when they were captured, so a
report made in a backfill never passes for one made at the time.
"""

from __future__ import annotations

from datetime import datetime

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
