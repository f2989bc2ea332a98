"""The shared API budget holds with several heavy tasks at once, and monitoring keeps working.

Three heavy processes, each paced to 3 requests/s (together almost twice the server's 5/s), and a
health monitor share a localflare whose limit is 1,200/300 s scaled down to 40/8 s. The budget's
reserve and slow-down must keep every process clear of a 429 (which on Cloudflare blocks the whole
account for five minutes).
"""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

# A plain import, so the spawned worker processes can import the same module.
sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "bench"))

import budget_load  # noqa: E402


@pytest.mark.slow
def test_heavy_tasks_never_trip_the_limit_and_monitoring_never_starves(lf_fresh):
    server = lf_fresh("--rate-limit", "40/8")
    report = budget_load.run(
        server, heavy_tasks=3, seconds=20, budget={"bulk_rps": 3.0, "reserve": 12}, monitor_interval=1.0
    )
    assert report["429_sent"] == 0, report
    heavy = [p for p in report["processes"] if p["role"] == "heavy"]
    monitor = next(p for p in report["processes"] if p["role"] == "monitor")
    assert all(p["errors"] == 0 and p["requests"] > 0 for p in heavy), report
    assert monitor["failed"] == 0 and monitor["ok"] >= 15, report
    # The heavy tasks were held back: far fewer requests than their unchecked 3/s would make.
    assert sum(p["requests"] for p in heavy) < 3 * 3 * 20 / 2
