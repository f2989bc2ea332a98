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
from datetime import date, datetime, timezone
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
    _login(browser, base)
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
        assert _size(sum(o["bytes"] for o in manifest["objects"])) in row
        # The capture time for people (UTC, to the minute), the manifest's own value in <time datetime>.
        captured = datetime.fromisoformat(manifest["captured_at"])
        time_el = browser.find_element(By.CSS_SELECTOR, f"tr[data-cadence='{cadence}'] time")
        assert datetime.fromisoformat(time_el.get_attribute("datetime")) == captured
        assert time_el.get_attribute("title") == time_el.get_attribute("datetime")
        assert f"{captured.astimezone(timezone.utc):%Y-%m-%d %H:%M} UTC" in row
        assert re.fullmatch(r"\d+ min|\d+\.\d h", shown(f"rpo-{cadence}")), shown(f"rpo-{cadence}")
    # The API budget the monitor saw, against 1,200 per 5 minutes.
    assert re.fullmatch(r"\d+ / 1,200", shown("api-budget"))
    # The REST calls of the last monitor run (a healthy one, after others: the D1 id is known): five for the
    # checks, one GraphQL query.
    assert (shown("api-calls-run"), shown("api-calls-by-task")) == ("6", "check_resources 5, usage 1")
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
    return datetime.fromisoformat(iso.replace("Z", "+00:00")).timestamp()


def _login(browser, base: str) -> None:
    """Airflow's own login form, as a person fills it in."""
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support import expected_conditions as ec
    from selenium.webdriver.support.ui import WebDriverWait

    wait = WebDriverWait(browser, 90)
    browser.get(base + "/auth/login")
    wait.until(ec.presence_of_element_located((By.NAME, "username"))).send_keys("admin")
    browser.find_element(By.NAME, "password").send_keys(PASSWORD)
    browser.find_element(By.CSS_SELECTOR, "button[type=submit]").click()
    wait.until(lambda d: "/auth/login" not in d.current_url)


def _get_json(browser, base: str) -> str:
    """data.json through the logged-in browser (its cookie)."""
    return browser.execute_async_script(
        "const done = arguments[arguments.length - 1];"
        f"fetch('{base}/prism-dashboard/data.json', {{credentials: 'include'}}).then(r => r.text()).then(done);"
    )


# ---- layout, charts and text, as a person sees them at common screen widths ---------------------------------------

WIDTHS = (1280, 1440, 1920)
DOCS_IMG = ROOT / "docs" / "img"
# `make screenshots` sets it: this run also writes the screenshots the docs show (never made by hand).
DOCS_SCREENSHOTS = os.environ.get("PRISM_DOCS_SCREENSHOTS") == "1"
# A chart whose data reach less of its plot's height than this draws them as a flat line at the bottom.
MIN_REACH = 0.05

# What overflows: the page (it scrolls sideways) and any element past the right edge of its container (a
# dashboard card, a report's body); every <details> open first, as a person reading an alert has it.
LAYOUT_JS = """
const containers = arguments[0];
document.querySelectorAll('details').forEach(d => { d.open = true; });
const out = {scroll: document.documentElement.scrollWidth, inner: window.innerWidth, past: []};
for (const box of document.querySelectorAll(containers)) {
  const edge = box.getBoundingClientRect().right;
  for (const el of box.querySelectorAll('*')) {
    const r = el.getBoundingClientRect();
    if (r.width > 0 && r.right > edge + 1) {
      const what = (el.getAttribute('data-testid') || el.getAttribute('data-part') || el.textContent || '').trim();
      out.past.push(`${box.id || box.tagName.toLowerCase()} > ${el.tagName.toLowerCase()} ` +
        `${Math.round(r.right - edge)} px past its right edge: ${what.slice(0, 80)}`);
    }
  }
}
return out;
"""
# Times and figures with units that a line break cut in two: each match of the pattern in the page's text
# must lie on one line (one top among its boxes).
WRAPPED_JS = """
const re = /\\d{4}-\\d\\d-\\d\\d(?:[T ]\\d\\d:\\d\\d(?::\\d\\d(?:\\.\\d+)?)?(?:Z|[+-]\\d\\d:\\d\\d)?)?(?: UTC)?|\\d[\\d,]*(?:\\.\\d+)? ?(?:ms|KB|MB|GB|min)(?![\\w])|\\d[\\d,]*(?:\\.\\d+)?%/g;
const walk = document.createTreeWalker(document.body, NodeFilter.SHOW_TEXT, {acceptNode: n =>
  n.parentElement.closest('svg,style,script') ? NodeFilter.FILTER_REJECT : NodeFilter.FILTER_ACCEPT});
const cut = [];
for (let node = walk.nextNode(); node; node = walk.nextNode()) {
  for (const m of node.data.matchAll(re)) {
    const range = document.createRange();
    range.setStart(node, m.index);
    range.setEnd(node, m.index + m[0].length);
    const tops = new Set([...range.getClientRects()].filter(r => r.width > 0).map(r => Math.round(r.top)));
    if (tops.size > 1) cut.push(m[0]);
  }
}
return cut;
"""
# Every chart with a plot: how much of its height its data reach (prism.reports.charts documents the formula).
CHARTS_JS = """
return [...document.querySelectorAll('svg[data-chart]')].map(svg => {
  const plot = svg.querySelector('[data-part=plot]');
  if (!plot) return null;
  const top = +plot.dataset.plotTop, bottom = +plot.dataset.plotBottom, ys = [];
  svg.querySelectorAll('[data-part=series]').forEach(p =>
    p.getAttribute('points').trim().split(/\\s+/).forEach(xy => ys.push(+xy.split(',')[1])));
  svg.querySelectorAll('[data-part=bar]').forEach(r => ys.push(+r.getAttribute('y')));
  return {title: svg.getAttribute('aria-label') || '', points: ys.length, allZero: plot.dataset.allZero === 'true',
          reach: ys.length ? (bottom - Math.min(...ys)) / (bottom - top) : null};
}).filter(c => c);
"""
# The page's text as a person reads it, and its charts' text apart (an axis' ticks read 0.5, 1.0, 1.5).
TEXT_JS = """
const svgs = [...document.querySelectorAll('svg')];
svgs.forEach(s => { s.style.display = 'none'; });
const text = document.body.innerText;
svgs.forEach(s => { s.style.display = ''; });
return [text, svgs.map(s => [...s.querySelectorAll('text')].map(t => t.textContent).join('\\n')).join('\\n')];
"""
# Python's repr of a value, where a person should read words and figures.
REPRS = {
    "a dict": re.compile(r"\{'[\w ]+': "),
    "a list of strings": re.compile(r"\['"),
    "None, True or False as a value": re.compile(r"(?:^|[:=(\[,|\t]) *(None|True|False) *(?=$|[,;:.)\]|\t])", re.M),
    "a count written as a float": re.compile(
        r"(?<![\w.,/:-])\d[\d,]*\.0(?![\d.])(?! ?(?:%|[KMGT]?B\b|ms\b|s\b|h\b|min\b|days\b|k\b|M\b))"
    ),
    "a float's full repr": re.compile(r"(?<![\d.:])\d+\.\d{9,}"),
    "an object's repr": re.compile(r"\b(?:datetime\.datetime|Decimal|DateTime|Timezone)\("),
}
# A report's stated window: its first "Window:" line (reports.markdown writes "Window: START to END (UTC)").
WINDOW_LINE = re.compile(
    r"^Window: *(\d{4}-\d\d-\d\d)(?:[T ](\d\d:\d\d)\S*)?(?: UTC)? +(?:to|until|–|—|\.\.) +"
    r"(\d{4}-\d\d-\d\d)(?:[T ](\d\d:\d\d)\S*)?",
    re.M,
)


def python_reprs(text: str, counts: bool = True) -> list[str]:
    """Each place `text` shows a Python repr, with what surrounds it; `counts=False` for a chart's text,
    whose axis may step by halves."""
    found = []
    for what, pattern in REPRS.items():
        if what == "a count written as a float" and not counts:
            continue
        for m in pattern.finditer(text):
            found.append(f"{what}: …{text[max(0, m.start() - 40) : m.end() + 30]}…".replace("\n", " ⏎ "))
    return found


def title_periods(title: str) -> list[tuple[str, date, date]]:
    """The periods a report's title names, as (label, first day, day after the last): 2026Q3, 2026-11 or
    202611, 2026-12-07 or 20261207."""

    def month_after(d: date, months: int = 1) -> date:
        n = d.year * 12 + d.month - 1 + months
        return date(n // 12, n % 12 + 1, 1)

    out = []
    for m in re.finditer(r"(?<!\d)(\d{4})Q([1-4])(?!\d)", title):
        first = date(int(m[1]), 3 * int(m[2]) - 2, 1)
        out.append((m[0], first, month_after(first, 3)))
    for m in re.finditer(r"(?<![\d-])(\d{4})-?(\d\d)-?(\d\d)(?![\d-])", title):
        if "-" in m[0] and m[0].count("-") != 2:
            continue
        try:
            day = date(int(m[1]), int(m[2]), int(m[3]))
        except ValueError:
            continue
        out.append((m[0], day, date.fromordinal(day.toordinal() + 1)))
    for m in re.finditer(r"(?<![\d-])(\d{4})(-?)(\d\d)(?![\d-])", title):
        if 1 <= int(m[3]) <= 12 and 2000 <= int(m[1]) <= 2200:
            first = date(int(m[1]), int(m[3]), 1)
            out.append((m[0], first, month_after(first)))
    return out


def period_disagreements(title: str, text: str) -> list[str]:
    """Where a period the title names disagrees with the report's stated window: a quarter or a month
    must hold the window (a window of 2026-07-01..2026-10-01 is 2026Q3, never 2026Q4), and a day must
    fall within it. [] when the report states no window."""
    window = WINDOW_LINE.search(text)
    if not window:
        return []
    start = datetime.fromisoformat(f"{window[1]}T{window[2] or '00:00'}")
    end = datetime.fromisoformat(f"{window[3]}T{window[4] or '00:00'}")
    wrong = [] if start < end else [f"the window {window[0]!r} ends before it starts"]
    for label, first, after in title_periods(title):
        if (after - first).days == 1:  # a day: within the window
            ok = start.date() <= first <= end.date()
        else:  # a month or a quarter: the window lies inside it
            ok = (
                datetime.combine(first, datetime.min.time())
                <= start
                < end
                <= datetime.combine(after, datetime.min.time())
            )
        if not ok:
            wrong.append(f"the title's period {label} disagrees with its window: {window[0]!r}")
    return wrong


def _viewport(browser, width: int, height: int) -> None:
    """The page's viewport at width × height px (the window is taller by the browser's own bars)."""
    browser.set_window_size(width, height)
    bars = browser.execute_script("return window.outerHeight - window.innerHeight")
    if bars:
        browser.set_window_size(width, height + bars)


def _full_page(browser, width: int, path: Path, *also: Path) -> None:
    """A screenshot of the whole page at `width`: the viewport as tall as the page."""
    _viewport(browser, width, 1000)
    height = browser.execute_script("return document.documentElement.scrollHeight")
    _viewport(browser, width, min(max(height, 900), 8000))
    browser.save_screenshot(str(path))
    for copy in also:
        copy.parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(path, copy)


def _check_page(browser, name: str, containers: str, problems: list[str], wrap: bool = False) -> dict:
    """Layout at every width, then charts and text; each problem found goes to `problems`, prefixed by `name`."""
    for width in WIDTHS:
        browser.set_window_size(width, 1000)
        layout = browser.execute_script(LAYOUT_JS, containers)
        if layout["scroll"] > layout["inner"]:
            problems.append(f"{name} at {width} px: the page scrolls sideways ({layout['scroll']} > {layout['inner']})")
        problems += [f"{name} at {width} px: {p}" for p in layout["past"][:5]]
        if wrap:
            problems += [
                f"{name} at {width} px: {v!r} is cut by a line break" for v in browser.execute_script(WRAPPED_JS)
            ]
    charts = browser.execute_script(CHARTS_JS)
    for c in charts:
        if c["points"] and not c["allZero"] and c["reach"] < MIN_REACH:
            problems.append(f"{name}: the chart {c['title']!r} draws its data in {c['reach']:.1%} of its plot's height")
    text, chart_text = browser.execute_script(TEXT_JS)
    problems += [f"{name}: {r}" for r in python_reprs(text)]
    problems += [f"{name}, in a chart: {r}" for r in python_reprs(chart_text, counts=False)]
    return {"text": text, "charts": charts}


def test_the_dashboard_and_every_report_hold_their_layout_charts_and_words(stack, browser):
    """At 1280, 1440 and 1920 px: nothing scrolls sideways or sticks out of its card, no time or figure
    with its unit is cut by a line break, no chart flattens its data, no Python repr shows, and every
    report's title names the period its window covers. Every problem is listed at once, after the
    screenshots (.test-artifacts/, and docs/img/ under `make screenshots`) are written."""
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support import expected_conditions as ec
    from selenium.webdriver.support.ui import WebDriverWait

    base, wait, problems = stack["base"], WebDriverWait(browser, 90), []
    ARTIFACTS.mkdir(exist_ok=True)
    _login(browser, base)

    # The dashboard inside the Airflow UI, in its frame.
    for width in WIDTHS:
        browser.set_window_size(width, 1000)
        browser.get(base + "/plugin/prism-dashboard")
        frame = wait.until(ec.presence_of_element_located((By.CSS_SELECTOR, "iframe[title='PRISM Dashboard']")))
        browser.switch_to.frame(frame)
        wait.until(ec.text_to_be_present_in_element((By.TAG_NAME, "h1"), "PRISM dashboard"))
        layout = browser.execute_script(LAYOUT_JS, ".card")
        if layout["scroll"] > layout["inner"]:
            problems.append(f"the dashboard in the Airflow UI at {width} px scrolls sideways in its frame")
        problems += [f"the dashboard in the Airflow UI at {width} px: {p}" for p in layout["past"][:5]]
        browser.switch_to.default_content()

    # The page alone.
    browser.get(base + "/prism-dashboard/")
    wait.until(ec.text_to_be_present_in_element((By.TAG_NAME, "h1"), "PRISM dashboard"))
    page = _check_page(browser, "the dashboard", ".card", problems, wrap=True)
    assert page["charts"] and all(c["points"] for c in page["charts"]), page["charts"]  # the monitor's hours, drawn
    times = browser.find_elements(By.TAG_NAME, "time")
    assert times
    for t in times:  # every time for people: UTC to the minute, the recorded value in its tooltip
        iso, shown = t.get_attribute("datetime"), t.text
        assert t.get_attribute("title") == iso and datetime.fromisoformat(iso).tzinfo is not None, iso
        assert shown.startswith(f"{datetime.fromisoformat(iso).astimezone(timezone.utc):%Y-%m-%d %H:%M} UTC"), shown
    for width in WIDTHS:
        copies = [DOCS_IMG / "dashboard.png"] if DOCS_SCREENSHOTS and width == 1440 else []
        _full_page(browser, width, ARTIFACTS / f"dashboard-{width}.png", *copies)

    # Every report the dashboard lists, as its link opens it: the HTML page (or the Markdown without one).
    browser.set_window_size(1440, 1000)
    rows = []
    for tr in browser.find_elements(By.CSS_SELECTOR, "#reports tr"):
        cells = tr.find_elements(By.TAG_NAME, "td")
        links = {a.text: a.get_attribute("href") for a in tr.find_elements(By.TAG_NAME, "a")}
        if cells and links:
            rows.append((cells[0].text, links.get("HTML") or links["Markdown"]))
    kinds = {href.rsplit("/", 1)[-1].rsplit(".", 1)[0] for _, href in rows}
    assert {"performance", "security", "capacity", "review"} <= kinds, rows  # the fill's report types, each seen
    for listed, href in rows:
        browser.set_window_size(1440, 1000)
        browser.get(href)
        key = href.split("/prism-dashboard/reports/", 1)[1]
        name = f"the report {key}"
        report = _check_page(browser, name, "body", problems)
        html = href.endswith(".html")
        title = browser.title if html else report["text"].partition("\n")[0].removeprefix("# ").strip()
        if html and not browser.title.strip():
            problems.append(f"{name}: the page has no <title>")
        if title != listed:
            problems.append(f"{name}: its title {title!r} is not the one the dashboard lists, {listed!r}")
        problems += [f"{name}: {p}" for p in period_disagreements(title, report["text"])]
        slug = re.sub(r"[^\w.-]+", "-", key.removeprefix("reports/").rsplit(".", 1)[0])
        _full_page(browser, 1440, ARTIFACTS / f"report-{slug}.png")
        if DOCS_SCREENSHOTS and key.endswith("/capacity.html"):  # the docs show a report's first screen
            _viewport(browser, 1440, 900)
            DOCS_IMG.mkdir(parents=True, exist_ok=True)
            browser.save_screenshot(str(DOCS_IMG / "report-capacity.png"))
    browser.set_window_size(1440, 1000)
    assert not problems, "\n".join(problems)


@pytest.mark.parametrize(
    "title,window,wrong",
    [
        ("PRISM Quarterly Review 2026Q3: x", "2026-07-01T00:00:00+00:00 to 2026-10-01T00:00:00+00:00 (UTC)", False),
        ("PRISM Quarterly Review 2026Q4: x", "2026-07-01T00:00:00+00:00 to 2026-10-01T00:00:00+00:00 (UTC)", True),
        ("PRISM Performance Report - 2026-11", "2026-11-01T00:00:00+00:00 to 2026-12-01T00:00:00+00:00 (UTC)", False),
        ("PRISM Performance Report - 2026-10", "2026-11-01T00:00:00+00:00 to 2026-12-01T00:00:00+00:00 (UTC)", True),
        ("PRISM Monthly Report - 2026-12 (to 2026-12-07)", "2026-12-01 00:00 to 2026-12-07 01:58 UTC", False),
        ("PRISM Monthly Report - 2026-12 (to 2026-12-09)", "2026-12-01 00:00 to 2026-12-07 01:58 UTC", True),
        ("PRISM daily log review 20261206", "2026-12-05T09:00:00+00:00 to 2026-12-06T09:00:00+00:00 (UTC)", False),
        ("PRISM daily log review 20261208", "2026-12-05T09:00:00+00:00 to 2026-12-06T09:00:00+00:00 (UTC)", True),
        ("PRISM Capacity Planning - 2026-12-07", "2026-09-08 to 2026-12-07", False),
        ("Backup verification: monthly 202612", None, False),
    ],
)
def test_a_title_period_is_checked_against_the_stated_window(title, window, wrong):
    """The check the browser test applies to each report, on the titles and windows reports write."""
    text = f"{title}\n" + (f"Window: {window}\n" if window else "") + "Summary\n"
    assert bool(period_disagreements(title, text)) is wrong


@pytest.mark.parametrize(
    "text,found",
    [
        ("by status: {'success': 7317, 'scriptThrewException': 16}", True),
        ("D1: quick_check ['ok']; 43 rows", True),
        ("threshold\t50.0\tok", True),
        ("value: None", True),
        ("enabled: True.", True),
        ("error rate 0.30000000000000004", True),
        ("2.0%\t500.0 MB\t10.0 GB (100.0%) 1.4.2 at 02:32:45.595107 5.0k", False),
        ("Recent alerts: no alert in the last 7 days. None of the checks failed. 50 requests, 1.5 ms", False),
    ],
)
def test_a_python_repr_is_told_from_figures_and_words(text, found):
    assert bool(python_reprs(text)) is found, python_reprs(text)
