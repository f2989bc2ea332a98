"""The dashboard in a real Airflow (API server, SimpleAuthManager) filled by demo runs
(scripts/dashboard_fill.py against localflare and the S3 stand-in), seen by a real headless browser:
Debian's Chromium driven through chromedriver (selenium). The page must show what the seeded
stand-ins hold; screenshots go to .test-artifacts/.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
import time
from pathlib import Path

import pytest
import requests

ROOT = Path(__file__).resolve().parents[2]
ARTIFACTS = ROOT / ".test-artifacts"
PASSWORD = "prism-browser-test"
FAST = ("--mutation-lag", "0.2", "--export-min-seconds", "0.3", "--export-poll-timeout", "5")


def _install_chromium() -> tuple[str, str]:
    """Debian's chromium and chromedriver, installed with apt-get when missing; a clear failure when
    they cannot be (never a skip)."""
    found = shutil.which("chromium"), shutil.which("chromedriver")
    if all(found):
        return found  # type: ignore[return-value]
    env = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
    log = []
    for cmd in (
        ["apt-get", "install", "-y", "-q", "chromium", "chromium-driver"],
        ["apt-get", "update", "-q"],
        ["apt-get", "install", "-y", "-q", "chromium", "chromium-driver"],
    ):
        try:
            proc = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=900)
            log.append(f"$ {' '.join(cmd)} -> {proc.returncode}\n{proc.stderr[-800:]}")
        except (OSError, subprocess.TimeoutExpired) as exc:
            log.append(f"$ {' '.join(cmd)} -> {exc}")
        found = shutil.which("chromium"), shutil.which("chromedriver")
        if all(found):
            return found  # type: ignore[return-value]
    pytest.fail(
        "the dashboard's browser test needs Debian's chromium and chromium-driver, and installing them with "
        "apt-get failed (install them: apt-get install -y chromium chromium-driver):\n" + "\n".join(log)
    )


@pytest.fixture(scope="module")
def browser():
    from selenium import webdriver
    from selenium.webdriver.chrome.options import Options
    from selenium.webdriver.chrome.service import Service

    chromium, chromedriver = _install_chromium()
    options = Options()
    options.binary_location = chromium
    for arg in (
        "--headless=new",
        "--no-sandbox",
        "--disable-dev-shm-usage",
        "--disable-gpu",
        "--window-size=1440,1000",
        "--hide-scrollbars",
    ):
        options.add_argument(arg)
    driver = webdriver.Chrome(service=Service(chromedriver), options=options)
    driver.set_page_load_timeout(120)
    yield driver
    driver.quit()


@pytest.fixture(scope="module")
def stack(tmp_path_factory):
    """localflare (demo seed), the S3 stand-in, the demo runs, then `airflow api-server` on their DB."""
    sys.path.insert(0, str(ROOT / "scripts"))
    from stack import BUCKET, S3Server, airflow_env, stop_group

    from localflare import testing

    tmp = tmp_path_factory.mktemp("dashboard")
    lf = testing.start(tmp / "lf", "--seed", "demo", *FAST)
    s3 = S3Server(testing.free_port(), tmp / "s3.log")
    api = None
    try:
        s3.create_bucket(BUCKET)
        port = testing.free_port()
        home = tmp / "airflow"
        home.mkdir()
        (home / "simple_auth_manager_passwords.json.generated").write_text(json.dumps({"admin": PASSWORD}))
        env = {**airflow_env(home, lf, s3.endpoint, port), "PRISM_TASK_RETRIES": "0"}
        env.pop("AIRFLOW_VAR_PRISM_CONFIG", None)
        fill = subprocess.run(
            [sys.executable, str(ROOT / "scripts" / "dashboard_fill.py"), f"{lf.base_url}/__localflare"],
            env=env,
            cwd=ROOT,
            capture_output=True,
            text=True,
            timeout=1500,
        )
        (tmp / "fill.log").write_text(fill.stdout + fill.stderr)
        assert fill.returncode == 0, fill.stdout[-3000:] + fill.stderr[-3000:]
        lines = [line for line in fill.stdout.splitlines() if line.startswith("prism_")]
        assert len(lines) == 10 and sum(" failed " in line for line in lines) == 1, fill.stdout
        log = open(tmp / "api-server.log", "ab")
        api = subprocess.Popen(
            [sys.executable, "-m", "airflow", "api-server", "--port", str(port)],
            env=env,
            cwd=ROOT,
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        base = f"http://127.0.0.1:{port}"
        deadline = time.monotonic() + 180
        while True:
            assert api.poll() is None, (tmp / "api-server.log").read_text()[-3000:]
            try:
                if requests.get(f"{base}/api/v2/monitor/health", timeout=2).status_code == 200:
                    break
            except requests.RequestException:
                pass
            assert time.monotonic() < deadline, "the API server did not start"
            time.sleep(1)
        yield {"base": base, "lf": lf, "s3": s3, "bucket": BUCKET, "fill": fill.stdout}
    finally:
        if api is not None:
            stop_group(api)
        s3.stop()
        lf.stop()


def _s3(stack):
    import boto3

    return boto3.client(
        "s3",
        endpoint_url=stack["s3"].endpoint,
        aws_access_key_id="testing",
        aws_secret_access_key="testing",
        region_name="us-east-1",
    )


def _size(n: float) -> str:
    from prism_dashboard.page import _bytes

    return _bytes(n)


def test_an_unauthenticated_request_to_the_dashboard_is_refused(stack):
    for path in (
        "/prism-dashboard/",
        "/prism-dashboard/data.json",
        "/prism-dashboard/reports/prism_monthly/x/capacity.html",
    ):
        resp = requests.get(stack["base"] + path, timeout=10, allow_redirects=False)
        assert resp.status_code == 401 and resp.json() == {"detail": "Not authenticated"}, path
        assert "prism" not in resp.text.lower()
    plugins = requests.get(stack["base"] + "/api/v2/plugins", timeout=10)
    assert plugins.status_code == 401  # even the plugin listing needs a login


def test_the_dashboard_in_the_airflow_ui_shows_the_seeded_data(stack, browser):
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support import expected_conditions as ec
    from selenium.webdriver.support.ui import WebDriverWait

    from localflare import traffic
    from localflare.testing import Api

    base, wait = stack["base"], WebDriverWait(browser, 90)
    ARTIFACTS.mkdir(exist_ok=True)

    # Without a login the browser gets nothing but the refusal.
    browser.get(base + "/prism-dashboard/")
    assert "Not authenticated" in browser.find_element(By.TAG_NAME, "body").text

    # Airflow's own login form, then the dashboard from the UI's navigation.
    browser.get(base + "/auth/login")
    wait.until(ec.presence_of_element_located((By.NAME, "username"))).send_keys("admin")
    browser.find_element(By.NAME, "password").send_keys(PASSWORD)
    browser.find_element(By.CSS_SELECTOR, "button[type=submit]").click()
    wait.until(lambda d: "/auth/login" not in d.current_url)
    browser.get(base + "/")
    nav = wait.until(
        ec.element_to_be_clickable(
            (
                By.XPATH,
                "//nav//*[normalize-space()='PRISM Dashboard'] | "
                "//*[@aria-label='PRISM Dashboard'] | //a[contains(@href,'plugin/prism-dashboard')]",
            )
        )
    )
    nav.click()
    wait.until(lambda d: d.current_url.rstrip("/").endswith("/plugin/prism-dashboard"))
    frame = wait.until(ec.presence_of_element_located((By.CSS_SELECTOR, "iframe[title='PRISM Dashboard']")))
    browser.switch_to.frame(frame)
    wait.until(ec.text_to_be_present_in_element((By.TAG_NAME, "h1"), "PRISM dashboard"))
    time.sleep(1)
    browser.switch_to.default_content()
    browser.save_screenshot(str(ARTIFACTS / "dashboard-in-airflow.png"))
    browser.switch_to.frame(frame)
    page = browser.find_element(By.TAG_NAME, "body").text

    def shown(test_id: str) -> str:
        return browser.find_element(By.CSS_SELECTOR, f"[data-testid='{test_id}']").text

    # The page's own CSP allows no script and no fetch, so data.json is read from the Airflow UI around it.
    browser.switch_to.default_content()
    data = json.loads(_get_json(browser, base))
    browser.switch_to.frame(frame)
    # Health: five monitor runs, one through the simulated D1 outage; the latest is healthy.
    assert (shown("health-status"), shown("health-runs"), shown("health-failed")) == ("healthy", "5", "1")
    # Requests: the Worker's 24 h figures, as localflare's seeded traffic history holds them.
    usage = data["usage"]
    start, end = (traffic_ts(usage["window"][k]) for k in ("start", "end"))
    recs = traffic.records(start, end, end)
    total, errors = sum(r["requests"] for r in recs), sum(r["errors"] for r in recs)
    assert shown("requests-total") == f"{total:,}"
    assert shown("success-rate") == f"{round(100 * (total - errors) / total, 3)}%"
    assert shown("p95") == f"{round(traffic.quantile(traffic.merge_hist(recs), 0.95), 1)} ms"
    # Cache and tokens: the seeded cache table and the traffic's cache hits.
    api = Api(stack["lf"])
    db = api.get(f"/accounts/{{acct}}/d1/database/{stack['lf'].d1_id}").json()["result"]
    entries = api.post(
        f"/accounts/{{acct}}/d1/database/{stack['lf'].d1_id}/query",
        json={"sql": "SELECT COUNT(*) AS n FROM cache_metadata"},
    ).json()["result"][0]["results"][0]["n"]
    assert shown("cache-entries") == f"{entries:,}"
    assert shown("tokens-saved") == f"{sum(r['tokens_saved'] for r in recs):,}"
    # Resources: the D1 database's size and the index's vectors, against the plan limits.
    vectors = api.get(f"/accounts/{{acct}}/vectorize/v2/indexes/{stack['lf'].index_name}/info").json()["result"][
        "vectorCount"
    ]
    assert f"{_size(db['file_size'])}" in page and f"{vectors:,} vectors of 384 dimensions" in page
    for label in (
        "Workers AI neurons",
        "D1 rows read",
        "D1 database size",
        "KV reads",
        "KV writes",
        "Vectorize stored dimensions",
        "Vectorize queried dimensions",
    ):
        assert label in page, label
    # Backups: the verified sets the demo runs made, as their manifests in the bucket say.
    s3 = _s3(stack)
    for cadence in ("daily", "monthly"):
        row = browser.find_element(By.CSS_SELECTOR, f"tr[data-cadence='{cadence}']").text
        period = row.split()[1]
        manifest = json.loads(
            s3.get_object(Bucket=stack["bucket"], Key=f"{cadence}/{period}/manifest.json")["Body"].read()
        )
        assert manifest["verification"]["status"] == "verified" and "verified" in row
        assert _size(sum(o["bytes"] for o in manifest["objects"])) in row and manifest["captured_at"] in row
        assert re.fullmatch(r"\d+ min|\d+\.\d h", shown(f"rpo-{cadence}")), shown(f"rpo-{cadence}")
    # The API budget the monitor saw, against 1,200 per 5 minutes.
    assert re.fullmatch(r"\d+ / 1,200", shown("api-budget"))
    # Reports, linked; and the outage's alert with its diagnosis.
    for title in (
        "PRISM Performance Report",
        "PRISM Security Audit",
        "PRISM Capacity Planning",
        "PRISM Quarterly Review",
    ):
        assert title in page, title
    assert "prism_health_monitor.check_resources failed" in page and "diagnosis: high_error_rate" in page

    # The full page alone, for the README.
    browser.switch_to.default_content()
    browser.set_window_size(1440, 2600)
    browser.get(base + "/prism-dashboard/")
    wait.until(ec.text_to_be_present_in_element((By.TAG_NAME, "h1"), "PRISM dashboard"))
    height = browser.execute_script("return document.documentElement.scrollHeight")
    browser.set_window_size(1440, min(max(height + 40, 1000), 6000))
    browser.save_screenshot(str(ARTIFACTS / "dashboard.png"))

    # A report's link opens its HTML with charts, through the dashboard (behind the login).
    link = browser.find_element(
        By.XPATH, "//tr[td[contains(., 'PRISM Capacity Planning')]]//a[normalize-space()='HTML']"
    )
    browser.get(link.get_attribute("href"))
    assert browser.find_elements(By.TAG_NAME, "svg") and "Capacity Planning" in browser.title
    browser.set_window_size(1440, 1000)


def test_a_report_task_links_its_report_in_the_ui(stack):
    """What the UI shows on a report task: its extra links, served by the API server from the task's
    run, open the report through the dashboard (behind the login); other tasks have no report links,
    and a report task that published nothing (skipped) links nothing."""
    base = stack["base"]
    token = requests.post(f"{base}/auth/token", json={"username": "admin", "password": PASSWORD}, timeout=10).json()[
        "access_token"
    ]
    auth = {"Authorization": f"Bearer {token}"}

    def get(path: str) -> dict:
        resp = requests.get(f"{base}/api/v2/dags/prism_monthly{path}", headers=auth, timeout=30)
        assert resp.status_code == 200, (path, resp.text[:500])
        return resp.json()

    report = "day_28.capacity_planning.capacity_report"
    runs = {
        r["dag_run_id"]: get(f"/dagRuns/{r['dag_run_id']}/taskInstances/{report}")["state"]
        for r in get("/dagRuns")["dag_runs"]
    }
    assert sorted(runs.values()) == ["skipped", "skipped", "success"], runs  # the fill's days 1, 7 and 28
    ran = next(run for run, state in runs.items() if state == "success")
    links = get(f"/dagRuns/{ran}/taskInstances/{report}/links")["extra_links"]
    assert set(links) == {"Report (HTML)", "Report (Markdown)"}
    for name, suffix in (("Report (HTML)", "capacity.html"), ("Report (Markdown)", "capacity.md")):
        assert "/prism-dashboard/reports/reports/prism_monthly/" in links[name] and links[name].endswith(suffix)
    page = requests.get(links["Report (HTML)"], headers=auth, timeout=30)
    assert page.status_code == 200 and "<svg" in page.text and "Capacity Planning" in page.text
    assert requests.get(links["Report (HTML)"], timeout=30).status_code == 401  # behind the login
    assert get(f"/dagRuns/{ran}/taskInstances/windows/links")["extra_links"] == {}
    skipped = next(run for run, state in runs.items() if state == "skipped")
    assert set(get(f"/dagRuns/{skipped}/taskInstances/{report}/links")["extra_links"].values()) == {None}


def traffic_ts(iso: str) -> float:
    from datetime import datetime

    return datetime.fromisoformat(iso.replace("Z", "+00:00")).timestamp()


def _get_json(browser, base: str) -> str:
    """data.json through the logged-in browser (its cookie)."""
    return browser.execute_async_script(
        "const done = arguments[arguments.length - 1];"
        f"fetch('{base}/prism-dashboard/data.json', {{credentials: 'include'}}).then(r => r.text()).then(done);"
    )
