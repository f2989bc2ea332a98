"""What every endpoint shares: the envelope, auth, unknown routes, the rate limit, faults, counters."""

from __future__ import annotations

import time

import requests

from localflare.testing import Api


def test_envelope_on_success(api):
    resp = api.get("/accounts/{acct}/d1/database")
    body = resp.json()
    assert resp.status_code == 200
    assert set(body) >= {"success", "errors", "messages", "result", "result_info"}
    assert body["success"] is True and body["errors"] == []


def test_unknown_route_is_7003(api):
    resp = api.get("/accounts/{acct}/no/such/thing")
    assert resp.status_code == 400
    assert resp.json() == {
        "success": False,
        "errors": [{"code": 7003, "message": "No route for the URI"}],
        "messages": [],
        "result": None,
    }


def test_bad_token_gets_authentication_error(lf):
    resp = requests.get(
        f"{lf.api_url}/accounts/{lf.account_id}/d1/database", headers={"Authorization": "Bearer nope"}, timeout=10
    )
    assert resp.status_code == 403
    assert resp.json()["errors"] == [{"code": 10000, "message": "Authentication error"}]
    assert resp.json()["result"] is None


def test_missing_or_malformed_auth_header(lf):
    url = f"{lf.api_url}/accounts/{lf.account_id}/d1/database"
    assert requests.get(url, timeout=10).json()["errors"][0]["code"] == 10000
    assert requests.get(url, headers={"Authorization": "Basic abc"}, timeout=10).json()["errors"][0]["code"] == 6003


def test_other_account_is_refused(api):
    resp = api.get("/accounts/ffffffffffffffffffffffffffffffff/d1/database")
    assert resp.status_code == 403
    assert resp.json()["errors"][0]["code"] == 9109


def test_token_verify(lf, api):
    assert api.get("/user/tokens/verify").json()["result"]["status"] == "active"
    bad = requests.get(f"{lf.api_url}/user/tokens/verify", headers={"Authorization": "Bearer nope"}, timeout=10)
    assert bad.status_code == 401 and bad.json()["errors"][0]["code"] == 1000


def test_rate_limit_blocks_for_the_window_then_recovers(lf_fresh):
    server = lf_fresh("--rate-limit", "5/2", seed=False)
    api = Api(server)
    statuses = []
    for _ in range(5):
        resp = api.get("/accounts/{acct}/d1/database")
        statuses.append(resp.status_code)
        assert int(resp.headers["x-ratelimit-limit"]) == 5
    assert statuses == [200] * 5
    assert resp.headers["x-ratelimit-remaining"] == "0"
    blocked = api.get("/accounts/{acct}/d1/database")
    assert blocked.status_code == 429
    assert blocked.json()["errors"][0]["code"] == 971
    assert 1 <= int(blocked.headers["retry-after"]) <= 2
    assert "x-ratelimit-reset" in blocked.headers
    # Still blocked while the block lasts, whatever the window says.
    assert api.get("/accounts/{acct}/d1/database").status_code == 429
    time.sleep(int(blocked.headers["retry-after"]) + 0.2)
    assert api.get("/accounts/{acct}/d1/database").status_code == 200
    assert server.counters()["429_sent"] == 2


def test_injected_faults_fire_the_given_number_of_times(lf_fresh):
    server = lf_fresh(seed=False)
    api = Api(server)
    server.add_faults("429:route=*/d1/database,count=2,retry_after=3;5xx:route=GET */d1/database,count=1,status=502")
    first, second, third, fourth = (api.get("/accounts/{acct}/d1/database") for _ in range(4))
    assert (first.status_code, second.status_code, third.status_code, fourth.status_code) == (429, 429, 502, 200)
    assert first.headers["retry-after"] == "3"
    assert third.json()["success"] is False
    counters = server.counters()
    assert counters["429_sent"] == 2 and counters["5xx_sent"] == 1
    assert counters["route:GET /accounts/{account_id}/d1/database"] == 4


def test_latency_fault_delays_matching_routes_only(lf_fresh):
    server = lf_fresh(seed=False)
    api = Api(server)
    server.add_faults("latency:route=*/vectorize/*,ms=400,count=1")
    started = time.monotonic()
    api.get("/accounts/{acct}/d1/database")
    fast = time.monotonic() - started
    started = time.monotonic()
    api.get("/accounts/{acct}/vectorize/v2/indexes")
    slow = time.monotonic() - started
    assert slow >= 0.4 > fast


def test_faults_admin_api_and_spec_errors(lf_fresh):
    server = lf_fresh(seed=False)
    server.add_faults("mutation_lag:seconds=3")
    assert server.admin("GET", "faults")["faults"][0]["kind"] == "mutation_lag"
    server.clear_faults()
    assert server.admin("GET", "faults")["faults"] == []
    bad = requests.post(f"{server.base_url}/__localflare/faults", json={"spec": "meteor:size=9"}, timeout=10)
    assert bad.status_code == 400 and "unknown fault kind" in bad.json()["error"]


def test_state_survives_a_restart(tmp_path):
    from localflare import testing

    server = testing.start(tmp_path / "lf", "--api-token", "tok-123")
    try:
        r = requests.post(
            f"{server.api_url}/accounts/{server.account_id}/d1/database",
            json={"name": "keepme"},
            headers={"Authorization": "Bearer tok-123"},
            timeout=10,
        )
        db = r.json()["result"]["uuid"]
        requests.post(
            f"{server.api_url}/accounts/{server.account_id}/d1/database/{db}/query",
            json={"sql": "CREATE TABLE t(x); INSERT INTO t VALUES (42)"},
            headers={"Authorization": "Bearer tok-123"},
            timeout=10,
        ).raise_for_status()
    finally:
        server.stop()
    again = testing.start(tmp_path / "lf", "--api-token", "tok-123")
    try:
        rows = requests.post(
            f"{again.api_url}/accounts/{again.account_id}/d1/database/{db}/query",
            json={"sql": "SELECT x FROM t"},
            headers={"Authorization": "Bearer tok-123"},
            timeout=10,
        ).json()["result"][0]["results"]
        assert rows == [{"x": 42}]
    finally:
        again.stop()
