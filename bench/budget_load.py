"""Load test of the shared API budget: several heavy tasks and a health monitor at once.

Each heavy task and the monitor is its own process, as Airflow tasks are, with its own hooks and
pacing; they share only the server's budget. Run against a localflare with a scaled-down limit:

    python bench/budget_load.py --limit 40/8 --heavy 3 --seconds 20

It prints the requests each process made, the 429s localflare sent, and whether monitoring ever
failed. The test suite runs the same scenario (tests/bench/test_budget_load.py).
"""

from __future__ import annotations

import argparse
import json
import multiprocessing as mp
import os
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(ROOT), str(ROOT / "plugins")]


def _connect(server_info: dict, budget: dict) -> None:
    os.environ["AIRFLOW_CONN_CLOUDFLARE_DEFAULT"] = json.dumps(
        {
            "conn_type": "generic",
            "password": server_info["token"],
            "extra": {"account_id": server_info["account_id"], "base_url": server_info["api_url"], "budget": budget},
        }
    )


def heavy(server_info: dict, budget: dict, seconds: float, out) -> None:
    """A backup-like task: reads vectors in batches for `seconds`."""
    _connect(server_info, budget)
    from airflow_provider_cloudflare.hooks.vectorize import VectorizeHook

    hook = VectorizeHook(priority="bulk", get_batch_size=20)
    ids = [f"chk-{i:07d}-00" for i in range(100)]
    done, errors, deadline = 0, 0, time.monotonic() + seconds
    while time.monotonic() < deadline:
        try:
            list(hook.get_by_ids(server_info["index"], ids[:20]))
            done += 1
        except Exception as exc:  # noqa: BLE001 - counted and reported
            errors += 1
            print("heavy error:", exc, file=sys.stderr)
    out.put({"role": "heavy", "requests": done, "errors": errors, "waited_s": round(hook.budget.waited, 1)})


def monitor(server_info: dict, budget: dict, seconds: float, interval: float, out) -> None:
    """A health monitor: one D1 `SELECT 1` every `interval` seconds, never retried for long."""
    _connect(server_info, budget)
    from airflow_provider_cloudflare.hooks.d1 import D1Hook

    hook = D1Hook(priority="monitor", max_attempts=1)
    ok = failed = 0
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        started = time.monotonic()
        try:
            hook.rows(server_info["d1_id"], "SELECT 1 AS ok")
            ok += 1
        except Exception as exc:  # noqa: BLE001 - a failed health check is the finding
            failed += 1
            print("monitor error:", exc, file=sys.stderr)
        time.sleep(max(0.0, interval - (time.monotonic() - started)))
    out.put({"role": "monitor", "ok": ok, "failed": failed})


def run(server, *, heavy_tasks: int, seconds: float, budget: dict, monitor_interval: float) -> dict:
    info = {
        "token": server.token,
        "account_id": server.account_id,
        "api_url": server.api_url,
        "index": server.index_name,
        "d1_id": server.d1_id,
    }
    ctx = mp.get_context("spawn")
    out = ctx.Queue()
    procs = [ctx.Process(target=heavy, args=(info, budget, seconds, out)) for _ in range(heavy_tasks)]
    procs.append(ctx.Process(target=monitor, args=(info, budget, seconds, monitor_interval, out)))
    for p in procs:
        p.start()
    results = [out.get(timeout=seconds + 120) for _ in procs]
    for p in procs:
        p.join(timeout=30)
    counters = server.counters()
    return {"processes": results, "429_sent": counters.get("429_sent", 0), "requests": counters.get("requests", 0)}


def main() -> int:
    from localflare import testing

    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--limit", default="40/8", help="localflare's COUNT/SECONDS (1200/300 scaled down)")
    parser.add_argument("--heavy", type=int, default=3)
    parser.add_argument("--seconds", type=float, default=20)
    parser.add_argument("--bulk-rps", type=float, default=3.0, help="per heavy task; 3 x 3/s overshoots 5/s on purpose")
    parser.add_argument("--reserve", type=int, default=12)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        server = testing.start(Path(tmp) / "lf", "--seed", "demo", "--rate-limit", args.limit)
        try:
            report = run(
                server,
                heavy_tasks=args.heavy,
                seconds=args.seconds,
                budget={"bulk_rps": args.bulk_rps, "reserve": args.reserve},
                monitor_interval=1.0,
            )
        finally:
            server.stop()
    print(json.dumps(report, indent=2))
    return 0 if report["429_sent"] == 0 else 1


if __name__ == "__main__":
    sys.exit(main())
