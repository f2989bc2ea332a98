"""The local stand-ins (localflare and an S3 server) and an Airflow environment wired to them.

Used by `make demo`, and by scripts that run Airflow against the stand-ins. Only processes started
here are ever stopped here.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import requests

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from localflare import testing  # noqa: E402

BUCKET = "prism-backups"
# Every pool the bundle uses (`airflow pools import` format); all setup paths load this one file.
POOLS_FILE = ROOT / "include" / "pools.json"


class S3Server:
    """moto in server mode: an S3-compatible endpoint on loopback, in memory."""

    def __init__(self, port: int, log_path: Path):
        self.port = port
        self.endpoint = f"http://127.0.0.1:{port}"
        self.log = open(log_path, "ab")
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "moto.server", "-H", "127.0.0.1", "-p", str(port)],
            stdout=self.log,
            stderr=subprocess.STDOUT,
        )
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"the S3 stand-in exited with {self.proc.returncode}; see {log_path}")
            try:
                requests.get(self.endpoint, timeout=1)
                return
            except requests.RequestException:
                time.sleep(0.1)
        self.stop()
        raise RuntimeError("the S3 stand-in did not start within 60 s")

    def create_bucket(self, name: str = BUCKET) -> None:
        import boto3

        s3 = boto3.client(
            "s3",
            endpoint_url=self.endpoint,
            aws_access_key_id="testing",
            aws_secret_access_key="testing",
            region_name="us-east-1",
        )
        s3.create_bucket(Bucket=name)

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.proc.kill()


def airflow_env(
    home: Path,
    lf: testing.Server,
    s3_endpoint: str,
    api_port: int = 8080,
    log_ports: tuple[int, int] | None = None,
) -> dict:
    """Environment for any `airflow` command: this bundle, SQLite, connections to the stand-ins.
    `log_ports`: (worker, triggerer) ports of the log servers the scheduler and triggerer start
    (`airflow serve-logs`); Airflow's defaults (8793, 8794) when not given."""
    cloudflare = {
        "conn_type": "cloudflare",
        "password": lf.token,
        "extra": {"account_id": lf.account_id, "base_url": lf.api_url},
    }
    worker = {"conn_type": "http", "host": lf.worker_url}
    aws = {
        "conn_type": "aws",
        "login": "testing",
        "password": "testing",
        "extra": {"endpoint_url": s3_endpoint, "region_name": "us-east-1"},
    }
    env = {
        **os.environ,
        "AIRFLOW_HOME": str(home),
        "AIRFLOW__CORE__DAGS_FOLDER": str(ROOT / "dags"),
        "AIRFLOW__CORE__PLUGINS_FOLDER": str(ROOT / "plugins"),
        "AIRFLOW__CORE__LOAD_EXAMPLES": "False",
        "AIRFLOW__CORE__DAGS_ARE_PAUSED_AT_CREATION": "True",
        "AIRFLOW__API__HOST": "127.0.0.1",
        "AIRFLOW__API__PORT": str(api_port),
        "AIRFLOW__API__BASE_URL": f"http://127.0.0.1:{api_port}",
        "AIRFLOW__CORE__EXECUTION_API_SERVER_URL": f"http://127.0.0.1:{api_port}/execution/",
        "AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_USERS": "admin:admin",
        # `airflow connections test` and the UI's button (Airflow 3 ships them Disabled).
        "AIRFLOW__CORE__TEST_CONNECTION": "Enabled",
        "AIRFLOW_CONN_CLOUDFLARE_DEFAULT": json.dumps(cloudflare),
        "AIRFLOW_CONN_PRISM_WORKER": json.dumps(worker),
        "AIRFLOW_CONN_AWS_DEFAULT": json.dumps(aws),
        # The stand-ins get the demo indexer; the shipped config has none (a real account must not).
        "PRISM_CONFIG_OVERLAY": str(ROOT / "include" / "prism.demo.json"),
        "PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ.get('PATH', '')}",
    }
    if log_ports is not None:
        # Airflow 3.3 binds these servers to every interface (serve_logs: host=""); only the port is ours.
        env["AIRFLOW__LOGGING__WORKER_LOG_SERVER_PORT"] = str(log_ports[0])
        env["AIRFLOW__LOGGING__TRIGGER_LOG_SERVER_PORT"] = str(log_ports[1])
    return env


def stop_group(proc: subprocess.Popen, timeout: float = 20) -> None:
    """Stop a process we started, with every process it started (some leave its process group)."""
    import psutil

    try:
        tree = [psutil.Process(proc.pid)]
        tree += tree[0].children(recursive=True)
    except psutil.NoSuchProcess:
        return
    try:
        os.killpg(proc.pid, signal.SIGTERM)
    except ProcessLookupError:
        pass
    for p in tree:
        try:
            p.terminate()
        except psutil.NoSuchProcess:
            pass
    _, alive = psutil.wait_procs(tree, timeout=timeout)
    for p in alive:
        try:
            p.kill()
        except psutil.NoSuchProcess:
            pass
    proc.wait()
