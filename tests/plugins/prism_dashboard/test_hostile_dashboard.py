"""End to end: a Worker whose /metrics answers hostile strings (localflare's `worker_metrics` fault), a
real prism_health_monitor run that records them, hostile alerts, reports and backup results recorded
on that run, then the dashboard and the reports as Airflow's API app serves them (in process, the
real auth manager and login). Everything shows as text; nothing of it is markup, a link or a script."""

from __future__ import annotations

import json
import sys
import uuid
from pathlib import Path
from urllib.parse import quote, urljoin

import pytest
import requests

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
sys.path.insert(0, str(HERE.parents[1] / "dags"))
from hostile import ALL, HOSTILE, LONG, assert_inert, text_of  # noqa: E402

METRICS = {
    "window": {"start": ALL, "end": HOSTILE["newlines"]},
    "requests": {"success_rate": HOSTILE["script"], "error_rate": 99.5},
    "performance": {"p50_latency_ms": HOSTILE["attr"], "p99_latency_ms": HOSTILE["style"]},
    "cache": {
        "hit_rate": HOSTILE["cdata"],
        "entries": HOSTILE["single"],
        "size_bytes": HOSTILE["js_url"],
        "evictions": HOSTILE["unicode"],
        "hits": HOSTILE["template"],
        "misses": LONG,
    },
    "tokens": {"saved": HOSTILE["entity"], "cost_saved_usd": HOSTILE["attr"]},
}
REPORT_NAME = "\"><img src=x onerror=alert(1)> javascript:alert(1) 'ü'"


class RunTaskInstance:
    """A finished task instance of a real run, for record(): its XComs in the metadata DB."""

    def __init__(self, run, task_id: str):
        self.dag_id, self.run_id, self.task_id, self.map_index = run.dag_id, run.run_id, task_id, -1

    def xcom_pull(self, task_ids: str, key: str, map_indexes: int = -1):
        from airflow.models.xcom import XComModel
        from airflow.utils.session import create_session

        with create_session() as session:
            row = session.scalars(
                XComModel.get_many(run_id=self.run_id, dag_ids=self.dag_id, task_ids=task_ids, key=key)
            ).first()
            return XComModel.deserialize_value(row) if row is not None else None

    def xcom_push(self, key: str, value) -> None:
        from airflow.models.xcom import XComModel

        XComModel.set(key, value, dag_id=self.dag_id, task_id=self.task_id, run_id=self.run_id)


@pytest.fixture(scope="module")
def seeded(tmp_path_factory, airflow_db, s3_server):
    """The run and what it recorded; the page's client logged in as a viewer."""
    from airflow.api_fastapi.app import create_app, get_auth_manager
    from airflow.api_fastapi.auth.managers.simple.user import SimpleAuthManagerUser
    from airflow.sdk.execution_time.context import set_current_context
    from dagtest import load_dag
    from fastapi.testclient import TestClient

    from localflare import testing

    mp = pytest.MonkeyPatch()
    server = testing.start(tmp_path_factory.mktemp("lf-hostile"), "--seed", "demo", "--mutation-lag", "0.2")
    try:
        conn = {
            "conn_type": "generic",
            "password": server.token,
            "extra": {"account_id": server.account_id, "base_url": server.api_url, "budget": {"bulk_rps": 0}},
        }
        mp.setenv("AIRFLOW_CONN_CLOUDFLARE_DEFAULT", json.dumps(conn))
        mp.setenv("AIRFLOW_CONN_PRISM_WORKER", json.dumps({"conn_type": "http", "host": server.worker_url}))
        mp.setenv(
            "AIRFLOW_CONN_AWS_DEFAULT",
            json.dumps(
                {
                    "conn_type": "aws",
                    "login": "testing",
                    "password": "testing",
                    "extra": {"endpoint_url": s3_server.endpoint, "region_name": "us-east-1"},
                }
            ),
        )
        bucket = f"hostile-{uuid.uuid4().hex[:12]}"
        s3_server.create_bucket(bucket)
        mp.setenv("AIRFLOW_VAR_PRISM_CONFIG", json.dumps({"backups": {"bucket": bucket}}))
        server.admin("POST", "faults", [{"kind": "worker_metrics", "set": json.dumps(METRICS)}])
        assert (
            requests.get(f"{server.worker_url}/metrics", timeout=10).json()["requests"]["success_rate"]
            == HOSTILE["script"]
        )

        run = load_dag("prism_health_monitor").test()
        assert run.state == "success"
        ti = RunTaskInstance(run, "usage")
        from prism.alerts import send_alert
        from prism.monitoring.dashboard_records import record
        from prism.reports.charts import bar_chart
        from prism.reports.markdown import html_key, publish_report, report_key
        from prism.reports.pages import chart, render

        send_alert(
            ALL, "\n".join(HOSTILE.values()), severity=HOSTILE["attr"], investigations=[HOSTILE["script"]], ti=ti
        )
        key = report_key(run.dag_id, REPORT_NAME, "209912")
        text = f"# {ALL}\n\n" + "\n".join(f"- {v}" for v in HOSTILE.values()) + "\n\n[x](javascript:alert(1))\n"
        charts = [chart(ALL, bar_chart(ALL, [(v, 1.0) for v in HOSTILE.values()]), [(ALL, ALL)])]
        with set_current_context({"ti": ti}):
            publish_report(bucket, html_key(key), render(text, charts))
            publish_report(bucket, key, text, title=ALL, has_html=True)
        record(
            "backup",
            {
                "cadence": "daily",
                "period": HOSTILE["attr"],
                "status": HOSTILE["script"],
                "at": "2019-01-01T00:00:00+00:00",
                "captured_at": HOSTILE["style"],
                "bytes": HOSTILE["js_url"],
                "method": ALL,
                "problems": [HOSTILE["script"], LONG],
            },
            ti=ti,
        )

        client = TestClient(create_app(), base_url="http://127.0.0.1")
        client.headers["Authorization"] = "Bearer " + get_auth_manager().generate_jwt(
            SimpleAuthManagerUser(username="viewer", role="viewer")
        )
        yield {"run": run, "client": client, "bucket": bucket, "key": key}
    finally:
        mp.undo()
        server.stop()


def test_the_worker_metrics_and_every_record_show_as_text(seeded):
    resp = seeded["client"].get("/prism-dashboard/")
    assert resp.status_code == 200
    doc = assert_inert(resp.text)
    text = text_of(doc)
    # The Worker's strings, where its numbers go (the Found of issue 11).
    for value in (
        HOSTILE["script"] + "%",
        HOSTILE["cdata"] + "%",
        f"{HOSTILE['attr']} / {HOSTILE['style']} ms",
        HOSTILE["single"],
        HOSTILE["js_url"],
        HOSTILE["unicode"],
        HOSTILE["entity"],
        "$" + HOSTILE["attr"],
        f"Window {ALL} to {HOSTILE['newlines']}",
    ):
        assert value in text, value
    assert f"{HOSTILE['template']} hits" in text  # a template expression in data stays as written, never evaluated
    # The alert, the report and the backup result recorded on the run.
    assert ALL in text and HOSTILE["long"][:500] in text
    # The usage task's own alert, whose body carries the Worker's window strings.
    assert f"the Worker's /metrics over {ALL} to {HOSTILE['newlines']}" in text
    hrefs = [a["href"] for t, a in doc.tags if t == "a"]
    assert len(hrefs) >= 2 and all(h.startswith("reports/") and ":" not in h for h in hrefs), hrefs
    # The report's name only inside its percent-encoded links: the title, "HTML" and "Markdown".
    assert sum(quote(REPORT_NAME) in h for h in hrefs) == 3
    data = seeded["client"].get("/prism-dashboard/data.json")
    assert data.headers["content-type"] == "application/json" and data.headers["x-content-type-options"] == "nosniff"
    assert data.json()["usage"]["requests"]["success_rate"] == HOSTILE["script"]


def test_the_page_allows_no_script_even_if_one_slipped_through(seeded):
    resp = seeded["client"].get("/prism-dashboard/")
    csp = resp.headers["content-security-policy"]
    assert "default-src 'none'" in csp and "script-src" not in csp and "frame-ancestors 'self'" in csp
    assert (
        resp.headers["x-content-type-options"] == "nosniff"
        and resp.headers["content-type"] == "text/html; charset=utf-8"
    )


def test_the_reports_linked_from_the_page_are_served_inert(seeded):
    client = seeded["client"]
    page = client.get("/prism-dashboard/")
    hrefs = [a["href"] for t, a in assert_inert(page.text).tags if t == "a" and "209912" in a["href"]]
    assert len(hrefs) == 3 and len(set(hrefs)) == 2, hrefs  # the title and "HTML" open the same page
    md, html = (
        client.get(urljoin("http://127.0.0.1/prism-dashboard/", h))
        for h in sorted(set(hrefs), key=lambda h: h.endswith(".html"))
    )
    for resp in (md, html):
        assert resp.status_code == 200
        assert resp.headers["x-content-type-options"] == "nosniff"
        csp = resp.headers["content-security-policy"]
        assert "default-src 'none'" in csp and "sandbox" in csp and "script-src" not in csp
    assert md.headers["content-type"] == "text/plain; charset=utf-8" and HOSTILE["script"] in md.text
    assert html.headers["content-type"] == "text/html; charset=utf-8"
    doc = assert_inert(html.text, allowed_tags={"meta", "svg"})
    assert not [a for t, a in doc.tags if t == "a"] and HOSTILE["script"] in text_of(doc)
