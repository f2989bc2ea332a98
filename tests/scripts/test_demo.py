"""`make demo` end to end: the stand-ins and the Airflow UI come up wired together, and Ctrl-C
stops exactly the processes the demo started. Its ports come from the environment, the log servers' too."""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
import time
from datetime import datetime, timedelta, timezone
from pathlib import Path
from types import SimpleNamespace

import psutil
import pytest
import requests

from localflare.testing import free_port

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT / "scripts"))

import demo as demo_script  # noqa: E402

LOG_PORT_KEYS = ("AIRFLOW__LOGGING__WORKER_LOG_SERVER_PORT", "AIRFLOW__LOGGING__TRIGGER_LOG_SERVER_PORT")
STAND_INS = SimpleNamespace(
    token="t" * 40,
    account_id="a" * 32,
    api_url="http://127.0.0.1:1/client/v4",
    worker_url="http://127.0.0.1:1/worker",
)


def test_the_ports_come_from_their_variables_with_defaults():
    assert demo_script.ports({}) == {
        "LOCALFLARE_PORT": 8787,
        "S3_PORT": 5055,
        "AIRFLOW_PORT": 8080,
        "WORKER_LOG_PORT": 8793,
        "TRIGGER_LOG_PORT": 8794,
    }
    moved = demo_script.ports({"WORKER_LOG_PORT": "18793", "TRIGGER_LOG_PORT": "18794", "AIRFLOW_PORT": "18080"})
    assert (moved["WORKER_LOG_PORT"], moved["TRIGGER_LOG_PORT"], moved["AIRFLOW_PORT"]) == (18793, 18794, 18080)
    assert demo_script.ports({"WORKER_LOG_PORT": ""})["WORKER_LOG_PORT"] == 8793  # set but empty: the default


@pytest.mark.parametrize(
    "value", ["0", "65536", "-1", "8793 ", "8793\n", "８７９３", "87.93", "8793; rm -rf /", "<script>", "0x2259"]
)
def test_a_bad_port_stops_the_demo_before_it_starts_anything(value):
    with pytest.raises(SystemExit, match="^WORKER_LOG_PORT=.* is not a TCP port"):
        demo_script.ports({"WORKER_LOG_PORT": value})


def test_the_log_server_ports_reach_airflow_from_their_variables(tmp_path, monkeypatch):
    """demo_env() gives Airflow the log servers' ports from WORKER_LOG_PORT and TRIGGER_LOG_PORT, and
    Airflow's own config reads them back ([logging] worker_log_server_port, trigger_log_server_port: the
    ports `airflow scheduler` and `airflow triggerer` start `serve-logs` on)."""
    port = demo_script.ports({"WORKER_LOG_PORT": "18793", "TRIGGER_LOG_PORT": "18794"})
    env = demo_script.demo_env(tmp_path, STAND_INS, "http://127.0.0.1:2", port)
    assert [env[k] for k in LOG_PORT_KEYS] == ["18793", "18794"]
    assert env["AIRFLOW__API__PORT"] == "8080"
    read = subprocess.run(
        [
            sys.executable,
            "-c",
            "from airflow.configuration import conf; "
            "print(conf.getint('logging', 'worker_log_server_port'), conf.getint('logging', 'trigger_log_server_port'))",
        ],
        env={**env, "AIRFLOW_HOME": str(tmp_path)},
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert read.returncode == 0, read.stderr[-2000:]
    assert read.stdout.split()[-2:] == ["18793", "18794"]
    # Without log ports (local-airflow, smoke), the environment leaves Airflow's own defaults alone.
    from stack import airflow_env

    for key in LOG_PORT_KEYS:
        monkeypatch.delenv(key, raising=False)
    assert not set(LOG_PORT_KEYS) & set(airflow_env(tmp_path, STAND_INS, "http://127.0.0.1:2"))


@pytest.mark.slow
def test_demo_serves_the_ui_against_the_stand_ins_and_stops_cleanly(tmp_path):
    ports = {name: free_port() for name in demo_script.PORTS}  # every port moved: nothing listens on a default
    began = datetime.now(timezone.utc)
    env = {**os.environ, **{k: str(v) for k, v in ports.items()}, "PRISM_DEMO_DIR": str(tmp_path / "demo")}
    bystander = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(600)"])  # not the demo's
    demo = subprocess.Popen(
        [sys.executable, "scripts/demo.py"],
        cwd=ROOT,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    try:
        lines = []
        deadline = time.monotonic() + 600  # the first start fills the dashboard with demo runs
        while time.monotonic() < deadline:
            line = demo.stdout.readline()
            if not line:
                break
            lines.append(line)
            if "Press Ctrl-C" in line:
                break
        banner = "".join(lines)
        assert "PRISM maintenance demo is up" in banner, banner
        password = re.search(r"password: (\S+)\)", banner).group(1)
        ui = f"http://127.0.0.1:{ports['AIRFLOW_PORT']}"
        assert requests.get(f"{ui}/api/v2/monitor/health", timeout=10).status_code == 200
        token = requests.post(f"{ui}/auth/token", json={"username": "admin", "password": password}, timeout=10)
        assert token.status_code in (200, 201) and token.json()["access_token"]
        # every pool of include/pools.json, with its slots
        for pool, slots in (("cloudflare_heavy", 3), ("prism_deletes", 1)):
            pools = requests.get(
                f"{ui}/api/v2/pools/{pool}",
                timeout=10,
                headers={"Authorization": f"Bearer {token.json()['access_token']}"},
            )
            assert pools.status_code == 200 and pools.json()["slots"] == slots, (pool, pools.text)
        # The dashboard, in the UI's navigation, holds the demo runs' data; without a login it holds nothing.
        auth = {"Authorization": f"Bearer {token.json()['access_token']}"}
        plugins = requests.get(f"{ui}/api/v2/plugins", headers=auth, timeout=10).json()["plugins"]
        (view,) = [v for p in plugins for v in p["external_views"] if v["name"] == "PRISM Dashboard"]
        assert view["url_route"] == "prism-dashboard" and view["href"] == "/prism-dashboard/"
        data = requests.get(f"{ui}/prism-dashboard/data.json", headers=auth, timeout=30).json()
        assert len(data["health"]) >= 5 and data["usage"]["requests"]["total"] > 0
        assert set(data["backups"]) >= {"daily", "monthly"} and len(data["reports"]) >= 5
        assert requests.get(f"{ui}/prism-dashboard/data.json", timeout=10).status_code == 401
        # Every DAG but the two destructive manual ones ran once against the stand-ins.
        fill = (tmp_path / "demo" / "fill.log").read_text()
        for dag_id in (
            "prism_health_monitor",
            "prism_daily",
            "prism_weekly",
            "prism_monthly",
            "prism_quarterly",
            "prism_index_incremental",
        ):
            assert re.search(rf"^{dag_id}\s.*\ssuccess\s", fill, re.M), (dag_id, fill)
        lf = json.loads((tmp_path / "demo" / "localflare" / "localflare.json").read_text())
        assert (
            requests.get(f"http://127.0.0.1:{ports['LOCALFLARE_PORT']}/worker/health", timeout=10).json()["status"]
            == "healthy"
        )
        dbs = requests.get(
            f"http://127.0.0.1:{ports['LOCALFLARE_PORT']}/client/v4/accounts/{lf['account_id']}/d1/database",
            headers={"Authorization": f"Bearer {lf['api_token']}"},
            timeout=10,
        ).json()["result"]
        assert [d["name"] for d in dbs] == ["claudes-friend-db"]
        # Every filled run carries the times it really ran, not its logical date (the UI's duration is true).
        runs = requests.get(f"{ui}/api/v2/dags/~/dagRuns", params={"limit": 100}, headers=auth, timeout=30).json()
        filled = [r for r in runs["dag_runs"] if r["triggered_by"] == "test"]
        assert len(filled) >= 12, [r["dag_run_id"] for r in runs["dag_runs"]]
        for run in filled:
            start, end = datetime.fromisoformat(run["start_date"]), datetime.fromisoformat(run["end_date"])
            tis = requests.get(
                f"{ui}/api/v2/dags/{run['dag_id']}/dagRuns/{run['dag_run_id']}/taskInstances",
                params={"limit": 1000},
                headers=auth,
                timeout=30,
            ).json()["task_instances"]
            ran = [
                (datetime.fromisoformat(t["start_date"]), datetime.fromisoformat(t["end_date"]))
                for t in tis
                if t["start_date"]
            ]
            wall = max(e for _, e in ran) - min(s for s, _ in ran)
            assert began <= start <= end <= datetime.now(timezone.utc), run
            assert abs((end - start) - wall) <= timedelta(seconds=5), (run, wall)
        # What the trigger form sends for a lowercase confirmation (the form skips `pattern`): the API server
        # refuses it when the run is made, naming the field, and no run exists.
        dr = "prism_disaster_recovery"
        for conf in ({"confirm": "restore"}, {"confirm": "RESTORE\n"}, {"confirm": ""}):
            made = requests.post(
                f"{ui}/api/v2/dags/{dr}/dagRuns", json={"logical_date": None, "conf": conf}, headers=auth, timeout=30
            )
            assert made.status_code == 400 and "Invalid input for param confirm" in made.text, (conf, made.text)
        dr_runs = requests.get(f"{ui}/api/v2/dags/{dr}/dagRuns", headers=auth, timeout=30).json()
        assert dr_runs["total_entries"] == 0, dr_runs
        children = psutil.Process(demo.pid).children(recursive=True)
        assert len(children) >= 3
        # The log servers listen on the ports given, and the demo opens no port its variables do not name.
        listening: set[int] = set()
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline:
            listening = {
                c.laddr.port
                for p in psutil.Process(demo.pid).children(recursive=True)
                for c in _connections(p)
                if c.status == psutil.CONN_LISTEN
            }
            if {ports["WORKER_LOG_PORT"], ports["TRIGGER_LOG_PORT"]} <= listening:
                break
            time.sleep(1)
        assert {ports["WORKER_LOG_PORT"], ports["TRIGGER_LOG_PORT"]} <= listening <= set(ports.values()), listening
        demo.send_signal(signal.SIGINT)
        demo.wait(timeout=60)
        assert demo.returncode == 0
        gone, alive = psutil.wait_procs(children, timeout=30)
        assert alive == [], f"left running: {[p.pid for p in alive]}"
        assert bystander.poll() is None  # a process it did not start is untouched
    finally:
        if demo.poll() is None:
            demo.kill()
        bystander.kill()


def _connections(proc: psutil.Process) -> list:
    try:
        return proc.net_connections(kind="inet")
    except (psutil.NoSuchProcess, psutil.AccessDenied):
        return []
