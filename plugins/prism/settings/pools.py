"""The Airflow pools the bundle's tasks use. include/pools.json (`airflow pools import` format) is
the one definition every setup path loads: docker-compose's airflow-init, scripts/demo.py,
scripts/local_airflow.py and scripts/e2e_stack.py. A task in a pool that does not exist is never
scheduled, so names are used only through these constants."""

from __future__ import annotations

import json
from pathlib import Path

from prism.settings.paths import POOLS_FILE

# Bulk Cloudflare API work: backups, restores, index builds (see budget.py).
HEAVY_POOL = "cloudflare_heavy"
# One slot: tasks that delete by age never overlap another run's, whatever the run type (max_active_runs
# does not count backfill runs).
DELETES_POOL = "prism_deletes"


def pool_definitions(path: Path = POOLS_FILE) -> dict[str, dict]:
    """{name: {"slots", "description", "include_deferred"}} from the pools file."""
    return json.loads(Path(path).read_text())
