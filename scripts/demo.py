"""`make demo`: localflare with the demo seed, an S3 stand-in, and `airflow standalone` on this bundle.

The first start runs the DAGs once against the stand-ins (scripts/dashboard_fill.py --every-dag:
all but the two destructive manual ones, prism_index_rebuild and prism_disaster_recovery, which
the UI's trigger form runs), so the UI and the dashboard show real runs; then it unpauses the health
monitor, which keeps the dashboard live.

Runs in the foreground until Ctrl-C, then stops exactly what it started.
Ports (see ports()): LOCALFLARE_PORT (8787), S3_PORT (5055), AIRFLOW_PORT (8080), and the task log
servers the scheduler and triggerer start, WORKER_LOG_PORT (8793) and TRIGGER_LOG_PORT (8794).
State lives in .demo/ (PRISM_DEMO_DIR moves it).
"""

from __future__ import annotations

import json
import os
import secrets
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import requests
from stack import BUCKET, POOLS_FILE, ROOT, S3Server, airflow_env, stop_group, testing

# Each port of the demo: the variable that moves it, and its default.
PORTS = {
    "LOCALFLARE_PORT": 8787,
    "S3_PORT": 5055,
    "AIRFLOW_PORT": 8080,
    "WORKER_LOG_PORT": 8793,  # [logging] worker_log_server_port: the scheduler's `airflow serve-logs`
    "TRIGGER_LOG_PORT": 8794,  # [logging] trigger_log_server_port: the triggerer's
}


def ports(environ) -> dict[str, int]:
    """The demo's ports from the environment (PORTS names them), each a TCP port number."""
    out = {}
    for name, default in PORTS.items():
        raw = environ.get(name) or str(default)
        if not raw.isascii() or not raw.isdigit() or not 0 < int(raw) < 65536:
            raise SystemExit(f"{name}={raw!r} is not a TCP port (1-65535)")
        out[name] = int(raw)
    return out


def demo_env(home: Path, lf: testing.Server, s3_endpoint: str, port: dict[str, int]) -> dict:
    """The environment of every `airflow` command the demo runs, on the demo's ports."""
    return airflow_env(home, lf, s3_endpoint, port["AIRFLOW_PORT"], (port["WORKER_LOG_PORT"], port["TRIGGER_LOG_PORT"]))


def main() -> int:
    demo = Path(os.environ.get("PRISM_DEMO_DIR", ROOT / ".demo"))
    if "--fresh" in sys.argv:
        shutil.rmtree(demo, ignore_errors=True)
    demo.mkdir(exist_ok=True)
    port = ports(os.environ)
    lf_port, s3_port, api_port = port["LOCALFLARE_PORT"], port["S3_PORT"], port["AIRFLOW_PORT"]
    started = []
    airflow = None
    try:
        print(f"Starting localflare on 127.0.0.1:{lf_port} (demo seed) ...", flush=True)
        lf = testing.start(demo / "localflare", "--seed", "demo", port=lf_port)
        started.append(lf)
        print(f"Starting the S3 stand-in on 127.0.0.1:{s3_port} ...", flush=True)
        s3 = S3Server(s3_port, demo / "s3.log")
        started.append(s3)
        s3.create_bucket(BUCKET)
        home = demo / "airflow"
        home.mkdir(exist_ok=True)
        pw_file = home / "simple_auth_manager_passwords.json.generated"
        if not pw_file.exists():
            pw_file.write_text(json.dumps({"admin": secrets.token_urlsafe(9)}))
        password = json.loads(pw_file.read_text())["admin"]
        env = demo_env(home, lf, s3.endpoint, port)
        filled = home / "dashboard-filled"
        if not filled.exists():
            # Demo runs of every DAG, so the dashboard has live data from the first page view.
            print(f"Filling the dashboard with demo runs (a minute or two; log: {demo / 'fill.log'}) ...", flush=True)
            with open(demo / "fill.log", "ab") as fill_log:
                subprocess.run(
                    [
                        sys.executable,
                        str(ROOT / "scripts" / "dashboard_fill.py"),
                        f"{lf.base_url}/__localflare",
                        "--every-dag",
                    ],
                    env=env,
                    cwd=ROOT,
                    stdout=fill_log,
                    stderr=subprocess.STDOUT,
                    check=True,
                )
            filled.touch()
        print(f"Starting airflow standalone on 127.0.0.1:{api_port} (log: {demo / 'airflow.log'}) ...", flush=True)
        log = open(demo / "airflow.log", "ab")
        airflow = subprocess.Popen(
            ["airflow", "standalone"], env=env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True, cwd=ROOT
        )
        wait_for(f"http://127.0.0.1:{api_port}/api/v2/monitor/health", airflow, 300)
        # The bundle's pools (include/pools.json); a task in a missing pool is never scheduled.
        subprocess.run(["airflow", "pools", "import", str(POOLS_FILE)], env=env, check=True, stdout=subprocess.DEVNULL)
        # The health monitor keeps the dashboard live: every 5 minutes from now on.
        subprocess.run(
            ["airflow", "dags", "unpause", "prism_health_monitor"],
            env=env,
            check=False,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        print(
            "\nPRISM maintenance demo is up.\n"
            f"  Airflow UI:     http://127.0.0.1:{api_port}   (user: admin  password: {password})\n"
            f'  Dashboard:      http://127.0.0.1:{api_port}/plugin/prism-dashboard   ("PRISM Dashboard" in the UI\'s navigation)\n'
            f"  localflare API: {lf.api_url}   account {lf.account_id}\n"
            f"  PRISM Worker:   {lf.worker_url}/health\n"
            f"  S3 stand-in:    {s3.endpoint}   bucket {BUCKET}\n"
            # Airflow 3.3 has no bind address for them (serve_logs: host=""); each asks for a token the demo signs.
            f"  Log servers:    *:{port['WORKER_LOG_PORT']} (tasks), *:{port['TRIGGER_LOG_PORT']} (triggerer), "
            "every interface\n"
            "Press Ctrl-C to stop everything this command started.\n",
            flush=True,
        )
        # Ctrl-C stops the demo even when its parent started it with SIGINT ignored (a background job).
        signal.signal(signal.SIGINT, signal.default_int_handler)
        signal.signal(signal.SIGTERM, lambda *_: (_ for _ in ()).throw(KeyboardInterrupt()))
        while airflow.poll() is None:
            time.sleep(1)
        print(f"airflow standalone exited with {airflow.returncode}; see {demo / 'airflow.log'}", flush=True)
        return 1
    except KeyboardInterrupt:
        print("\nStopping ...", flush=True)
        return 0
    finally:
        if airflow is not None:
            stop_group(airflow)
        for proc in reversed(started):
            proc.stop()


def wait_for(url: str, proc: subprocess.Popen, timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"airflow standalone exited with {proc.returncode}; see its log")
        try:
            if requests.get(url, timeout=2).status_code == 200:
                return
        except requests.RequestException:
            pass
        time.sleep(1)
    raise RuntimeError(f"Airflow did not answer at {url} within {timeout:.0f} s")


if __name__ == "__main__":
    sys.exit(main())
