"""`make demo` end to end: the stand-ins and the Airflow UI come up wired together, and Ctrl-C
stops exactly the processes the demo started."""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
import time
from pathlib import Path

import psutil
import pytest
import requests

from localflare.testing import free_port

ROOT = Path(__file__).resolve().parents[2]


@pytest.mark.slow
def test_demo_serves_the_ui_against_the_stand_ins_and_stops_cleanly(tmp_path):
    ports = {"LOCALFLARE_PORT": free_port(), "S3_PORT": free_port(), "AIRFLOW_PORT": free_port()}
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
        children = psutil.Process(demo.pid).children(recursive=True)
        assert len(children) >= 3
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
