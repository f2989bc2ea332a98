"""The shared API budget holds with several heavy tasks, a monitor and a script outside Airflow at once.

Three heavy processes with two calls in flight each (together far more than the account allows), a
health monitor and an outside script that knows nothing of the budget share a localflare whose limit
is 1,200/300 s scaled down to 200/20 s (a reserve of 10, the real one being 60). Nobody may see a 429 (on Cloudflare it blocks the whole account
for five minutes), the monitor's calls go out at once, and the heavy tasks still spend most of the
budget. `make bench` runs the same at the real limit.
"""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

# A plain import, so the spawned worker processes can import the same module.
sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "bench"))

import budget_load  # noqa: E402


@pytest.mark.slow
def test_heavy_tasks_never_trip_the_limit_monitoring_never_starves_and_outside_spend_is_left_room(lf_fresh):
    server = lf_fresh("--rate-limit", "200/20")
    seconds = 30
    report = budget_load.run(
        server,
        heavy_tasks=3,
        seconds=seconds,
        budget={"window_seconds": 20},
        threads=2,
        monitor_interval=5.0,
        monitor_calls=2,
        outside_rps=0.5,
        outside_start=8.0,
    )
    assert report["429_sent"] == 0, report
    heavy = [p for p in report["processes"] if p["role"] == "heavy"]
    monitor = next(p for p in report["processes"] if p["role"] == "monitor")
    outside = next(p for p in report["processes"] if p["role"] == "outside")
    assert all(p["errors"] == 0 and p["requests"] > 0 for p in heavy), report
    assert monitor["failed"] == 0 and monitor["ok"] >= 8 and monitor["wait_p99_s"] < 1.0, report
    assert set(outside["statuses"]) == {"200"}, report
    # Held to the budget, yet spending most of it: 190 of 200 per window at most for bulk work, and the
    # sliding window allows a burst at the start and another a window later.
    bursts = seconds // 20 + 1
    assert 0.5 * 190 * bursts <= sum(p["requests"] for p in heavy) <= 190 * bursts
