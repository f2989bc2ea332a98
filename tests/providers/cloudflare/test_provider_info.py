"""The `cloudflare` connection type: `airflow connections test` (a real CLI subprocess), what the providers
manager lists, the UI form's fields, and a connection saved through the UI's API used by the hooks."""

from __future__ import annotations

import asyncio
import json
import os
import subprocess
import sys

import pytest

from localflare import testing


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    # `analytics-only` cannot read the account's details nor list anything: the account stays unproven.
    server = testing.start(
        tmp_path_factory.mktemp("lf-conn"),
        "--token",
        "no-settings=D1 Read,Workers KV Storage Read",
        "--token",
        "analytics-only=Account Analytics Read",
    )
    yield server
    server.stop()


def cli(*args: str, conn: dict | None = None, test_connection: str = "Enabled") -> subprocess.CompletedProcess:
    env = {**os.environ, "AIRFLOW__CORE__TEST_CONNECTION": test_connection}
    if conn is not None:
        env["AIRFLOW_CONN_CLOUDFLARE_DEFAULT"] = json.dumps(conn)
    return subprocess.run(
        [sys.executable, "-m", "airflow", "connections", *args], env=env, capture_output=True, text=True, timeout=300
    )


def conn_for(server, token=None, account=None, conn_type="cloudflare", **extra) -> dict:
    return {
        "conn_type": conn_type,
        "password": token or server.token,
        "extra": {"account_id": account or server.account_id, "base_url": server.api_url, **extra},
    }


def test_a_good_token_and_account_pass(server, airflow_db):
    result = cli("test", "cloudflare_default", conn=conn_for(server))
    assert result.returncode == 0, result.stdout + result.stderr
    assert "Connection success!" in result.stdout


@pytest.mark.parametrize(
    "token, account, expect",
    [
        ("wrong-token", None, "the API token is not valid"),
        (None, "f" * 32, "is not reachable with this token"),
        ("analytics-only", None, "is not reachable with this token"),
        ("<script>alert(1)</script>", None, "the API token is not valid"),
    ],
)
def test_a_bad_token_or_a_wrong_account_fail(server, airflow_db, token, account, expect):
    result = cli("test", "cloudflare_default", conn=conn_for(server, token, account))
    assert result.returncode == 1
    assert "Connection failed!" in result.stdout and expect in result.stdout, result.stdout
    assert server.token not in result.stdout + result.stderr


def test_without_account_settings_read_a_list_proves_the_account(server, airflow_db):
    result = cli("test", "cloudflare_default", conn=conn_for(server, "no-settings"))
    assert result.returncode == 0, result.stdout + result.stderr


def test_the_cli_refuses_while_test_connection_is_disabled(server, airflow_db):
    # Airflow 3's default ([core] test_connection = Disabled): the CLI honours it, so deployments enable it.
    result = cli("test", "cloudflare_default", conn=conn_for(server), test_connection="Disabled")
    assert result.returncode == 1 and "Testing connections is disabled" in result.stdout


def test_a_generic_connection_cannot_be_tested_but_still_works_with_the_hooks(server, monkeypatch, airflow_db):
    result = cli("test", "cloudflare_default", conn=conn_for(server, conn_type="generic"))
    # Before the cloudflare type, this was the only outcome: generic has no hook that can test it.
    assert result.returncode == 1 and "Connection failed!" in result.stdout
    from airflow_provider_cloudflare.hooks.d1 import D1Hook

    monkeypatch.setenv("AIRFLOW_CONN_CLOUDFLARE_DEFAULT", json.dumps(conn_for(server, conn_type="generic")))
    assert [d["name"] for d in D1Hook().list_databases()] == []


def test_a_connection_saved_from_the_form_works(server, monkeypatch, airflow_db):
    """Saved in the metadata DB with conn_type cloudflare and the form's fields in the extra, as the UI does."""
    extra = json.dumps({"account_id": server.account_id, "base_url": server.api_url})
    added = cli("add", "cf_form", "--conn-type", "cloudflare", "--conn-password", server.token, "--conn-extra", extra)
    try:
        assert added.returncode == 0, added.stdout + added.stderr
        tested = cli("test", "cf_form")
        assert tested.returncode == 0 and "Connection success!" in tested.stdout, tested.stdout + tested.stderr
    finally:
        cli("delete", "cf_form")


def test_form_style_prefixed_extras_are_read(server, monkeypatch):
    from airflow_provider_cloudflare.hooks.d1 import D1Hook

    monkeypatch.setenv(
        "AIRFLOW_CONN_CF_PREFIXED",
        json.dumps(
            {
                "conn_type": "cloudflare",
                "password": server.token,
                "extra": {
                    "extra__cloudflare__account_id": server.account_id,
                    "extra__cloudflare__base_url": server.api_url,
                },
            }
        ),
    )
    hook = D1Hook(cloudflare_conn_id="cf_prefixed")
    assert hook.account_id == server.account_id and hook.test_connection()[0] is True


def test_the_form_offers_the_cloudflare_fields():
    from airflow.api_fastapi.core_api.services.ui.connections import HookMetaService

    HookMetaService.hook_meta_data.cache_clear()
    meta = {m.connection_type: m for m in HookMetaService.hook_meta_data()}
    cf = meta["cloudflare"]
    assert cf.hook_name == "Cloudflare"
    assert cf.hook_class_name == "airflow_provider_cloudflare.hooks.cloudflare.CloudflareBaseHook"
    assert set(cf.extra_fields) == {"account_id", "base_url"}
    assert cf.standard_fields.password.title == "API token"
    assert cf.standard_fields.host.hidden is True


def test_the_providers_manager_lists_the_connection_type_its_form_and_the_modules():
    import importlib

    from airflow.providers_manager import ProvidersManager
    from airflow.sdk.providers_manager_runtime import ProvidersManagerTaskRuntime

    from airflow_provider_cloudflare.get_provider_info import get_provider_info

    hook = ProvidersManagerTaskRuntime().hooks["cloudflare"]
    assert hook.hook_class_name == "airflow_provider_cloudflare.hooks.cloudflare.CloudflareBaseHook"
    assert (hook.package_name, hook.hook_name, hook.connection_testable) == (
        "airflow-provider-cloudflare",
        "Cloudflare",
        True,
    )
    assert hook.connection_id_attribute_name == "cloudflare_conn_id"

    pm = ProvidersManager()
    assert pm.providers["airflow-provider-cloudflare"].data["name"] == "Cloudflare"
    widgets = {k: v for k, v in pm.connection_form_widgets.items() if k.startswith("extra__cloudflare__")}
    assert set(widgets) == {"extra__cloudflare__account_id", "extra__cloudflare__base_url"}
    assert widgets["extra__cloudflare__account_id"].field["schema"]["title"] == "Account ID"
    assert widgets["extra__cloudflare__base_url"].field["schema"]["title"] == "API base URL"
    assert not any(w.is_sensitive for w in widgets.values())  # the token is the password field, masked anyway
    behaviour = pm.field_behaviours["cloudflare"]
    assert behaviour["hidden_fields"] == ["host", "schema", "login", "port"]
    assert behaviour["relabeling"] == {"password": "API token"}

    triggers = {t.trigger_class_name for t in pm.trigger if t.package_name == "airflow-provider-cloudflare"}
    assert triggers == {"airflow_provider_cloudflare.triggers.cloudflare"}
    info = get_provider_info()
    modules = [
        m for section in ("hooks", "operators", "triggers") for entry in info[section] for m in entry["python-modules"]
    ]
    modules += [t["python-module"] for t in info["transfers"]]
    package = "airflow_provider_cloudflare"
    assert set(modules) == {
        *(f"{package}.hooks.{m}" for m in ("cloudflare", "d1", "vectorize", "kv", "ai", "analytics")),
        f"{package}.operators.d1",
        f"{package}.transfers.cloudflare_to_s3",
        f"{package}.triggers.cloudflare",
    }
    for module in modules:
        importlib.import_module(module)  # every module listed exists


# What the 3.3 UI does with the form: POST /api/v2/connections with the standard fields it shows (empty
# ones left out) and the conn-fields as plain keys of the extra JSON, then the "Test" button posts the same
# body to /api/v2/connections/test. Run in a child process, as the API server is one.
UI_FORM = r"""
import json, sys
from fastapi.testclient import TestClient
from airflow.api_fastapi.app import create_app
from airflow.models.connection import Connection
from airflow.utils.session import create_session

body = json.loads(sys.argv[1])
client = TestClient(create_app())
auth = {"Authorization": "Bearer " + client.get("/auth/token").json()["access_token"]}
saved = client.post("/api/v2/connections", json=body, headers=auth)
tested = client.post("/api/v2/connections/test", json=body, headers=auth)
with create_session() as session:
    row = session.query(Connection).filter_by(conn_id=body["connection_id"]).one()
    stored = {"conn_type": row.conn_type, "password": row.password, "extra": row.extra_dejson}
    session.delete(row)
print(json.dumps({"saved": saved.status_code, "tested": tested.json(), "stored": stored}))
"""


def test_a_connection_saved_by_the_ui_form_works_with_the_hooks(server, monkeypatch, airflow_db):
    body = {
        "connection_id": "cf_ui_form",
        "conn_type": "cloudflare",
        "password": server.token,
        "extra": json.dumps({"account_id": server.account_id, "base_url": server.api_url}, indent=2),
    }
    env = {
        **os.environ,
        "AIRFLOW__CORE__TEST_CONNECTION": "Enabled",
        "AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_ALL_ADMINS": "True",
    }
    done = subprocess.run(
        [sys.executable, "-c", UI_FORM, json.dumps(body)], env=env, capture_output=True, text=True, timeout=300
    )
    assert done.returncode == 0, done.stderr[-3000:]
    result = json.loads(done.stdout.strip().splitlines()[-1])
    assert result["saved"] == 201
    assert result["tested"]["status"] is True, result["tested"]
    assert "active" in result["tested"]["message"] and server.account_id in result["tested"]["message"]
    stored = result["stored"]
    assert stored == {
        "conn_type": "cloudflare",
        "password": server.token,
        "extra": {"account_id": server.account_id, "base_url": server.api_url},
    }

    # The stored connection, handed to the hooks unchanged, drives sync and async calls.
    from airflow_provider_cloudflare.hooks.d1 import D1Hook

    monkeypatch.setenv("AIRFLOW_CONN_CF_UI_FORM", json.dumps(stored))
    hook = D1Hook("cf_ui_form", priority="monitor")
    created = hook.create_database("ui-form-db")
    try:
        assert [d["name"] for d in hook.list_databases()] == ["ui-form-db"]
        got = asyncio.run(D1Hook("cf_ui_form").aget(hook.account_path(f"/d1/database/{created['uuid']}")))
        assert got["name"] == "ui-form-db"
    finally:
        hook.delete_database(created["uuid"])


def test_a_form_left_without_base_url_means_cloudflares_api(monkeypatch):
    from airflow_provider_cloudflare.hooks.cloudflare import DEFAULT_BASE_URL, CloudflareBaseHook

    # An optional form field left empty is saved as null.
    conn = {"conn_type": "cloudflare", "password": "t", "extra": {"account_id": "a" * 32, "base_url": None}}
    monkeypatch.setenv("AIRFLOW_CONN_CF_NO_URL", json.dumps(conn))
    assert CloudflareBaseHook("cf_no_url").base_url == DEFAULT_BASE_URL
    assert asyncio.run(CloudflareBaseHook("cf_no_url").aconfig())["base_url"] == DEFAULT_BASE_URL
