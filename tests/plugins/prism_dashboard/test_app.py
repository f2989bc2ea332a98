"""The dashboard's app inside Airflow's own API app (in-process, the real auth manager): nothing
without Airflow's login, the page and the reports with it."""

from __future__ import annotations

import json
import uuid

import pytest


@pytest.fixture(scope="module")
def client(airflow_db):
    from airflow.api_fastapi.app import create_app
    from fastapi.testclient import TestClient

    return TestClient(create_app(), base_url="http://127.0.0.1")


def token(role: str | None) -> str:
    from airflow.api_fastapi.app import get_auth_manager
    from airflow.api_fastapi.auth.managers.simple.user import SimpleAuthManagerUser

    return get_auth_manager().generate_jwt(SimpleAuthManagerUser(username="someone", role=role))


@pytest.mark.parametrize("path", ["/prism-dashboard/", "/prism-dashboard/data.json", "/prism-dashboard/reports/x/y.md"])
def test_an_unauthenticated_request_is_refused_with_no_data(client, path):
    client.cookies.clear()
    resp = client.get(path)
    assert resp.status_code == 401 and resp.json() == {"detail": "Not authenticated"}
    forged = client.get(path, headers={"Authorization": "Bearer not-a-jwt"})
    assert forged.status_code == 403 and forged.json() == {"detail": "Invalid JWT token"}
    client.cookies.set("_token", token(None))  # a user with no role may read nothing
    assert client.get(path).status_code == 403
    client.cookies.clear()


def test_the_page_with_airflows_login_cookie(client):
    client.cookies.set("_token", token("viewer"))
    try:
        resp = client.get("/prism-dashboard/")
        assert resp.status_code == 200 and resp.headers["content-type"].startswith("text/html")
        assert "<h1>PRISM dashboard</h1>" in resp.text and "this page never calls Cloudflare" in resp.text
        data = client.get("/prism-dashboard/data.json").json()
        assert set(data) >= {"health", "usage", "backups", "reports", "alerts"}
    finally:
        client.cookies.clear()


def test_reports_are_served_from_the_bucket(client, s3, monkeypatch):
    bucket = f"reports-{uuid.uuid4().hex[:10]}"
    s3.create_bucket(bucket_name=bucket)
    monkeypatch.setenv("AIRFLOW_VAR_PRISM_CONFIG", json.dumps({"backups": {"bucket": bucket}}))
    s3.load_string(
        "<!doctype html><p>capacity</p>", key="reports/prism_monthly/202611/capacity.html", bucket_name=bucket
    )
    s3.load_string("# capacity\n", key="reports/prism_monthly/202611/capacity.md", bucket_name=bucket)
    s3.load_string("secret", key="daily/20261101/manifest.json", bucket_name=bucket)
    headers = {"Authorization": f"Bearer {token('viewer')}"}
    html = client.get("/prism-dashboard/reports/prism_monthly/202611/capacity.html", headers=headers)
    assert (
        html.status_code == 200
        and html.headers["content-type"] == "text/html; charset=utf-8"
        and "capacity" in html.text
    )
    md = client.get("/prism-dashboard/reports/reports/prism_monthly/202611/capacity.md", headers=headers)
    assert (
        md.status_code == 200
        and md.headers["content-type"] == "text/plain; charset=utf-8"
        and md.text == "# capacity\n"
    )
    assert client.get("/prism-dashboard/reports/prism_monthly/202611/nothing.md", headers=headers).status_code == 404
    # Only reports/: a backup's objects are not reachable through the dashboard.
    assert client.get("/prism-dashboard/reports/..%2Fdaily/20261101/manifest.json", headers=headers).status_code in (
        400,
        404,
    )


def test_report_files_are_never_sniffed_scripted_or_rendered_as_another_type(client, s3, monkeypatch):
    bucket = f"reports-{uuid.uuid4().hex[:10]}"
    s3.create_bucket(bucket_name=bucket)
    monkeypatch.setenv("AIRFLOW_VAR_PRISM_CONFIG", json.dumps({"backups": {"bucket": bucket}}))
    hostile = "<script>alert(1)</script><svg onload=alert(2)>"
    for key in (
        "reports/x/1/r.html",
        "reports/x/1/r.md",
        "reports/x/1/r.svg",
        "reports/x/1/r.js",
        "reports/x/1/noext",
        "reports/x/1/R.MD",
    ):
        s3.load_string(hostile, key=key, bucket_name=bucket)
    headers = {"Authorization": f"Bearer {token('viewer')}"}

    def get(name: str):
        resp = client.get(f"/prism-dashboard/reports/x/1/{name}", headers=headers)
        assert resp.status_code == 200 and resp.headers["x-content-type-options"] == "nosniff"
        csp = resp.headers["content-security-policy"]
        assert "default-src 'none'" in csp and "sandbox" in csp and "script-src" not in csp, csp
        return resp

    assert get("r.html").headers["content-type"] == "text/html; charset=utf-8"
    for name in ("r.md", "R.MD"):  # Markdown is text, never HTML
        assert get(name).headers["content-type"] == "text/plain; charset=utf-8"
    for name in ("r.svg", "r.js", "noext"):  # not a report format: a download, never rendered
        resp = get(name)
        assert (
            resp.headers["content-type"] == "application/octet-stream"
            and resp.headers["content-disposition"] == "attachment"
        )
    # A refusal carries the same headers.
    missing = client.get("/prism-dashboard/reports/x/1/%3Cscript%3E.md", headers=headers)
    assert missing.status_code == 404 and missing.headers["x-content-type-options"] == "nosniff"
    assert missing.headers["content-type"] == "application/json"
