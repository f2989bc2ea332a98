"""The local stack's wiring: the S3 stand-in works through the amazon provider, and the Airflow
connections the demo sets resolve to the stand-ins."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "scripts"))

from stack import BUCKET, S3Server, airflow_env  # noqa: E402

from localflare.testing import free_port  # noqa: E402


@pytest.fixture(scope="module")
def s3(tmp_path_factory):
    server = S3Server(free_port(), tmp_path_factory.mktemp("s3") / "s3.log")
    server.create_bucket(BUCKET)
    yield server
    server.stop()


def test_connections_point_at_the_stand_ins(lf, s3, tmp_path, monkeypatch):
    env = airflow_env(tmp_path, lf, s3.endpoint)
    for key in ("AIRFLOW_CONN_CLOUDFLARE_DEFAULT", "AIRFLOW_CONN_PRISM_WORKER", "AIRFLOW_CONN_AWS_DEFAULT"):
        monkeypatch.setenv(key, env[key])
    from airflow.sdk import BaseHook

    cf = BaseHook.get_connection("cloudflare_default")
    assert cf.password == lf.token
    assert cf.extra_dejson == {"account_id": lf.account_id, "base_url": lf.api_url}
    assert BaseHook.get_connection("prism_worker").host == lf.worker_url
    assert json.loads(env["AIRFLOW_CONN_AWS_DEFAULT"])["extra"]["endpoint_url"] == s3.endpoint


def test_s3_stand_in_through_the_amazon_provider(lf, s3, tmp_path, monkeypatch):
    monkeypatch.setenv("AIRFLOW_CONN_AWS_DEFAULT", airflow_env(tmp_path, lf, s3.endpoint)["AIRFLOW_CONN_AWS_DEFAULT"])
    from airflow.providers.amazon.aws.hooks.s3 import S3Hook

    hook = S3Hook(aws_conn_id="aws_default")
    hook.load_string("hello", key="daily/20261101/probe.txt", bucket_name=BUCKET, replace=True)
    assert hook.read_key("daily/20261101/probe.txt", bucket_name=BUCKET) == "hello"
    assert hook.list_keys(bucket_name=BUCKET, prefix="daily/") == ["daily/20261101/probe.txt"]


def test_the_stand_ins_and_only_they_get_the_demo_indexer(tmp_path, monkeypatch):
    """The demo, smoke, local-airflow and e2e stacks (all built on airflow_env) name the demo overlay;
    the shipped config and docker-compose's default name no indexer."""
    from types import SimpleNamespace

    from prism.settings.config import load_config

    fake = SimpleNamespace(
        token="t" * 40,
        account_id="a" * 32,
        api_url="http://127.0.0.1:1/client/v4",
        worker_url="http://127.0.0.1:1/worker",
    )
    env = airflow_env(tmp_path, fake, "http://127.0.0.1:2")
    monkeypatch.setenv("PRISM_CONFIG_OVERLAY", env["PRISM_CONFIG_OVERLAY"])
    assert load_config()["indexing"]["indexer_command"] == ["python", "-m", "prism_demo_indexer", "index"]
    monkeypatch.delenv("PRISM_CONFIG_OVERLAY")
    assert load_config()["indexing"]["indexer_command"] is None
    compose = (Path(__file__).resolve().parents[2] / "docker-compose.yaml").read_text()
    assert "PRISM_CONFIG_OVERLAY: ${PRISM_CONFIG_OVERLAY:-}" in compose
