"""The distributed deployment the end-to-end tests run against, started once for the session.

`make test-e2e` runs these tests; `make test` leaves them out (pytest.ini ignores tests/e2e unless it
is named on the command line). They need the PostgreSQL and Redis servers already running on
loopback (PRISM_E2E_PG, PRISM_E2E_REDIS; see scripts/e2e_stack.py) and borrow them without touching
anything of anyone else's.
"""

from __future__ import annotations

import shutil
import sys
import time
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT / "scripts"))
sys.path.insert(0, str(Path(__file__).resolve().parent))

from e2e_stack import PG_URL, REDIS_URL, DistributedStack  # noqa: E402

# Shortened by config (PRISM_SCHEDULES, read by the dag-processor at parse time), not by code.
SCHEDULES = {"prism_health_monitor": "* * * * *"}
TIMINGS: dict[str, float] = {}


def _preflight() -> None:
    """Fail early, with the reason, when the servers or the Celery stack cannot work."""
    import psycopg2
    import redis

    try:
        psycopg2.connect(f"{PG_URL}/postgres", connect_timeout=5).close()
    except Exception as exc:  # noqa: BLE001 - the message says what to do
        pytest.exit(f"PostgreSQL is not reachable at {PG_URL} (set PRISM_E2E_PG): {exc}", returncode=1)
    try:
        redis.Redis.from_url(REDIS_URL, socket_connect_timeout=5).ping()
    except Exception as exc:  # noqa: BLE001
        pytest.exit(f"Redis is not reachable at {REDIS_URL} (set PRISM_E2E_REDIS): {exc}", returncode=1)
    try:
        import airflow.providers.celery.executors.celery_executor_utils  # noqa: F401
    except ImportError as exc:
        import celery

        pytest.exit(
            f"the CeleryExecutor cannot be imported with celery {celery.__version__}: {exc}. "
            "Pin a celery release apache-airflow-providers-celery supports in requirements.txt "
            "and run `make lock`.",
            returncode=1,
        )


@pytest.fixture(scope="session")
def stack(request):
    _preflight()
    deployment = DistributedStack(schedules=SCHEDULES, task_retries=2, retry_delay_seconds=3, heartbeat_timeout=30)
    started = time.monotonic()
    deployment.start()
    TIMINGS["startup"] = time.monotonic() - started
    # The deployment runs its monitor: the schedule test finds its runs later.
    deployment.request("PATCH", "/dags/prism_health_monitor", json={"is_paused": False}).raise_for_status()
    yield deployment
    if not deployment.stopped:
        deployment.stop()
    if request.session.testsfailed:
        print(f"\ne2e logs kept in {deployment.dir / 'logs'}")
    else:
        shutil.rmtree(deployment.dir, ignore_errors=True)


@pytest.fixture(scope="session")
def facts() -> dict:
    """What one scenario leaves for the next (the backup set the UI run wrote, ...)."""
    return {}


@pytest.fixture(autouse=True)
def _timed(request):
    started = time.monotonic()
    yield
    TIMINGS[request.node.name] = time.monotonic() - started


def pytest_terminal_summary(terminalreporter):
    if TIMINGS:
        terminalreporter.section("e2e scenario durations")
        for name, seconds in TIMINGS.items():
            terminalreporter.write_line(f"{seconds:7.1f} s  {name}")
        terminalreporter.write_line(f"{sum(TIMINGS.values()):7.1f} s  total")
