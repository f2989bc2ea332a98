"""Restricted tokens (`--token NAME=PERMISSIONS`): 403/10000 on what a token lacks, everything else as usual."""

from __future__ import annotations

import pytest
import requests

from localflare import testing
from localflare.permissions import PERMISSIONS, parse_token, required

# One harmless request per permission group: (method, path, json body).
PROBES = {
    "D1 Read": ("GET", "/accounts/{acct}/d1/database", None),
    "D1 Edit": ("POST", "/accounts/{acct}/d1/database/{db}/query", {"sql": "SELECT 1"}),
    "Vectorize Read": ("GET", "/accounts/{acct}/vectorize/v2/indexes/{index}", None),
    "Vectorize Edit": (
        "POST",
        "/accounts/{acct}/vectorize/v2/indexes",
        {"name": "x", "config": {"dimensions": 2, "metric": "nope"}},
    ),
    "Workers KV Storage Read": ("GET", "/accounts/{acct}/storage/kv/namespaces", None),
    "Workers KV Storage Edit": ("POST", "/accounts/{acct}/storage/kv/namespaces/{ns}/bulk/delete", []),
    "Workers Scripts Read": ("GET", "/accounts/{acct}/workers/scripts/claudes-friend/deployments", None),
    "Workers AI Read": ("POST", "/accounts/{acct}/ai/run/@cf/baai/bge-small-en-v1.5", {"text": "hi"}),
    "Account Settings Read": ("GET", "/accounts/{acct}", None),
    "User Details Read": ("GET", "/user", None),
    "Memberships Read": ("GET", "/memberships", None),
}
# User-level routes refuse with 9109, which wrangler (whoami, the account choice) reads as "not allowed".
USER_LEVEL = {"User Details Read", "Memberships Read"}


@pytest.fixture(scope="module")
def restricted(tmp_path_factory):
    """A demo localflare with one token per permission group that lacks exactly that group, and one with none."""
    args = []
    for perm in PERMISSIONS:
        args += ["--token", f"without-{perm.replace(' ', '-')}={','.join(p for p in PERMISSIONS if p != perm)}"]
    args += ["--token", "nothing="]
    server = testing.start(tmp_path_factory.mktemp("lf-tokens"), "--seed", "demo", *args)
    yield server
    server.stop()


def _send(server, token: str, method: str, path: str, body):
    path = path.format(acct=server.account_id, db=server.d1_id, index=server.index_name, ns=server.kv_id)
    return requests.request(
        method, f"{server.api_url}{path}", json=body, timeout=30, headers={"Authorization": f"Bearer {token}"}
    )


@pytest.mark.parametrize("perm", [p for p in PERMISSIONS if p != "Account Analytics Read"])
def test_a_token_lacking_one_group_is_refused_there_and_served_elsewhere(restricted, perm):
    token = f"without-{perm.replace(' ', '-')}"
    refused = _send(restricted, token, *PROBES[perm])
    assert refused.status_code == 403
    error = (
        {"code": 9109, "message": "Unauthorized to access requested resource"}
        if perm in USER_LEVEL
        else {"code": 10000, "message": "Authentication error"}
    )
    assert refused.json() == {
        "success": False,
        "errors": [error],
        "messages": [],
        "result": None,
    }
    for other, probe in PROBES.items():
        if other != perm:
            resp = _send(restricted, token, *probe)
            assert resp.status_code != 403, (other, resp.text)


def test_graphql_without_analytics_answers_in_graphql_shape(restricted):
    body = {"query": '{ viewer { accounts(filter: {accountTag: "%s"}) { __typename } } }' % restricted.account_id}
    resp = _send(restricted, "without-Account-Analytics-Read", "POST", "/graphql", body)
    assert resp.status_code == 403
    assert resp.json()["data"] is None
    assert resp.json()["errors"][0]["message"] == "not authorized for that account"
    assert _send(restricted, restricted.token, "POST", "/graphql", body).status_code == 200


def test_token_verify_works_for_any_valid_token_and_no_other(restricted):
    for path in ("/user/tokens/verify", "/accounts/{acct}/tokens/verify"):
        assert _send(restricted, "nothing", "GET", path, None).json()["result"]["status"] == "active"
    assert _send(restricted, "nothing", "GET", "/accounts/{acct}/d1/database", None).status_code == 403
    assert _send(restricted, "not-a-token", "GET", "/user/tokens/verify", None).status_code == 401


def test_account_details_and_another_account(restricted):
    resp = _send(restricted, restricted.token, "GET", "/accounts/{acct}", None)
    assert resp.status_code == 200 and resp.json()["result"]["id"] == restricted.account_id
    other = requests.get(
        f"{restricted.api_url}/accounts/{'f' * 32}", timeout=10, headers={"Authorization": f"Bearer {restricted.token}"}
    )
    assert other.status_code == 403 and other.json()["errors"][0]["code"] == 9109


def test_the_default_token_keeps_every_permission(restricted):
    for perm, probe in PROBES.items():
        assert _send(restricted, restricted.token, *probe).status_code != 403, perm


@pytest.mark.parametrize("spec", ["D1 Reed", "noequals", "=D1 Read", "t=D1 Read,<script>", "t=D1 Read\nD1 Edit"])
def test_bad_token_specs_are_refused(spec):
    with pytest.raises(ValueError):
        parse_token(spec)


def test_a_typo_in_a_permission_stops_the_server(tmp_path):
    with pytest.raises(RuntimeError, match="unknown permission group"):
        testing.start(tmp_path / "lf", "--token", "t=D1 Reed", timeout=30)


def test_every_route_needs_a_known_group_or_none():
    from localflare.app import Config, LocalFlare

    lf = LocalFlare(Config(data_dir=str(__import__("tempfile").mkdtemp())))
    for method, template, _regex, _handler in lf.routes:
        need = required(method, template)
        assert need is None or need in PERMISSIONS, (method, template)
        if need is None:
            # GET /accounts lists the accounts a token can reach, whatever it may do there.
            assert template.endswith("/tokens/verify") or template == "/accounts", (method, template)
