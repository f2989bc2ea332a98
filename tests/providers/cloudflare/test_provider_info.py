"""The `cloudflare` connection type: `airflow connections test` (a real CLI subprocess) and the UI form's fields."""

from __future__ import annotations

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
