"""CloudflareBaseHook against localflare: envelope, typed errors, retries, pagination, budget, secrecy,
for the sync client and the async one (what triggers use).

Faults and rate limits go to private servers (`lf_fresh`), so the shared demo server stays clean.
"""

from __future__ import annotations

import asyncio
import json
import logging
import threading
import time
import uuid
from concurrent.futures import ThreadPoolExecutor
from email.utils import formatdate
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from airflow_provider_cloudflare.errors import (
    CloudflareAuthError,
    CloudflareBadRequest,
    CloudflareError,
    CloudflareNotFound,
    CloudflareRateLimited,
    CloudflareServerError,
)
from airflow_provider_cloudflare.hooks.cloudflare import CloudflareBaseHook
from airflow_provider_cloudflare.hooks.d1 import D1ExportUnsupported, D1Hook
from localflare.testing import free_port

D1_LIST = "route:GET /accounts/{account_id}/d1/database"
D1_CREATE = "route:POST /accounts/{account_id}/d1/database"
D1_QUERY = "route:POST /accounts/{account_id}/d1/database/{database_id}/query"


def use_conn(monkeypatch, conn_id: str, *, token: str, account_id: str, base_url: str, **extra) -> None:
    """An Airflow connection from its environment variable, with any token or URL."""
    conn = {
        "conn_type": "generic",
        "password": token,
        "extra": {"account_id": account_id, "base_url": base_url, "budget": {"bulk_rps": 0}, **extra},
    }
    monkeypatch.setenv(f"AIRFLOW_CONN_{conn_id.upper()}", json.dumps(conn))


def scratch_name(prefix: str = "hooktest") -> str:
    return f"{prefix}-{uuid.uuid4().hex[:10]}"


@pytest.fixture
def private(lf_fresh, connect):
    """An empty private localflare with cloudflare_default pointed at it, pacing off."""
    server = lf_fresh(seed=False)
    connect(server, budget={"bulk_rps": 0})
    return server


# ---- envelope and typed errors ---------------------------------------------------------------


def test_envelope_result_and_response(cf):
    hook = CloudflareBaseHook()
    resp = hook.request("GET", hook.account_path("/d1/database"), idempotent=True)
    assert resp.status_code == 200 and resp.json()["success"] is True
    assert resp.headers["x-ratelimit-limit"]
    dbs = hook.get(hook.account_path("/d1/database"))  # the envelope's result only
    assert isinstance(dbs, list) and cf.d1_id in {db["uuid"] for db in dbs}
    assert hook.call("GET", "/user/tokens/verify", idempotent=True)["status"] == "active"


def test_bad_token_is_an_auth_error(cf, monkeypatch):
    use_conn(monkeypatch, "cf_bad", token="not-the-token", account_id=cf.account_id, base_url=cf.api_url)
    hook = CloudflareBaseHook("cf_bad")
    with pytest.raises(CloudflareAuthError) as err:
        hook.get(hook.account_path("/d1/database"))
    assert (err.value.status, err.value.code) == (403, 10000)
    assert err.value.method == "GET" and err.value.path.endswith("/d1/database")
    assert "Authentication error" in str(err.value) and "HTTP 403" in str(err.value)


def test_unknown_route_is_code_7003(cf):
    hook = CloudflareBaseHook()
    with pytest.raises(CloudflareBadRequest) as err:
        hook.get(hook.account_path("/no/such/thing"))
    assert (err.value.status, err.value.code) == (400, 7003)
    assert "No route for the URI" in err.value.message


def test_unknown_database_is_not_found_7404(cf):
    missing = str(uuid.uuid4())
    with pytest.raises(CloudflareNotFound) as err:
        D1Hook().get_database(missing)
    assert (err.value.status, err.value.code) == (404, 7404)
    assert missing in err.value.message


def test_invalid_sql_is_bad_request_7500_with_the_sqlite_message(cf):
    with pytest.raises(CloudflareBadRequest) as err:
        D1Hook().query(cf.d1_id, "SELECT * FROM no_such_table")
    assert (err.value.status, err.value.code) == (400, 7500)
    assert "no such table: no_such_table" in err.value.message


def test_export_of_fts5_database_fails_inside_http_200(cf):
    # The export answers HTTP 200 with result.success false and an error: that must raise, typed.
    with pytest.raises(D1ExportUnsupported) as err:
        D1Hook().export_request(cf.d1_id)
    assert "Virtual Tables" in str(err.value) and isinstance(err.value, CloudflareError)
    D1Hook().rows(cf.d1_id, "SELECT 1")  # the failed export released the database


class _Stub(BaseHTTPRequestHandler):
    """Answers that localflare never gives: a 200 failure envelope, a non-JSON 200, a proxy's 502."""

    answers = {
        "/client/v4/quiet-failure": (
            200,
            "application/json",
            json.dumps(
                {
                    "success": False,
                    "errors": [{"code": 1234, "message": "refused quietly"}],
                    "messages": [],
                    "result": None,
                }
            ),
        ),
        "/client/v4/captive-portal": (200, "text/html", "<html>please log in to the Wi-Fi</html>"),
        "/client/v4/bad-gateway": (502, "text/html", "<html>502 Bad Gateway (nginx)</html>"),
        "/client/v4/slow-down": (
            200,
            "application/json",
            json.dumps({"success": True, "errors": [], "messages": [], "result": "ok"}),
        ),
    }
    hits: dict[str, int] = {}

    def do_GET(self):  # noqa: N802 - http.server's name
        path = self.path.split("?")[0]
        self.hits[path] = self.hits.get(path, 0) + 1
        status, ctype, body = self.answers.get(path, (404, "text/plain", "no"))
        extra = {}
        if path == "/client/v4/slow-down" and self.hits[path] == 1:
            # The first answer is a 429 whose Retry-After is an HTTP date two seconds ahead.
            status, ctype, body = (
                429,
                "application/json",
                json.dumps(
                    {
                        "success": False,
                        "errors": [{"code": 971, "message": "slow down"}],
                        "messages": [],
                        "result": None,
                    }
                ),
            )
            extra["Retry-After"] = formatdate(time.time() + 2, usegmt=True)
        data = body.encode()
        self.send_response(status)
        for key, value in extra.items():
            self.send_header(key, value)
        self.send_header("Content-Type", ctype)
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def log_message(self, *args):
        pass


@pytest.fixture
def stub(monkeypatch):
    server = ThreadingHTTPServer(("127.0.0.1", 0), _Stub)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    _Stub.hits = {}
    use_conn(
        monkeypatch,
        "cf_stub",
        token="stub-token",
        account_id="a" * 32,
        base_url=f"http://127.0.0.1:{server.server_port}/client/v4",
    )
    yield _Stub
    server.shutdown()
    server.server_close()


def test_http_200_with_success_false_raises(stub):
    with pytest.raises(CloudflareError) as err:
        CloudflareBaseHook("cf_stub").get("/quiet-failure")
    assert err.value.code == 1234 and err.value.message == "refused quietly"


def test_non_json_200_is_not_taken_for_an_envelope(stub):
    # A captive portal or proxy page is not a Cloudflare answer; the error should say so.
    with pytest.raises(CloudflareError) as err:
        CloudflareBaseHook("cf_stub").get("/captive-portal")
    assert "expected a JSON envelope" in str(err.value) and "text/html" in str(err.value)


def test_non_json_5xx_is_a_server_error_and_retried(stub):
    with pytest.raises(CloudflareServerError) as err:
        CloudflareBaseHook("cf_stub", max_attempts=2).get("/bad-gateway")
    assert err.value.status == 502 and "Bad Gateway" in err.value.message
    assert stub.hits["/client/v4/bad-gateway"] == 2


def test_retry_after_as_an_http_date_is_honoured(stub):
    started = time.monotonic()
    assert CloudflareBaseHook("cf_stub").get("/slow-down") == "ok"
    assert stub.hits["/client/v4/slow-down"] == 2
    assert time.monotonic() - started >= 1.0  # the date is rounded to the second; jitter adds up to 1 s


# ---- retries ---------------------------------------------------------------------------------


def test_429_is_retried_after_retry_after(private):
    private.add_faults("429:route=GET */d1/database,count=1,retry_after=2")
    hook = CloudflareBaseHook()
    started = time.monotonic()
    hook.get(hook.account_path("/d1/database"))
    waited = time.monotonic() - started
    # At least retry-after (plus up to 1 s of jitter); far less than the window a blind client would wait.
    assert 2.0 <= waited < 10.0
    counters = private.counters()
    assert counters["429_sent"] == 1 and counters[D1_LIST] == 2


def test_429_asking_more_than_the_cap_fails_at_once(private):
    private.add_faults("429:route=GET */d1/database,count=1,retry_after=30")
    hook = CloudflareBaseHook(retry_after_cap=5)
    started = time.monotonic()
    with pytest.raises(CloudflareRateLimited) as err:
        hook.get(hook.account_path("/d1/database"))
    assert time.monotonic() - started < 1.5
    assert (err.value.status, err.value.code, err.value.retry_after) == (429, 971, 30.0)
    assert private.counters()[D1_LIST] == 1


def test_429_is_retried_even_for_writes(private):
    # A 429 was never applied, so a non-idempotent create may be sent again.
    private.add_faults("429:route=POST */d1/database,count=1,retry_after=1")
    name = scratch_name()
    db = D1Hook().create_database(name)
    assert db["name"] == name
    assert private.counters()[D1_CREATE] == 2
    assert [d["name"] for d in D1Hook().list_databases()] == [name]


def test_5xx_is_retried_for_idempotent_get(private):
    private.add_faults("5xx:route=GET */d1/database,count=2,status=503")
    assert D1Hook().list_databases() == []
    counters = private.counters()
    assert counters["5xx_sent"] == 2 and counters[D1_LIST] == 3


def test_5xx_is_not_retried_for_a_write(private):
    private.add_faults("5xx:route=POST */d1/database,count=1,status=502")
    with pytest.raises(CloudflareServerError) as err:
        D1Hook().create_database(scratch_name())
    assert err.value.status == 502
    assert private.counters()[D1_CREATE] == 1  # exactly one request reached the route


def test_5xx_retry_follows_whether_the_sql_only_reads(private):
    hook = D1Hook()
    db = hook.create_database(scratch_name())["uuid"]
    hook.query(db, "CREATE TABLE t(v)")
    private.add_faults("5xx:route=POST */query,count=1,status=503")
    assert hook.rows(db, "SELECT COUNT(*) AS n FROM t") == [{"n": 0}]  # read: retried
    private.add_faults("5xx:route=POST */query,count=1,status=503")
    before = private.counters()[D1_QUERY]
    with pytest.raises(CloudflareServerError):
        hook.query(db, "INSERT INTO t VALUES (1)")  # write: not sent twice
    assert private.counters()[D1_QUERY] == before + 1


def test_connection_refused_is_a_cloudflare_error_quickly(cf, monkeypatch):
    closed = free_port()  # nothing listens there
    use_conn(
        monkeypatch,
        "cf_closed",
        token=cf.token,
        account_id=cf.account_id,
        base_url=f"http://127.0.0.1:{closed}/client/v4",
    )
    hook = CloudflareBaseHook("cf_closed")
    started = time.monotonic()
    with pytest.raises(CloudflareError) as err:
        hook.get(hook.account_path("/d1/database"))
    elapsed = time.monotonic() - started
    assert "could not reach Cloudflare" in str(err.value) and "ConnectionError" in str(err.value)
    assert elapsed < 10, f"{elapsed:.1f} s to give up on a refused connection"


# ---- pagination ------------------------------------------------------------------------------


def test_paginate_pages_follows_pages_and_total_count(private):
    hook = D1Hook()
    names = [hook.create_database(f"{'many' if i < 20 else 'few'}-{i:02d}")["name"] for i in range(25)]
    private.admin("DELETE", "counters")
    got = [db["name"] for db in hook.paginate_pages(hook.account_path("/d1/database"), per_page=10)]
    assert got == names
    assert private.counters()[D1_LIST] == 3  # 10 + 10 + 5: the short page ends it
    private.admin("DELETE", "counters")
    many = [db["name"] for db in hook.paginate_pages(hook.account_path("/d1/database"), {"name": "many"}, per_page=10)]
    assert many == names[:20]
    assert private.counters()[D1_LIST] == 2  # total_count says page 2 was the last: no empty page 3
    assert [db["name"] for db in hook.list_databases()] == names


def test_paginate_info_cursor_over_kv_keys(cf):
    hook = CloudflareBaseHook()
    path = hook.account_path(f"/storage/kv/namespaces/{cf.kv_id}/keys")
    whole = [k["name"] for k in hook.get(path, {"limit": 1000})]
    paged = [k["name"] for k in hook.paginate_info_cursor(path, {"limit": 10})]
    assert len(whole) > 10 and paged == whole


def test_paginate_result_cursor_over_vectorize_list(cf):
    hook = CloudflareBaseHook()
    path = hook.account_path(f"/vectorize/v2/indexes/{cf.index_name}/list")
    ids = [v["id"] for v in hook.paginate_result_cursor(path, "vectors", {"count": 100})]
    assert len(ids) == 615 and len(set(ids)) == 615


# ---- test_connection -------------------------------------------------------------------------


def test_test_connection_true_and_false(cf, monkeypatch):
    ok, message = CloudflareBaseHook().test_connection()
    assert ok is True and cf.account_id in message
    use_conn(monkeypatch, "cf_bad", token="not-the-token", account_id=cf.account_id, base_url=cf.api_url)
    ok, message = CloudflareBaseHook("cf_bad").test_connection()
    assert ok is False and "Authentication error" in message
    use_conn(monkeypatch, "cf_other", token=cf.token, account_id="f" * 32, base_url=cf.api_url)
    ok, message = CloudflareBaseHook("cf_other").test_connection()
    assert ok is False and "9109" in message


# ---- the request budget ----------------------------------------------------------------------


def test_budget_holds_bulk_at_the_reserve_and_monitoring_still_gets_through(lf_fresh, connect):
    server = lf_fresh("--rate-limit", "30/6", seed=False)
    connect(server, budget={"bulk_rps": 0, "reserve": 10})
    bulk, monitor = CloudflareBaseHook(priority="bulk"), CloudflareBaseHook(priority="monitor")
    path = bulk.account_path("/d1/database")
    with ThreadPoolExecutor(1) as pool:
        job = pool.submit(lambda: [bulk.request("GET", path, idempotent=True).status_code for _ in range(40)])
        deadline = time.monotonic() + 10
        while not (bulk.budget.waited > 0 and bulk.budget.remaining is not None and bulk.budget.remaining <= 10):
            assert time.monotonic() < deadline and not job.done(), "bulk was never held at the reserve"
            time.sleep(0.01)
        started = time.monotonic()
        for _ in range(5):
            monitor.get(path)  # uses the reserve, without waiting for the window
        assert time.monotonic() - started < 2 and not job.done()
        statuses = job.result(timeout=60)
    assert statuses == [200] * 40
    counters = server.counters()
    assert counters.get("429_sent", 0) == 0 and counters[D1_LIST] == 45


# ---- the token stays secret ------------------------------------------------------------------


def test_token_never_shows_in_logs_reprs_or_errors(lf_fresh, connect, monkeypatch, caplog, capfd):
    caplog.set_level(logging.DEBUG)
    server = lf_fresh(seed=False)
    connect(server, budget={"bulk_rps": 0})
    use_conn(
        monkeypatch,
        "cf_closed",
        token=server.token,
        account_id=server.account_id,
        base_url=f"http://127.0.0.1:{free_port()}/client/v4",
    )
    use_conn(
        monkeypatch,
        "cf_bad",
        token="wrong-" + server.token[::-1],
        account_id=server.account_id,
        base_url=server.api_url,
    )
    hook = D1Hook()
    db = hook.create_database(scratch_name())["uuid"]
    server.add_faults("429:route=GET */d1/database,count=1,retry_after=1;5xx:route=GET */d1/database/*,count=1")
    hook.list_databases()
    hook.get_database(db)
    errors = []
    for call in (
        lambda: hook.query(db, "SELEKT 1"),
        lambda: hook.get_database(str(uuid.uuid4())),
        lambda: hook.get(hook.account_path("/nope")),
        lambda: CloudflareBaseHook("cf_closed", max_attempts=2).get("/user/tokens/verify"),
        lambda: CloudflareBaseHook("cf_bad").get(hook.account_path("/d1/database")),
    ):
        with pytest.raises(CloudflareError) as err:
            call()
        errors.append(err.value)
    out, err_text = capfd.readouterr()
    assert "retry 1 of 4" in caplog.text  # the retries were logged
    for secret in (server.token, "wrong-" + server.token[::-1]):
        assert secret not in caplog.text and secret not in out and secret not in err_text
        assert secret not in repr(hook) and secret not in str(hook)
        for exc in errors:
            assert secret not in str(exc) and secret not in repr(exc) and secret not in repr(exc.args)


# ---- the async client (what triggers use) ----------------------------------------------------


def run_async(coro_fn):
    """Run a coroutine function under asyncio, as the triggerer does."""
    return asyncio.run(coro_fn())


def test_async_client_reads_the_connection_and_unwraps_the_envelope(cf):
    hook = D1Hook()

    async def go():
        async with hook.async_client() as client:
            dbs = await hook.aget(hook.account_path("/d1/database"))
            resp = await hook.arequest("GET", "/user/tokens/verify", idempotent=True)
            assert hook._aclient is client  # both calls went through the block's client
        return dbs, resp

    dbs, resp = run_async(go)
    assert cf.d1_id in {db["uuid"] for db in dbs}
    assert resp.status_code == 200 and resp.json()["result"]["status"] == "active"
    assert hook._aclient is None  # closed and released after the block
    # Without a block, a call opens a client of its own.
    assert run_async(lambda: hook.acall("GET", "/user/tokens/verify", idempotent=True))["status"] == "active"
    assert hook.budget.remaining is not None  # the async answers fed the same budget


def test_async_errors_are_the_same_typed_errors(cf, monkeypatch):
    use_conn(monkeypatch, "cf_bad", token="not-the-token", account_id=cf.account_id, base_url=cf.api_url)
    bad = CloudflareBaseHook("cf_bad")
    with pytest.raises(CloudflareAuthError) as err:
        run_async(lambda: bad.aget(bad.account_path("/d1/database")))
    assert (err.value.status, err.value.code, err.value.method) == (403, 10000, "GET")
    missing = str(uuid.uuid4())
    with pytest.raises(CloudflareNotFound) as err:
        run_async(lambda: D1Hook().aget(D1Hook().account_path(f"/d1/database/{missing}")))
    assert (err.value.status, err.value.code) == (404, 7404)
    with pytest.raises(CloudflareBadRequest) as err:
        run_async(
            lambda: D1Hook().acall(
                "POST",
                D1Hook().account_path(f"/d1/database/{cf.d1_id}/query"),
                idempotent=True,
                json_body={"sql": "SELEKT"},
            )
        )
    assert err.value.code == 7500


def test_async_http_200_failure_and_non_json_answers_raise(stub):
    hook = CloudflareBaseHook("cf_stub", max_attempts=2)
    with pytest.raises(CloudflareError) as err:
        run_async(lambda: hook.aget("/quiet-failure"))
    assert err.value.code == 1234 and err.value.message == "refused quietly"
    with pytest.raises(CloudflareError, match="expected a JSON envelope"):
        run_async(lambda: hook.aget("/captive-portal"))
    with pytest.raises(CloudflareServerError):
        run_async(lambda: hook.aget("/bad-gateway"))
    assert stub.hits["/client/v4/bad-gateway"] == 2  # retried like the sync client


def test_async_retries_follow_the_same_policy(private):
    private.add_faults("429:route=GET */d1/database,count=1,retry_after=1")
    hook = D1Hook()
    started = time.monotonic()
    assert run_async(lambda: hook.aget(hook.account_path("/d1/database"))) == []
    assert time.monotonic() - started >= 1.0  # Retry-After honoured
    private.add_faults("5xx:route=POST */d1/database,count=1,status=502")
    with pytest.raises(CloudflareServerError):  # a write that may have been applied is not sent again
        run_async(
            lambda: hook.acall("POST", hook.account_path("/d1/database"), idempotent=False, json_body={"name": "x"})
        )
    counters = private.counters()
    assert counters[D1_LIST] == 2 and counters[D1_CREATE] == 1


def test_async_connection_refused_is_a_cloudflare_error(cf, monkeypatch):
    use_conn(
        monkeypatch,
        "cf_closed",
        token=cf.token,
        account_id=cf.account_id,
        base_url=f"http://127.0.0.1:{free_port()}/client/v4",
    )
    hook = CloudflareBaseHook("cf_closed", max_attempts=2)
    with pytest.raises(CloudflareError, match="could not reach Cloudflare: ConnectError") as err:
        run_async(lambda: hook.aget("/user/tokens/verify"))
    assert cf.token not in str(err.value)


def test_async_bulk_waits_at_the_reserve_without_blocking_the_loop_and_monitor_passes(lf_fresh, connect):
    server = lf_fresh("--rate-limit", "30/3", seed=False)
    connect(server, budget={"bulk_rps": 0, "reserve": 10})
    monitor, bulk = CloudflareBaseHook(priority="monitor"), CloudflareBaseHook(priority="bulk")
    path = monitor.account_path("/d1/database")
    for _ in range(21):  # 30 - 21 = 9 left: under the bulk clients' reserve
        monitor.get(path)
    assert bulk.budget is monitor.budget and bulk.budget.remaining <= 10

    async def go():
        ticks = 0

        async def ticker():
            nonlocal ticks
            while True:
                await asyncio.sleep(0.05)
                ticks += 1

        clock = asyncio.create_task(ticker())
        started = time.monotonic()
        await monitor.aget(path)  # the reserve is monitoring's
        monitor_took = time.monotonic() - started
        started = time.monotonic()
        await bulk.aget(path)  # held until the hold ends (at least a second)
        bulk_took = time.monotonic() - started
        clock.cancel()
        return monitor_took, bulk_took, ticks

    waited_before = bulk.budget.waited
    monitor_took, bulk_took, ticks = run_async(go)
    assert monitor_took < 1.0 and bulk_took >= 0.9
    assert bulk.budget.waited > waited_before
    assert ticks >= 10  # the event loop kept running while bulk waited
    assert server.counters().get("429_sent", 0) == 0
