"""`make smoke`: run every DAG once, headless, against freshly seeded stand-ins.

Prints one line per DAG with its final state and exits non-zero if any run did not succeed.
Manual DAGs get the run conf in RUN_CONF (their Params' typed confirmations included).
"""

from __future__ import annotations

import os
import sys
import tempfile
import time
from datetime import datetime, timezone
from pathlib import Path

from stack import BUCKET, ROOT, S3Server, airflow_env, testing

RUN_CONF = {
    "prism_index_rebuild": {"confirm": "REBUILD"},
    # The calendar DAGs do only their day's work; a smoke run picks the day with the most to do.
    # prism_quarterly reviews the last quarter that ended by its run, so it needs nothing.
    "prism_monthly": {"run_day": 1},
}
# Runs in name order, so prism_daily's verified backup set exists when prism_disaster_recovery
# restores it (its backup_date is filled in below, from the smoke run's date).


def main() -> int:
    tmp = Path(tempfile.mkdtemp(prefix="prism-smoke-"))
    lf = testing.start(tmp / "localflare", "--seed", "demo", "--mutation-lag", "0.2")
    s3 = S3Server(testing.free_port(), tmp / "s3.log")
    failures = succeeded = 0
    try:
        s3.create_bucket(BUCKET)
        os.environ.update(airflow_env(tmp / "airflow", lf, s3.endpoint))
        os.environ["AIRFLOW__CORE__LOAD_EXAMPLES"] = "False"
        import subprocess

        subprocess.run([sys.executable, "-m", "airflow", "db", "migrate"], check=True, stdout=subprocess.DEVNULL)
        # prism_preflight checks the pools, as a deployment would have them.
        subprocess.run(
            [sys.executable, "-m", "airflow", "pools", "import", str(ROOT / "include" / "pools.json")],
            check=True,
            stdout=subprocess.DEVNULL,
        )
        from airflow.dag_processing.dagbag import DagBag

        bag = DagBag(dag_folder=str(ROOT / "dags"))
        if bag.import_errors:
            for path, err in bag.import_errors.items():
                print(f"IMPORT ERROR {path}: {err}")
            return 1
        now = datetime.now(timezone.utc).replace(minute=0, second=0, microsecond=0)
        for dag_id in sorted(bag.dags):
            conf = RUN_CONF.get(dag_id)
            if dag_id == "prism_disaster_recovery":
                conf = {"backup_date": f"{now:%Y%m%d}", "confirm": "RESTORE"}
            started = time.monotonic()
            try:
                run = bag.dags[dag_id].test(logical_date=now, run_conf=conf)
                state = str(run.state)
            except Exception as exc:  # noqa: BLE001 - reported as a failed DAG
                state = f"error: {type(exc).__name__}: {exc}"
            ok = state.endswith("success")
            failures += not ok
            succeeded += ok
            print(f"{dag_id:28s} {state:9s} {time.monotonic() - started:6.1f} s", flush=True)
    finally:
        s3.stop()
        lf.stop()
    print(f"{succeeded} succeeded, {failures} failed")
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
