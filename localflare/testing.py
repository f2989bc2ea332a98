"""Start and stop a localflare server in a subprocess (used by tests, smoke runs and the demo)."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import requests


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Server:
    """A running localflare: its URLs, credentials and the admin API."""

    def __init__(self, data_dir: Path, port: int, proc: subprocess.Popen | None, log_path: Path):
        self.data_dir = Path(data_dir)
        self.port = port
        self.proc = proc
        self.log_path = log_path
        info = json.loads((self.data_dir / "localflare.json").read_text())
        self.base_url = f"http://127.0.0.1:{port}"
        self.api_url = f"{self.base_url}/client/v4"
        self.worker_url = f"{self.base_url}/worker"
        self.account_id = info["account_id"]
        self.token = info["api_token"]
        self.d1_id = info.get("d1_database_id")
        self.kv_id = info.get("kv_namespace_id")
        self.index_name = info.get("vectorize_index")

    def admin(self, method: str, what: str, payload=None) -> dict:
        resp = requests.request(method, f"{self.base_url}/__localflare/{what}", json=payload, timeout=10)
        resp.raise_for_status()
        return resp.json()

    def add_faults(self, spec: str) -> None:
        self.admin("POST", "faults", {"spec": spec})

    def clear_faults(self) -> None:
        self.admin("DELETE", "faults")

    def counters(self) -> dict:
        return self.admin("GET", "counters")["counters"]

    def reset(self) -> None:
        self.admin("DELETE", "faults")
        self.admin("DELETE", "counters")
        self.admin("DELETE", "ratelimit")

    def refresh(self) -> None:
        info = self.admin("GET", "info")
        self.d1_id, self.kv_id = info["d1_database_id"], info["kv_namespace_id"]

    def stop(self) -> None:
        if self.proc and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()


def start(data_dir: Path, *args: str, port: int | None = None, timeout: float = 120.0) -> Server:
    """Start `python -m localflare serve` and wait until it answers."""
    data_dir = Path(data_dir)
    data_dir.mkdir(parents=True, exist_ok=True)
    port = port or free_port()
    log_path = data_dir / "localflare.log"
    log = open(log_path, "ab")
    (data_dir / "localflare.json").unlink(missing_ok=True)
    proc = subprocess.Popen(
        [sys.executable, "-m", "localflare", "serve", "--data-dir", str(data_dir), "--port", str(port), *args],
        stdout=log,
        stderr=subprocess.STDOUT,
        cwd=Path(__file__).resolve().parents[1],
        env={**os.environ},
    )
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(
                f"localflare exited with {proc.returncode}; see {log_path}:\n{log_path.read_text()[-2000:]}"
            )
        try:
            if (data_dir / "localflare.json").exists():
                requests.get(f"http://127.0.0.1:{port}/__localflare/info", timeout=1).raise_for_status()
                return Server(data_dir, port, proc, log_path)
        except requests.RequestException:
            pass
        time.sleep(0.1)
    proc.kill()
    raise RuntimeError(f"localflare did not start within {timeout}s; see {log_path}")


class Api:
    """Raw HTTP against a localflare, with its auth header. Returns requests.Response objects."""

    def __init__(self, server):
        self.server = server
        self.session = requests.Session()
        self.session.headers["Authorization"] = f"Bearer {server.token}"

    def url(self, path: str) -> str:
        path = path.replace("{acct}", self.server.account_id)
        return f"{self.server.api_url}{path}"

    def request(self, method: str, path: str, **kw) -> requests.Response:
        kw.setdefault("timeout", 30)
        return self.session.request(method, self.url(path), **kw)

    def get(self, path, **kw):
        return self.request("GET", path, **kw)

    def post(self, path, **kw):
        return self.request("POST", path, **kw)

    def put(self, path, **kw):
        return self.request("PUT", path, **kw)

    def delete(self, path, **kw):
        return self.request("DELETE", path, **kw)
