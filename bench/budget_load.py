"""Load test of the shared API budget: several heavy tasks, a health monitor and, optionally, a script
outside Airflow, all at once against one localflare account.

Each heavy task, the monitor and the outside script is its own process, as Airflow tasks are; each
heavy task keeps `--threads` calls in flight. They share nothing but the server's budget. For example,
the real limit for two minutes:

    python bench/budget_load.py --limit 1200/300 --heavy 3 --seconds 120

It prints (as JSON) the requests each process made, the 429s localflare sent, and the monitor's waits.
`make bench` runs it as one of its rows; tests/bench/test_budget_load.py runs a short scaled version.
"""

from __future__ import annotations

import argparse
import json
import multiprocessing as mp
import os
import sys
import tempfile
import threading
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(ROOT), str(ROOT / "plugins")]


def _connect(server_info: dict, budget: dict) -> None:
    os.environ["AIRFLOW_CONN_CLOUDFLARE_DEFAULT"] = json.dumps(
        {
            "conn_type": "cloudflare",
            "password": server_info["token"],
            "extra": {"account_id": server_info["account_id"], "base_url": server_info["api_url"], "budget": budget},
        }
    )


def heavy(server_info: dict, budget: dict, seconds: float, threads: int, out) -> None:
    """A backup-like task: `threads` workers reading vectors by id for `seconds`."""
    _connect(server_info, budget)
    from airflow_provider_cloudflare.hooks.vectorize import VectorizeHook

    hook = VectorizeHook(priority="bulk")
    ids = [f"chk-{i:07d}-00" for i in range(20)]
    counts = {"requests": 0, "errors": 0}
    lock = threading.Lock()
    deadline = time.monotonic() + seconds

    def worker():
        while time.monotonic() < deadline:
            try:
                list(hook.get_by_ids(server_info["index"], ids))
                key = "requests"
            except Exception as exc:  # noqa: BLE001 - counted and reported
                key = "errors"
                print("heavy error:", exc, file=sys.stderr)
            with lock:
                counts[key] += 1

    pool = [threading.Thread(target=worker) for _ in range(threads)]
    for t in pool:
        t.start()
    for t in pool:
        t.join()
    out.put({"role": "heavy", **counts, "waited_s": round(hook.budget.waited, 1)})


def monitor(server_info: dict, budget: dict, seconds: float, interval: float, calls: int, out) -> None:
    """A health monitor: every `interval` seconds, a run of `calls` D1 `SELECT 1`s, never retried for long.
    Records how long each call waited for the budget."""
    _connect(server_info, budget)
    from airflow_provider_cloudflare.hooks.d1 import D1Hook

    hook = D1Hook(priority="monitor", max_attempts=1)
    ok = failed = 0
    waits: list[float] = []
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        started = time.monotonic()
        for _ in range(calls):
            before = hook.budget.waited
            try:
                hook.rows(server_info["d1_id"], "SELECT 1 AS ok")
                ok += 1
            except Exception as exc:  # noqa: BLE001 - a failed health check is the finding
                failed += 1
                print("monitor error:", exc, file=sys.stderr)
            waits.append(hook.budget.waited - before)
        time.sleep(max(0.0, interval - (time.monotonic() - started)))
    waits.sort()
    p99 = waits[min(len(waits) - 1, int(len(waits) * 0.99))] if waits else 0.0
    out.put(
        {
            "role": "monitor",
            "ok": ok,
            "failed": failed,
            "wait_p99_s": round(p99, 3),
            "wait_max_s": round(max(waits or [0]), 3),
        }
    )


def outside(server_info: dict, seconds: float, rps: float, start: float, out) -> None:
    """A script outside Airflow that knows nothing of the budget: plain GETs at `rps`."""
    import requests

    time.sleep(start)
    session = requests.Session()
    session.headers["Authorization"] = f"Bearer {server_info['token']}"
    url = f"{server_info['api_url']}/accounts/{server_info['account_id']}/d1/database"
    statuses: dict[str, int] = {}
    deadline = time.monotonic() + seconds - start
    while time.monotonic() < deadline:
        started = time.monotonic()
        status = str(session.get(url, timeout=30).status_code)
        statuses[status] = statuses.get(status, 0) + 1
        time.sleep(max(0.0, 1.0 / rps - (time.monotonic() - started)))
    out.put({"role": "outside", "statuses": statuses})


def run(
    server,
    *,
    heavy_tasks: int,
    seconds: float,
    budget: dict | None = None,
    threads: int = 4,
    monitor_interval: float = 5.0,
    monitor_calls: int = 6,
    outside_rps: float = 0.0,
    outside_start: float = 0.0,
) -> dict:
    info = {
        "token": server.token,
        "account_id": server.account_id,
        "api_url": server.api_url,
        "index": server.index_name,
        "d1_id": server.d1_id,
    }
    budget = budget or {}
    ctx = mp.get_context("spawn")
    out = ctx.Queue()
    procs = [ctx.Process(target=heavy, args=(info, budget, seconds, threads, out)) for _ in range(heavy_tasks)]
    procs.append(ctx.Process(target=monitor, args=(info, budget, seconds, monitor_interval, monitor_calls, out)))
    if outside_rps > 0:
        procs.append(ctx.Process(target=outside, args=(info, seconds, outside_rps, outside_start, out)))
    before = server.counters()
    for p in procs:
        p.start()
    results = [out.get(timeout=seconds + 300) for _ in procs]
    for p in procs:
        p.join(timeout=30)
    after = server.counters()
    return {
        "processes": results,
        "429_sent": after.get("429_sent", 0) - before.get("429_sent", 0),
        "requests": after.get("requests", 0) - before.get("requests", 0),
    }


def main() -> int:
    from localflare import testing

    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--limit", default="1200/300", help="localflare's COUNT/SECONDS (default: the real limit)")
    parser.add_argument("--heavy", type=int, default=3)
    parser.add_argument("--threads", type=int, default=4, help="calls in flight per heavy task")
    parser.add_argument("--seconds", type=float, default=120)
    parser.add_argument("--monitor-interval", type=float, default=60.0)
    parser.add_argument("--outside-rps", type=float, default=0.0, help="a script outside Airflow (0: none)")
    parser.add_argument("--outside-start", type=float, default=0.0)
    args = parser.parse_args()
    window = float(args.limit.partition("/")[2] or 300)
    with tempfile.TemporaryDirectory() as tmp:
        server = testing.start(Path(tmp) / "lf", "--seed", "demo", "--rate-limit", args.limit)
        try:
            report = run(
                server,
                heavy_tasks=args.heavy,
                seconds=args.seconds,
                budget={"window_seconds": window},
                threads=args.threads,
                monitor_interval=args.monitor_interval,
                outside_rps=args.outside_rps,
                outside_start=args.outside_start,
            )
        finally:
            server.stop()
    print(json.dumps(report, indent=2))
    return 0 if report["429_sent"] == 0 else 1


if __name__ == "__main__":
    sys.exit(main())
