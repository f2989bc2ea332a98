"""Shared fixtures: real localflare servers (subprocesses on loopback) and clients for them."""

from __future__ import annotations

import os
import subprocess
import sys
import tempfile
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
# Airflow reads its config at import time: point it at a throwaway home and this bundle first.
# Each process (each xdist worker too) gets its own home, so their SQLite metadata DBs never collide.
os.environ["AIRFLOW_HOME"] = os.environ.get("PRISM_TEST_AIRFLOW_HOME") or tempfile.mkdtemp(prefix="prism-airflow-home-")
os.environ.setdefault("AIRFLOW__CORE__LOAD_EXAMPLES", "False")
os.environ.setdefault("AIRFLOW__CORE__DAGS_FOLDER", str(ROOT / "dags"))
os.environ.setdefault("AIRFLOW__CORE__PLUGINS_FOLDER", str(ROOT / "plugins"))
# The tests' own config layer: the demo indexer (the shipped config has none). Tests of the production
# default delete it with monkeypatch.
os.environ.setdefault("PRISM_CONFIG_OVERLAY", str(ROOT / "include" / "prism.demo.json"))
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "plugins"))

from localflare import testing  # noqa: E402
from localflare.testing import Api  # noqa: E402

# Fast but realistic timings for tests; the defaults are closer to the real service.
FAST = ("--mutation-lag", "0.2", "--export-min-seconds", "0.3", "--export-poll-timeout", "5")


@pytest.fixture(scope="session")
def exchanges_file(tmp_path_factory) -> Path:
    """Every API exchange the session's servers see, for validation against the OpenAPI spec."""
    record_dir = os.environ.get("LOCALFLARE_RECORD_DIR")  # make test: one file per xdist worker, checked after
    if record_dir:
        path = Path(record_dir) / f"exchanges-{os.environ.get('PYTEST_XDIST_WORKER', 'main')}.jsonl"
    else:
        path = tmp_path_factory.mktemp("record") / "exchanges.jsonl"
    path.touch()
    return path


@pytest.fixture(scope="session")
def lf(tmp_path_factory, exchanges_file):
    """A demo-seeded localflare shared by the session. Tests must not damage the demo data:
    write to scratch databases, indexes and namespaces of their own."""
    server = testing.start(tmp_path_factory.mktemp("lf-demo"), "--seed", "demo", "--record", str(exchanges_file), *FAST)
    yield server
    server.stop()


@pytest.fixture
def lf_fresh(tmp_path, exchanges_file):
    """A private localflare for tests that inject faults, exhaust limits or damage data."""
    servers = []

    def make(*args, seed: bool = True):
        server = testing.start(
            tmp_path / f"lf-{len(servers)}",
            *(("--seed", "demo") if seed else ()),
            "--record",
            str(exchanges_file),
            *FAST,
            *args,
        )
        servers.append(server)
        return server

    yield make
    for server in servers:
        server.stop()


@pytest.fixture
def api(lf) -> Api:
    return Api(lf)


@pytest.fixture
def sdk(lf):
    """The official Cloudflare SDK, pointed at localflare, with its retries off so faults surface."""
    from cloudflare import Cloudflare

    return Cloudflare(api_token=lf.token, base_url=lf.api_url, max_retries=0)


def connect_airflow(monkeypatch, server, conn_id: str = "cloudflare_default", **extra) -> None:
    """Point an Airflow connection (through its AIRFLOW_CONN_ variable) at a localflare server."""
    import json

    conn = {
        "conn_type": "cloudflare",
        "password": server.token,
        "extra": {"account_id": server.account_id, "base_url": server.api_url, **extra},
    }
    monkeypatch.setenv(f"AIRFLOW_CONN_{conn_id.upper()}", json.dumps(conn))
    monkeypatch.setenv("AIRFLOW_CONN_PRISM_WORKER", json.dumps({"conn_type": "http", "host": server.worker_url}))


@pytest.fixture
def cf(lf, monkeypatch):
    """`cloudflare_default` pointed at the shared demo localflare, with pacing off for speed."""
    connect_airflow(monkeypatch, lf, budget={"bulk_rps": 0})
    return lf


@pytest.fixture
def connect(monkeypatch):
    """connect(server, **extra): point `cloudflare_default` at a private localflare."""
    return lambda server, **extra: connect_airflow(monkeypatch, server, **extra)


@pytest.fixture(scope="session")
def airflow_db():
    """A migrated Airflow metadata DB (SQLite in the test AIRFLOW_HOME), for dag.test()."""
    subprocess.run(
        [sys.executable, "-m", "airflow", "db", "migrate"],
        check=True,
        env=os.environ.copy(),
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
    )
    return os.environ["AIRFLOW_HOME"]


@pytest.fixture(scope="session")
def s3_server(tmp_path_factory):
    """The S3 stand-in (moto in server mode) with the bucket prism-backups."""
    sys.path.insert(0, str(ROOT / "scripts"))
    from stack import BUCKET, S3Server

    server = S3Server(testing.free_port(), tmp_path_factory.mktemp("s3") / "s3.log")
    server.create_bucket(BUCKET)
    yield server
    server.stop()


@pytest.fixture
def s3(s3_server, monkeypatch):
    """aws_default pointed at the S3 stand-in; returns an S3Hook for assertions."""
    import json

    monkeypatch.setenv(
        "AIRFLOW_CONN_AWS_DEFAULT",
        json.dumps(
            {
                "conn_type": "aws",
                "login": "testing",
                "password": "testing",
                "extra": {"endpoint_url": s3_server.endpoint, "region_name": "us-east-1"},
            }
        ),
    )
    from airflow.providers.amazon.aws.hooks.s3 import S3Hook

    return S3Hook(aws_conn_id="aws_default")


@pytest.fixture
def alerts(monkeypatch):
    """A Slack incoming-webhook stand-in: `prism_slack` points at it; returns the texts it received."""
    import json
    import threading
    from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

    received: list[str] = []

    class Hook(BaseHTTPRequestHandler):
        def do_POST(self):  # noqa: N802 - http.server's name
            body = json.loads(self.rfile.read(int(self.headers.get("Content-Length", 0))) or b"{}")
            received.append(body.get("text", ""))
            self.send_response(200)
            self.send_header("Content-Type", "text/plain")
            self.end_headers()
            self.wfile.write(b"ok")

        def log_message(self, *args):
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Hook)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    monkeypatch.setenv(
        "AIRFLOW_CONN_PRISM_SLACK",
        json.dumps(
            {"conn_type": "slackwebhook", "password": f"http://127.0.0.1:{server.server_port}/services/T000/B000/XXX"}
        ),
    )
    yield received
    server.shutdown()
    server.server_close()
