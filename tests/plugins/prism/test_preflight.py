"""The preflight's checks against a real localflare with restricted tokens, the S3 stand-in and Airflow's pools."""

from __future__ import annotations

import json
import os

import pytest

from localflare import testing
from prism import preflight
from prism.settings.config import load_config

ALL = list(preflight.PERMISSIONS)
HOSTILE = "<script>alert('x')</script>\n\"quoted\" é中\r\x00" + "y" * 3000


def _token_name(perm: str) -> str:
    return "without-" + perm.replace(" ", "-")


@pytest.fixture(scope="module")
def restricted(tmp_path_factory, exchanges_file):
    """A demo localflare with, per permission group the DAGs use, a token that lacks exactly that group."""
    args = []
    for perm in ALL:
        args += ["--token", f"{_token_name(perm)}={','.join(p for p in ALL if p != perm)}"]
    args += ["--token", f"no-settings={','.join(ALL)}"]  # everything but Account Settings Read
    server = testing.start(
        tmp_path_factory.mktemp("lf-preflight"),
        "--seed",
        "demo",
        "--record",
        str(exchanges_file),
        "--mutation-lag",
        "0.2",
    )
    server.stop()
    # Restart with the tokens, keeping the seeded data.
    server = testing.start(server.data_dir, "--record", str(exchanges_file), "--mutation-lag", "0.2", *args)
    # The full token under its own connection id, for looking at what the preflight left.
    os.environ["AIRFLOW_CONN_LF_ADMIN"] = json.dumps(
        {
            "conn_type": "cloudflare",
            "password": server.token,
            "extra": {"account_id": server.account_id, "base_url": server.api_url},
        }
    )
    yield server
    os.environ.pop("AIRFLOW_CONN_LF_ADMIN", None)
    server.stop()


def use_token(monkeypatch, server, token: str, account_id: str | None = None) -> None:
    monkeypatch.setenv(
        "AIRFLOW_CONN_CLOUDFLARE_DEFAULT",
        json.dumps(
            {
                "conn_type": "cloudflare",
                "password": token,
                "extra": {"account_id": account_id or server.account_id, "base_url": server.api_url},
            }
        ),
    )
    monkeypatch.setenv("AIRFLOW_CONN_PRISM_WORKER", json.dumps({"conn_type": "http", "host": server.worker_url}))


def fails(checks) -> list[str]:
    return [c.line for c in checks if c.status == "FAIL"]


def leftovers(server) -> list[str]:
    """Anything named preflight-scratch-* in the account: databases, indexes, KV keys."""
    from airflow_provider_cloudflare.hooks.d1 import D1Hook
    from airflow_provider_cloudflare.hooks.kv import KVHook
    from airflow_provider_cloudflare.hooks.vectorize import VectorizeHook

    admin = {"cloudflare_conn_id": "lf_admin"}
    found = [d["name"] for d in D1Hook(**admin).list_databases() if d["name"].startswith(preflight.SCRATCH_PREFIX)]
    found += [
        i["name"] for i in VectorizeHook(**admin).list_indexes() if i["name"].startswith(preflight.SCRATCH_PREFIX)
    ]
    found += [k["name"] for k in KVHook(**admin).list_keys(server.kv_id) if preflight.SCRATCH_PREFIX in k["name"]]
    return found


def test_a_full_token_passes_every_check_and_leaves_nothing(restricted, monkeypatch):
    use_token(monkeypatch, restricted, restricted.token)
    checks = preflight.cloudflare_checks(load_config(), prove_writes=True)
    assert fails(checks) == [] and all(c.status == "PASS" for c in checks), [c.line for c in checks]
    names = " ".join(c.name for c in checks)
    for perm in ALL:  # every permission group the DAGs use is probed
        assert f"[{perm}]" in names
    assert leftovers(restricted) == []


@pytest.mark.parametrize("perm", ALL)
def test_a_token_lacking_one_permission_fails_naming_exactly_it(restricted, monkeypatch, perm):
    use_token(monkeypatch, restricted, _token_name(perm))
    failed = fails(preflight.cloudflare_checks(load_config(), prove_writes=True))
    assert failed, f"no FAIL line for a token without {perm}"
    for line in failed:
        assert f"lacks '{perm}'" in line and f"give the API token the permission '{perm}'" in line, line
        assert not [other for other in ALL if other != perm and other in line], line
    assert leftovers(restricted) == []


def test_without_account_settings_read_the_account_is_proven_by_a_d1_list(restricted, monkeypatch):
    use_token(monkeypatch, restricted, "no-settings")
    checks = preflight.cloudflare_checks(load_config(), prove_writes=False)
    account = next(c for c in checks if c.name == "account")
    assert account.status == "PASS" and "Account Settings Read" in account.detail
    assert fails(checks) == []


def test_prove_writes_off_writes_nothing(restricted, monkeypatch):
    from airflow_provider_cloudflare.hooks.d1 import D1Hook

    use_token(monkeypatch, restricted, restricted.token)
    tables = "SELECT name, (SELECT COUNT(*) FROM documents) AS n FROM sqlite_master ORDER BY name"
    before = (D1Hook().rows(restricted.d1_id, tables), restricted.admin("GET", "info"))
    restricted.admin("DELETE", "counters")
    checks = preflight.cloudflare_checks(load_config(), prove_writes=False)
    routes = {k.removeprefix("route:") for k in restricted.counters() if k.startswith("route:")}
    restricted.admin("DELETE", "counters")
    assert fails(checks) == []
    assert [c.status for c in checks if "scratch" in c.name] == ["SKIP"] * 3
    # Only GETs and read-only POSTs (SELECT 1, a query, an embedding, GraphQL) reached Cloudflare.
    read_posts = {
        "POST /accounts/{account_id}/d1/database/{database_id}/query",
        "POST /accounts/{account_id}/vectorize/v2/indexes/{index_name}/query",
        "POST /accounts/{account_id}/ai/run/{model_name:path}",
        "POST /graphql",
    }
    assert {r for r in routes if not r.startswith("GET ")} <= read_posts, routes
    assert (D1Hook().rows(restricted.d1_id, tables), restricted.admin("GET", "info")) == before
    assert leftovers(restricted) == []


@pytest.mark.parametrize(
    "token, account, expect",
    [
        ("not-a-token", None, "token: the API token is not valid"),
        (None, "f" * 32, "account: account " + "f" * 32 + " is not reachable"),
    ],
)
def test_a_bad_token_or_account_stops_at_the_first_line(restricted, monkeypatch, token, account, expect):
    use_token(monkeypatch, restricted, token or restricted.token, account)
    checks = preflight.cloudflare_checks(load_config(), prove_writes=True)
    assert checks[-1].status == "FAIL" and checks[-1].line.startswith("FAIL " + expect), checks[-1].line
    assert "— fix: set the API token (password) and account_id" in checks[-1].line


def test_missing_resources_and_a_wrong_dimension_each_fail_with_a_fix(restricted, monkeypatch):
    use_token(monkeypatch, restricted, restricted.token)
    cfg = load_config(
        {
            "cloudflare": {
                "d1_database": "no-such-db",
                "vectorize_dimensions": 768,
                "kv_namespace": "no-such-namespace",
                "worker_name": "no-such-worker",
            }
        }
    )
    by_name = {c.name: c for c in preflight.cloudflare_checks(cfg, prove_writes=False)}
    assert by_name["D1 database [D1 Read]"].line.startswith("FAIL D1 database [D1 Read]: not found")
    assert "— fix: create it (`wrangler d1 create no-such-db`)" in by_name["D1 database [D1 Read]"].line
    vec = by_name["Vectorize index [Vectorize Read]"]
    assert vec.status == "FAIL" and "has dimensions 384 and metric cosine, the config wants 768/cosine" in vec.detail
    assert "recreate the index" in vec.fix
    assert "wrangler kv namespace create no-such-namespace" in by_name["KV namespace [Workers KV Storage Read]"].line
    assert "deploy the Worker `no-such-worker`" in by_name["Worker script [Workers Scripts Read]"].line
    assert by_name["D1 query [D1 Edit]"].status == "SKIP"


def test_hostile_names_stay_one_escaped_line(restricted, monkeypatch):
    use_token(monkeypatch, restricted, restricted.token)
    cfg = load_config({"cloudflare": {"kv_namespace": HOSTILE}})
    # The config schema refuses such a Worker name; the preflight's own guard is checked past it.
    cfg["cloudflare"]["worker_name"] = HOSTILE
    checks = preflight.cloudflare_checks(cfg, prove_writes=True)
    for check in checks:
        assert "\n" not in check.line and "\r" not in check.line and "\x00" not in check.line
        assert len(check.line) < 1100
    kv = next(c for c in checks if c.name.startswith("KV namespace"))
    assert kv.status == "FAIL" and "<script>alert(" in kv.line and "\\n" in kv.line
    worker = next(c for c in checks if c.name.startswith("Worker script"))
    assert worker.status == "FAIL" and "is not a Worker name" in worker.detail
    assert next(c for c in checks if c.name.startswith("KV scratch")).status == "SKIP"
    assert leftovers(restricted) == []


def test_a_forged_line_cannot_hide_in_a_detail():
    check = preflight.failed("x", "boom\nPASS everything: fine", "fix\nit")
    assert check.line.count("\n") == 0 and check.line.startswith("FAIL x: boom\\nPASS")


def test_the_bucket_probe_writes_reads_and_deletes(s3):
    checks = preflight.bucket_checks("prism-backups")
    assert [c.status for c in checks] == ["PASS", "PASS"], [c.line for c in checks]
    assert s3.list_keys("prism-backups", prefix="preflight/") == []


@pytest.mark.parametrize("bucket", ["no-such-bucket-preflight", "a" * 63])
def test_a_missing_bucket_fails_with_a_fix(s3, bucket):
    (check,) = preflight.bucket_checks(bucket)
    assert check.status == "FAIL" and "does not exist" in check.detail
    assert f"create the bucket '{bucket}'" in check.line


def test_pools_missing_or_with_other_slots_fail_with_the_command(airflow_db):
    have = {"cloudflare_heavy": 2}
    checks = preflight.pool_checks({"cloudflare_heavy": 3, "prism_deletes": 1}, reader=lambda: have)
    assert [c.line for c in checks] == [
        "FAIL pool cloudflare_heavy: has 2 slots, the DAGs are built for 3 — fix: "
        '`airflow pools set cloudflare_heavy 3 "PRISM: cloudflare_heavy"` (or `airflow pools import include/pools.json`)',
        "FAIL pool prism_deletes: missing: tasks in a missing pool are never scheduled — fix: "
        '`airflow pools set prism_deletes 1 "PRISM: prism_deletes"` (or `airflow pools import include/pools.json`)',
    ]


def test_pools_are_read_from_airflow_through_the_orm_and_the_cli(airflow_db):
    import subprocess
    import sys

    subprocess.run(
        [sys.executable, "-m", "airflow", "pools", "set", "preflight_probe_pool", "2", "probe"],
        check=True,
        capture_output=True,
    )
    assert preflight.read_pools()["preflight_probe_pool"] == 2
    assert preflight.read_pools_cli()["preflight_probe_pool"] == 2  # the path a worker takes
    assert preflight.pool_checks({"preflight_probe_pool": 2})[0].status == "PASS"
    assert preflight.expected_pools()["cloudflare_heavy"] == 3


def test_the_worker_checks(lf_fresh, monkeypatch):
    server = lf_fresh()
    use_token(monkeypatch, server, server.token)
    assert [c.status for c in preflight.worker_checks()] == ["PASS", "PASS"]
    server.add_faults("worker_unhealthy")
    health, metrics = preflight.worker_checks()
    assert health.status == "FAIL" and "HTTP 503" in health.detail and "prism_worker" in health.fix
    monkeypatch.setenv("AIRFLOW_CONN_PRISM_WORKER", json.dumps({"conn_type": "http", "host": "http://127.0.0.1:9"}))
    assert [c.status for c in preflight.worker_checks()] == ["FAIL", "FAIL"]


def test_the_verdict():
    assert preflight.verdict([]) == (False, "no check ran")
    assert preflight.verdict(["PASS a: b", "SKIP c: d — fix: e"]) == (True, "all 1 checks passed, 1 skipped")
    ok, summary = preflight.verdict(["PASS a: b", "FAIL c: d — fix: e"])
    assert not ok and summary == "1 of 2 checks failed: c: d"
