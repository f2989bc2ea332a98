"""The `airflow` CLI against the local stand-ins; see scripts/local-airflow.

The stand-ins keep running between calls (their pids are in .local/*.pid); `--stop` stops them.
Ports: LOCALFLARE_PORT (8788) and S3_PORT (5056), apart from `make demo`'s.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time

import requests
from stack import BUCKET, POOLS_FILE, ROOT, airflow_env, testing

STATE = ROOT / ".local"


def _alive(url: str) -> bool:
    try:
        return requests.get(url, timeout=1).status_code < 500
    except requests.RequestException:
        return False


def _spawn(name: str, args: list[str], ready_url: str) -> None:
    log = open(STATE / f"{name}.log", "ab")
    proc = subprocess.Popen(args, stdout=log, stderr=subprocess.STDOUT, start_new_session=True, cwd=ROOT)
    (STATE / f"{name}.pid").write_text(str(proc.pid))
    deadline = time.monotonic() + 120
    while not _alive(ready_url):
        if proc.poll() is not None or time.monotonic() > deadline:
            raise SystemExit(f"{name} did not start; see {STATE / (name + '.log')}")
        time.sleep(0.2)


def ensure_stand_ins() -> tuple[testing.Server, str]:
    STATE.mkdir(exist_ok=True)
    lf_port = int(os.environ.get("LOCALFLARE_PORT", 8788))
    s3_port = int(os.environ.get("S3_PORT", 5056))
    if not _alive(f"http://127.0.0.1:{lf_port}/__localflare/info"):
        _spawn(
            "localflare",
            [
                sys.executable,
                "-m",
                "localflare",
                "serve",
                "--data-dir",
                str(STATE / "localflare"),
                "--port",
                str(lf_port),
                "--seed",
                "demo",
            ],
            f"http://127.0.0.1:{lf_port}/__localflare/info",
        )
    s3 = f"http://127.0.0.1:{s3_port}"
    if not _alive(s3):
        _spawn("s3", [sys.executable, "-m", "moto.server", "-H", "127.0.0.1", "-p", str(s3_port)], s3)
        import boto3

        boto3.client(
            "s3", endpoint_url=s3, aws_access_key_id="testing", aws_secret_access_key="testing", region_name="us-east-1"
        ).create_bucket(Bucket=BUCKET)
    return testing.Server(STATE / "localflare", lf_port, None, STATE / "localflare.log"), s3


def stop() -> None:
    for name in ("localflare", "s3"):
        pid_file = STATE / f"{name}.pid"
        if pid_file.exists():
            try:
                os.killpg(int(pid_file.read_text()), signal.SIGTERM)
            except ProcessLookupError:
                pass
            pid_file.unlink()


def main(argv: list[str]) -> int:
    if argv == ["--stop"]:
        stop()
        return 0
    lf, s3 = ensure_stand_ins()
    env = airflow_env(STATE / "airflow", lf, s3)
    fresh = not (STATE / "airflow" / "airflow.db").exists()
    if fresh:
        subprocess.run(
            [sys.executable, "-m", "airflow", "db", "migrate"], env=env, check=True, stdout=subprocess.DEVNULL
        )
    # (Re)load the pools when the file changed since the last import: an existing home gets new pools too.
    stamp = STATE / "airflow" / "pools.imported"
    if fresh or not stamp.exists() or stamp.stat().st_mtime < POOLS_FILE.stat().st_mtime:
        subprocess.run(
            [sys.executable, "-m", "airflow", "pools", "import", str(POOLS_FILE)],
            env=env,
            check=True,
            stdout=subprocess.DEVNULL,
        )
        stamp.touch()
    return subprocess.run([sys.executable, "-m", "airflow", *argv], env=env).returncode


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
