"""Workers scripts, Workers AI, GraphQL analytics, and PRISM's Worker agreeing with them."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone

import pytest
import requests

from localflare.testing import Api

WORKERS_QUERY = """
query($acct: string!, $start: Time!, $end: Time!, $script: string!) {
  viewer { accounts(filter: {accountTag: $acct}) {
    workersInvocationsAdaptive(limit: 10000, filter: {scriptName: $script, datetime_geq: $start, datetime_lt: $end},
                               orderBy: [datetimeHour_ASC]) {
      sum { requests errors wallTime }
      quantiles { wallTimeP50 wallTimeP95 wallTimeP99 }
      dimensions { DIMS }
    } } } }"""


def gql(api, query, variables, status=200):
    resp = api.post("/graphql", json={"query": query, "variables": variables})
    assert resp.status_code == status, resp.text
    return resp.json()


def window(hours_back: int):
    end = datetime.now(timezone.utc).replace(minute=0, second=0, microsecond=0)
    return (end - timedelta(hours=hours_back)).isoformat().replace("+00:00", "Z"), end.isoformat().replace(
        "+00:00", "Z"
    )


def test_deployments_and_versions_have_the_real_shapes(api):
    deps = api.get("/accounts/{acct}/workers/scripts/claudes-friend/deployments").json()["result"]
    assert set(deps) == {"deployments"} and len(deps["deployments"]) == 3
    latest = deps["deployments"][0]
    assert latest["strategy"] == "percentage" and latest["versions"][0]["percentage"] == 100.0
    versions = api.get("/accounts/{acct}/workers/scripts/claudes-friend/versions").json()["result"]["items"]
    assert versions[0]["number"] == 3 and versions[0]["id"] == latest["versions"][0]["version_id"]
    one = api.get(f"/accounts/{{acct}}/workers/scripts/claudes-friend/versions/{versions[0]['id']}").json()["result"]
    assert {k: v for k, v in one.items() if k != "resources"} == versions[0]
    assert {b["type"] for b in one["resources"]["bindings"]} == {"d1", "vectorize", "kv_namespace", "ai"}
    assert api.get("/accounts/{acct}/workers/scripts/nope/deployments").json()["errors"][0]["code"] == 10007


def test_ai_embeddings_match_the_seeded_vectors(api, lf):
    chunk = api.post(
        f"/accounts/{{acct}}/d1/database/{lf.d1_id}/query",
        json={"sql": "SELECT id, content FROM document_chunks WHERE id = 'chk-0000007-02'"},
    ).json()["result"][0]["results"][0]
    run = api.post(
        "/accounts/{acct}/ai/run/@cf/baai/bge-small-en-v1.5", json={"text": [chunk["content"], chunk["content"]]}
    ).json()["result"]
    assert run["shape"] == [2, 384] and run["data"][0] == run["data"][1]
    match = api.post(
        f"/accounts/{{acct}}/vectorize/v2/indexes/{lf.index_name}/query", json={"vector": run["data"][0], "topK": 1}
    ).json()["result"]["matches"][0]
    assert match["id"] == chunk["id"] and match["score"] == pytest.approx(1.0, abs=1e-5)
    assert api.post("/accounts/{acct}/ai/run/@cf/meta/nope", json={"text": "x"}).json()["errors"][0]["code"] == 5007
    assert api.post("/accounts/{acct}/ai/run/@cf/baai/bge-small-en-v1.5", json={"text": ["x"] * 101}).status_code == 400


def test_workers_analytics_group_and_total_agree(api, lf):
    start, end = window(48)
    variables = {"acct": lf.account_id, "start": start, "end": end, "script": "claudes-friend"}
    hourly = gql(api, WORKERS_QUERY.replace("DIMS", "datetimeHour"), variables)
    assert hourly["errors"] is None
    groups = hourly["data"]["viewer"]["accounts"][0]["workersInvocationsAdaptive"]
    assert len(groups) == 48
    assert [g["dimensions"]["datetimeHour"] for g in groups] == sorted(g["dimensions"]["datetimeHour"] for g in groups)
    total = gql(api, WORKERS_QUERY.replace("dimensions { DIMS }", ""), variables)["data"]["viewer"]["accounts"][0][
        "workersInvocationsAdaptive"
    ]
    assert len(total) == 1
    assert total[0]["sum"]["requests"] == sum(g["sum"]["requests"] for g in groups) > 0
    assert total[0]["sum"]["errors"] == sum(g["sum"]["errors"] for g in groups)
    q = total[0]["quantiles"]
    assert 0 < q["wallTimeP50"] < q["wallTimeP95"] < q["wallTimeP99"]
    by_status = gql(api, WORKERS_QUERY.replace("DIMS", "status"), variables)["data"]["viewer"]["accounts"][0][
        "workersInvocationsAdaptive"
    ]
    statuses = {g["dimensions"]["status"]: g["sum"] for g in by_status}
    assert statuses["success"]["errors"] == 0
    assert sum(s["requests"] for s in statuses.values()) == total[0]["sum"]["requests"]


def test_graphql_errors_come_with_http_200(api, lf):
    start, end = window(2)
    variables = {"acct": lf.account_id, "start": start, "end": end, "script": "claudes-friend"}
    unknown = gql(api, WORKERS_QUERY.replace("DIMS", "noSuchField"), variables)
    assert unknown["data"] is None and "noSuchField" in unknown["errors"][0]["message"]
    wide = gql(api, WORKERS_QUERY.replace("DIMS", "date"), {**variables, "start": window(24 * 40)[0]})
    assert wide["errors"][0]["message"] == "query time range is too large"
    old = gql(
        api,
        WORKERS_QUERY.replace("DIMS", "date"),
        {**variables, "start": "2020-01-01T00:00:00Z", "end": "2020-01-02T00:00:00Z"},
    )
    assert "cannot request data older than" in old["errors"][0]["message"]
    other = gql(api, WORKERS_QUERY.replace("DIMS", "date"), {**variables, "acct": "f" * 32})
    assert other["errors"][0]["message"] == "not authorized for that account"
    too_many = gql(api, WORKERS_QUERY.replace("10000", "10001").replace("DIMS", "date"), variables)
    assert "limit must be positive number" in too_many["errors"][0]["message"]
    assert (
        requests.get(f"{lf.api_url}/graphql", headers={"Authorization": f"Bearer {lf.token}"}, timeout=10).status_code
        == 405
    )


def test_d1_ai_and_kv_datasets(api, lf):
    start, end = window(24)
    query = """query($acct: string!, $start: Time!, $end: Time!, $db: string!) { viewer { accounts(filter: {accountTag: $acct}) {
      d1AnalyticsAdaptiveGroups(limit: 100, filter: {databaseId: $db, datetimeHour_geq: $start, datetimeHour_lt: $end}) {
        sum { readQueries writeQueries rowsRead rowsWritten } }
      aiInferenceAdaptiveGroups(limit: 100, filter: {datetime_geq: $start, datetime_lt: $end}) {
        count sum { totalNeurons } dimensions { modelId } }
      kvOperationsAdaptiveGroups(limit: 100, filter: {datetime_geq: $start, datetime_lt: $end}) {
        sum { requests } dimensions { actionType } } } } }"""
    data = gql(api, query, {"acct": lf.account_id, "start": start, "end": end, "db": lf.d1_id})["data"]["viewer"][
        "accounts"
    ][0]
    d1 = data["d1AnalyticsAdaptiveGroups"][0]["sum"]
    assert d1["rowsRead"] == 25 * d1["readQueries"] > 0
    ai = data["aiInferenceAdaptiveGroups"][0]
    assert ai["dimensions"]["modelId"] == "@cf/baai/bge-small-en-v1.5" and ai["sum"]["totalNeurons"] > 0
    assert {g["dimensions"]["actionType"] for g in data["kvOperationsAdaptiveGroups"]} == {
        "read",
        "write",
        "delete",
        "list",
    }


def test_d1_filter_declared_with_wranglers_type(api, lf):
    """`wrangler d1 info` declares its D1 filter as ZoneWorkersRequestsFilter_InputObject, and Cloudflare
    answers it; any other mismatch between a variable's type and its use is still refused."""
    start, end = window(24)
    query = """query q($accountTag: string, $filter: %s) { viewer { accounts(filter: {accountTag: $accountTag}) {
      d1AnalyticsAdaptiveGroups(limit: 10000, filter: $filter) { sum { readQueries rowsRead } dimensions { datetimeHour } }
    } } }"""
    variables = {
        "accountTag": lf.account_id,
        "filter": {"AND": [{"datetimeHour_geq": start, "datetimeHour_leq": end, "databaseId": lf.d1_id}]},
    }
    body = gql(api, query % "ZoneWorkersRequestsFilter_InputObject", variables)
    assert body["errors"] is None
    groups = body["data"]["viewer"]["accounts"][0]["d1AnalyticsAdaptiveGroups"]
    assert len(groups) == 24 and sum(g["sum"]["readQueries"] for g in groups) > 0
    wrong = gql(api, query % "KvOperationsAdaptiveGroupsFilter_InputObject", variables)
    assert wrong["data"] is None and "KvOperationsAdaptiveGroupsFilter_InputObject" in wrong["errors"][0]["message"]


def test_worker_health_and_metrics_agree_with_the_seed(lf, api):
    health = requests.get(f"{lf.worker_url}/health", timeout=10)
    assert health.status_code == 200 and health.json()["status"] == "healthy"
    for _ in range(3):  # an hour boundary between the two calls would shift the window
        metrics = requests.get(f"{lf.worker_url}/metrics", params={"period": "7d"}, timeout=10).json()
        variables = {
            "acct": lf.account_id,
            "start": metrics["window"]["start"],
            "end": metrics["window"]["end"],
            "script": "claudes-friend",
        }
        total = gql(api, WORKERS_QUERY.replace("dimensions { DIMS }", ""), variables)["data"]["viewer"]["accounts"][0][
            "workersInvocationsAdaptive"
        ][0]
        if total["sum"]["requests"] == metrics["requests"]["total"]:
            break
    assert metrics["requests"]["total"] == total["sum"]["requests"]
    assert metrics["requests"]["errors"] == total["sum"]["errors"]
    assert metrics["performance"]["p95_latency_ms"] == pytest.approx(total["quantiles"]["wallTimeP95"] / 1000, rel=0.01)
    assert metrics["resources"]["neurons_limit"] == 10000
    assert metrics["resources"]["vectorize_stored_dimensions"] == 615 * 384
    cache = api.post(
        f"/accounts/{{acct}}/d1/database/{lf.d1_id}/query", json={"sql": "SELECT COUNT(*) AS n FROM cache_metadata"}
    ).json()["result"][0]["results"][0]["n"]
    assert metrics["cache"]["entries"] == cache
    assert requests.get(f"{lf.worker_url}/metrics", params={"period": "soon"}, timeout=10).status_code == 400


def test_worker_turns_unhealthy_and_error_rate_fault(lf_fresh):
    server = lf_fresh()
    api = Api(server)
    server.add_faults("worker_unhealthy:count=1")
    assert requests.get(f"{server.worker_url}/health", timeout=10).status_code == 503
    assert requests.get(f"{server.worker_url}/health", timeout=10).status_code == 200
    api.delete(f"/accounts/{{acct}}/vectorize/v2/indexes/{server.index_name}").raise_for_status()
    down = requests.get(f"{server.worker_url}/health", timeout=10)
    assert down.status_code == 503 and down.json()["checks"]["vectorize"].startswith("error")
    before = requests.get(f"{server.worker_url}/metrics", params={"period": "6h"}, timeout=10).json()["requests"]
    start = (datetime.now(timezone.utc) - timedelta(hours=8)).isoformat()
    server.add_faults(f"error_rate:rate=0.2,start={start.replace(',', '')}")
    after = requests.get(f"{server.worker_url}/metrics", params={"period": "6h"}, timeout=10).json()["requests"]
    assert before["error_rate"] < 1 and after["error_rate"] == pytest.approx(20, abs=0.5)


def test_graphql_has_its_own_rate_limit(lf_fresh):
    server = lf_fresh("--graphql-rate-limit", "2/60", seed=False)
    api = Api(server)
    codes = [api.post("/graphql", json={"query": "{ viewer { budget } }"}).status_code for _ in range(3)]
    assert codes == [200, 200, 429]
    assert api.get("/accounts/{acct}/d1/database").status_code == 200  # the REST budget is separate
