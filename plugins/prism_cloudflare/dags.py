"""What every PRISM DAG shares: default arguments, the SQL template path, and the config macro."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path

import pendulum

from prism_cloudflare.config import runtime_config
from prism_cloudflare.notifiers import PrismAlertNotifier

SQL_DIR = str(Path(__file__).resolve().parents[2] / "include" / "sql")
START = pendulum.datetime(2026, 1, 1, tz="UTC")
# `{{ prism().cloudflare.d1_database }}` in any templated field: the config as the task runs
# (file + Variable), read at render time, never at parse time.
MACROS = {"prism": runtime_config}


def default_args(**overrides) -> dict:
    args = {
        "owner": "prism-devops",
        "retries": 2,
        "retry_delay": timedelta(minutes=2),
        "retry_exponential_backoff": 2.0,
        "execution_timeout": timedelta(hours=1),
        "on_failure_callback": PrismAlertNotifier(),
    }
    args.update(overrides)
    return args
