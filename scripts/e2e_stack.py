"""Airflow's distributed engine on loopback: the docker-compose layout as local processes.

PostgreSQL (metadata DB and Celery result backend) and Redis (Celery broker) are servers that are
already running; this module only borrows them: a fresh database `prism_e2e_<token>` for each run,
dropped at the end, and Redis keys under its own prefix (`[celery_broker_transport_options]
global_keyprefix`) in its own db index, deleted at the end. It starts localflare, the S3 stand-in,
and Airflow's api-server, scheduler, dag-processor, triggerer and a Celery worker, each in its own
process group, and stops exactly those processes by their ids.

    python scripts/e2e_stack.py      # start it all, print the addresses, stop everything on Ctrl-C

Used by `make test-e2e` (tests/e2e). Settings: PRISM_E2E_PG (libpq URL of the server, default
postgresql://postgres@127.0.0.1:5432), PRISM_E2E_REDIS (default redis://127.0.0.1:6379/9).
"""

from __future__ import annotations

import json
import os
import secrets
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from urllib.parse import urlsplit

import requests
from stack import BUCKET, POOLS_FILE, ROOT, S3Server, airflow_env, stop_group, testing

PG_URL = os.environ.get("PRISM_E2E_PG", "postgresql://postgres@127.0.0.1:5432")
REDIS_URL = os.environ.get("PRISM_E2E_REDIS", "redis://127.0.0.1:6379/9")
COMPONENTS = ("api-server", "scheduler", "dag-processor", "triggerer", "worker")
# localflare timings: quick enough for a test, still asynchronous like the real service.
LOCALFLARE_ARGS = ("--seed", "demo", "--mutation-lag", "0.2", "--export-min-seconds", "0.3")


class Component:
    """One Airflow process we started (with whatever it forks), and its log."""

    def __init__(self, name: str, args: list[str], env: dict, log_path: Path):
        self.name, self.args, self.env, self.log_path = name, args, env, log_path
        self.proc: subprocess.Popen | None = None
        self.known: dict = {}  # pid -> psutil.Process of everything seen in its tree (identity-checked)

    def start(self) -> None:
        log = open(self.log_path, "ab")
        log.write(f"\n===== {time.strftime('%H:%M:%S')} starting {' '.join(self.args)}\n".encode())
        log.flush()
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "airflow", *self.args],
            env=self.env,
            cwd=ROOT,
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        log.close()
        self.tree()

    def alive(self) -> bool:
        return self.proc is not None and self.proc.poll() is None

    def tree(self) -> list:
        """The process and every descendant still alive (psutil.Process objects)."""
        import psutil

        if self.proc is None:
            return []
        try:
            root = psutil.Process(self.proc.pid)
            procs = [root, *root.children(recursive=True)]
        except psutil.NoSuchProcess:
            return []
        self.known.update((p.pid, p) for p in procs)
        return procs

    def kill(self) -> list[int]:
        """SIGKILL the process and every process under it at once: the node dies, nothing cleans up."""
        import psutil

        procs = self.tree()
        for p in procs:
            try:
                p.kill()
            except psutil.NoSuchProcess:
                pass
        psutil.wait_procs(procs, timeout=10)
        if self.proc is not None:
            self.proc.wait()
        return [p.pid for p in procs]

    def stop(self, timeout: float = 20) -> None:
        """SIGTERM (a warm shutdown), then SIGKILL what is left after `timeout`."""
        import psutil

        if self.proc is not None:
            self.tree()
            stop_group(self.proc, timeout)
        # Anything it started that left its tree (its parent died first): the same processes only.
        for p in self.known.values():
            try:
                if p.is_running():
                    p.kill()
            except psutil.NoSuchProcess:
                pass

    def log_tail(self, chars: int = 4000) -> str:
        try:
            return self.log_path.read_text(errors="replace")[-chars:]
        except OSError:
            return ""


class DistributedStack:
    """The whole deployment. `start()` returns when every component is up and the DAGs are parsed."""

    def __init__(
        self,
        workdir: Path | None = None,
        *,
        schedules: dict | None = None,
        worker_concurrency: int = 4,
        task_retries: int = 2,
        retry_delay_seconds: int = 3,
        heartbeat_timeout: int = 20,
    ):
        self.token = secrets.token_hex(4)
        self.name = f"prism_e2e_{self.token}"
        self.dir = Path(workdir or tempfile.mkdtemp(prefix=f"{self.name}-"))
        self.dir.mkdir(parents=True, exist_ok=True)
        self.schedules = schedules or {}
        self.worker_concurrency = worker_concurrency
        self.task_retries, self.retry_delay_seconds = task_retries, retry_delay_seconds
        self.heartbeat_timeout = heartbeat_timeout
        self.redis_prefix = f"{self.name}:"
        self.queue = self.name
        self.password = secrets.token_urlsafe(12)
        self.lf: testing.Server | None = None
        self.s3: S3Server | None = None
        self.components: dict[str, Component] = {}
        self.db_created = False
        self.env: dict = {}
        self.api_url = ""
        self._token: tuple[str, float] | None = None
        self.stopped = False

    # ---- settings ------------------------------------------------------------------------
    @property
    def sql_alchemy_conn(self) -> str:
        parts = urlsplit(PG_URL)
        return f"postgresql+psycopg2://{parts.netloc}/{self.name}"

    @property
    def redis_db(self) -> int:
        return int(urlsplit(REDIS_URL).path.strip("/") or 0)

    def _environment(self) -> dict:
        api_port = testing.free_port()
        home = self.dir / "airflow"
        home.mkdir(exist_ok=True)
        env = airflow_env(home, self.lf, self.s3.endpoint, api_port)
        # Pacing is the production default's business; the suite wants its minutes back.
        cloudflare = json.loads(env["AIRFLOW_CONN_CLOUDFLARE_DEFAULT"])
        cloudflare["extra"]["budget"] = {"bulk_rps": 0}
        from cryptography.fernet import Fernet

        tmp = self.dir / "tmp"  # what a killed task leaves behind goes with the stack's directory
        tmp.mkdir(exist_ok=True)
        pw_file = home / "passwords.json"
        pw_file.write_text(json.dumps({"admin": self.password}))
        env.update(
            {
                "AIRFLOW_CONN_CLOUDFLARE_DEFAULT": json.dumps(cloudflare),
                "TMPDIR": str(tmp),
                "AIRFLOW__CORE__EXECUTOR": "CeleryExecutor",
                "AIRFLOW__DATABASE__SQL_ALCHEMY_CONN": self.sql_alchemy_conn,
                "AIRFLOW__CORE__FERNET_KEY": Fernet.generate_key().decode(),
                "AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_PASSWORDS_FILE": str(pw_file),
                # Every component signs and checks the same tokens, and finds the same execution API.
                "AIRFLOW__API_AUTH__JWT_SECRET": secrets.token_urlsafe(32),
                "AIRFLOW__API__SECRET_KEY": secrets.token_urlsafe(32),
                "AIRFLOW__API__WORKERS": "1",
                # Celery: Redis broker under our own key prefix, results in our own database.
                "AIRFLOW__CELERY__BROKER_URL": REDIS_URL,
                "AIRFLOW__CELERY_BROKER_TRANSPORT_OPTIONS__GLOBAL_KEYPREFIX": self.redis_prefix,
                "AIRFLOW__CELERY_BROKER_TRANSPORT_OPTIONS__VISIBILITY_TIMEOUT": "21600",
                "AIRFLOW__CELERY__RESULT_BACKEND": "db+" + self.sql_alchemy_conn,
                "AIRFLOW__CELERY__WORKER_CONCURRENCY": str(self.worker_concurrency),
                "AIRFLOW__CELERY__SYNC_PARALLELISM": "1",
                "AIRFLOW__OPERATORS__DEFAULT_QUEUE": self.queue,
                # Ports of our own (the defaults 8793/8794/8974 may be taken by another deployment).
                "AIRFLOW__LOGGING__WORKER_LOG_SERVER_PORT": str(testing.free_port()),
                "AIRFLOW__LOGGING__TRIGGER_LOG_SERVER_PORT": str(testing.free_port()),
                "AIRFLOW__SCHEDULER__ENABLE_HEALTH_CHECK": "True",
                "AIRFLOW__SCHEDULER__SCHEDULER_HEALTH_CHECK_SERVER_HOST": "127.0.0.1",
                "AIRFLOW__SCHEDULER__SCHEDULER_HEALTH_CHECK_SERVER_PORT": str(testing.free_port()),
                # A worker that dies is noticed in seconds, not the default five minutes.
                "AIRFLOW__SCHEDULER__TASK_INSTANCE_HEARTBEAT_TIMEOUT": str(self.heartbeat_timeout),
                "AIRFLOW__SCHEDULER__TASK_INSTANCE_HEARTBEAT_TIMEOUT_DETECTION_INTERVAL": "2",
                "AIRFLOW__WORKERS__MIN_HEARTBEAT_INTERVAL": "2",
                "AIRFLOW__DAG_PROCESSOR__REFRESH_INTERVAL": "30",
                "AIRFLOW__DAG_PROCESSOR__MIN_FILE_PROCESS_INTERVAL": "60",
                "AIRFLOW__DAG_PROCESSOR__PARSING_PROCESSES": "1",
                # Bundle settings read at parse time: schedules and retries without a code change.
                "PRISM_SCHEDULES": json.dumps(self.schedules),
                "PRISM_TASK_RETRIES": str(self.task_retries),
                "PRISM_TASK_RETRY_DELAY_SECONDS": str(self.retry_delay_seconds),
            }
        )
        env.pop("AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_ALL_ADMINS", None)
        self.api_url = env["AIRFLOW__API__BASE_URL"]
        return env

    # ---- lifecycle -------------------------------------------------------------------------
    def start(self, timeout: float = 300) -> DistributedStack:
        started = time.monotonic()
        try:
            self.lf = testing.start(self.dir / "localflare", *LOCALFLARE_ARGS)
            self.s3 = S3Server(testing.free_port(), self.dir / "s3.log")
            self.s3.create_bucket(BUCKET)
            self._create_database()
            self.env = self._environment()
            self.airflow("db", "migrate")
            self.airflow("pools", "import", str(POOLS_FILE))
            logs = self.dir / "logs"
            logs.mkdir(exist_ok=True)
            commands = {
                "api-server": ["api-server"],
                "scheduler": ["scheduler"],
                "dag-processor": ["dag-processor"],
                "triggerer": ["triggerer"],
                "worker": [
                    "celery",
                    "worker",
                    "--queues",
                    self.queue,
                    "--concurrency",
                    str(self.worker_concurrency),
                    "--celery-hostname",
                    f"{self.name}@%h",
                    "--without-mingle",
                    "--without-gossip",
                ],
            }
            for name in COMPONENTS:
                self.components[name] = Component(name, commands[name], self.env, logs / f"{name}.log")
                self.components[name].start()
            self.wait_until_up(deadline=started + timeout)
        except BaseException:
            self.stop()
            raise
        self.startup_seconds = time.monotonic() - started
        return self

    @staticmethod
    def _postgres(statement: str) -> None:
        """One statement on the server's maintenance database (CREATE/DROP DATABASE run outside a transaction)."""
        import psycopg2

        conn = psycopg2.connect(f"{PG_URL}/postgres")
        conn.autocommit = True
        try:
            with conn.cursor() as cur:
                cur.execute(statement)
        finally:
            conn.close()

    def _create_database(self) -> None:
        self._postgres(f'CREATE DATABASE "{self.name}"')
        self.db_created = True

    def _drop_database(self) -> None:
        if self.db_created:
            # FORCE ends the sessions of this database only (ours, all stopped by now).
            self._postgres(f'DROP DATABASE IF EXISTS "{self.name}" WITH (FORCE)')
            self.db_created = False

    def redis(self):
        import redis

        parts = urlsplit(REDIS_URL)
        return redis.Redis(host=parts.hostname, port=parts.port or 6379, db=self.redis_db)

    def redis_keys(self) -> list[bytes]:
        client = self.redis()
        try:
            return list(client.scan_iter(match=self.redis_prefix + "*", count=500))
        finally:
            client.close()

    def _delete_redis_keys(self) -> None:
        keys, client = self.redis_keys(), self.redis()
        try:
            for i in range(0, len(keys), 500):
                client.delete(*keys[i : i + 500])
        finally:
            client.close()

    def wait_until_up(self, deadline: float) -> None:
        """The api-server answers, scheduler, triggerer and dag-processor heartbeat, the worker
        consumes its queue, and every DAG file is parsed."""

        def check_alive():
            for comp in self.components.values():
                if not comp.alive():
                    raise RuntimeError(f"{comp.name} exited with {comp.proc.returncode}:\n{comp.log_tail()}")

        while True:
            check_alive()
            try:
                health = requests.get(f"{self.api_url}/api/v2/monitor/health", timeout=5).json()
                states = {k: (v or {}).get("status") for k, v in health.items()}
                if all(states.get(k) == "healthy" for k in ("metadatabase", "scheduler", "triggerer", "dag_processor")):
                    break
            except (requests.RequestException, ValueError):
                pass
            if time.monotonic() > deadline:
                raise TimeoutError(f"Airflow did not become healthy; see {self.dir / 'logs'}")
            time.sleep(1)
        while " ready." not in self.components["worker"].log_tail(20000):
            check_alive()
            if time.monotonic() > deadline:
                raise TimeoutError(f"the Celery worker did not become ready; see {self.components['worker'].log_path}")
            time.sleep(0.5)
        expected = {p.stem for p in (ROOT / "dags").glob("prism_*.py")}
        while True:
            check_alive()
            dags = {d["dag_id"] for d in self.get("/dags", params={"limit": 100}).json()["dags"]}
            errors = self.get("/importErrors").json().get("import_errors", [])
            if errors:
                raise RuntimeError(f"DAG import errors: {errors}")
            if expected <= dags:
                return
            if time.monotonic() > deadline:
                raise TimeoutError(f"DAGs not parsed: {sorted(expected - dags)}")
            time.sleep(1)

    def restart_worker(self) -> None:
        """Start the Celery worker again (after `kill_worker`) and wait until it consumes."""
        worker = self.components["worker"]
        mark = worker.log_path.stat().st_size
        worker.start()
        deadline = time.monotonic() + 120
        while " ready." not in worker.log_path.read_text(errors="replace")[mark:]:
            if not worker.alive() or time.monotonic() > deadline:
                raise RuntimeError(f"the Celery worker did not restart:\n{worker.log_tail()}")
            time.sleep(0.5)

    def started_pids(self) -> set[int]:
        """Every process id this stack started (and what they forked), alive or not."""
        pids = set()
        for comp in self.components.values():
            comp.tree()
            pids |= set(comp.known)
        for server in (self.lf, self.s3):
            if server is not None and server.proc is not None:
                pids.add(server.proc.pid)
        return pids

    def stop(self) -> None:
        """Stop what we started, by process id; drop our database; delete our Redis keys."""
        errors = []
        # workers first (warm shutdown), then the scheduling side, then the API
        for name in ("worker", "triggerer", "scheduler", "dag-processor", "api-server"):
            comp = self.components.get(name)
            if comp is not None:
                try:
                    comp.stop()
                except Exception as exc:  # noqa: BLE001 - keep stopping the others
                    errors.append(f"{name}: {exc}")
        for server in (self.s3, self.lf):
            if server is not None:
                try:
                    server.stop()
                except Exception as exc:  # noqa: BLE001
                    errors.append(str(exc))
        for step in (self._drop_database, self._delete_redis_keys):
            try:
                step()
            except Exception as exc:  # noqa: BLE001
                errors.append(f"{step.__name__}: {exc}")
        self.stopped = True
        if errors:
            raise RuntimeError("stopping the e2e stack: " + "; ".join(errors))

    # ---- clients ---------------------------------------------------------------------------
    def airflow(self, *args: str, check: bool = True, timeout: float = 300) -> subprocess.CompletedProcess:
        """The `airflow` CLI against this deployment (what an operator runs on any node)."""
        result = subprocess.run(
            [sys.executable, "-m", "airflow", *args],
            env=self.env,
            cwd=ROOT,
            timeout=timeout,
            capture_output=True,
            text=True,
        )
        if check and result.returncode != 0:
            raise RuntimeError(
                f"airflow {' '.join(args)} exited with {result.returncode}:\n"
                f"{result.stdout[-3000:]}\n{result.stderr[-3000:]}"
            )
        return result

    def bearer(self) -> str:
        if self._token is None or time.monotonic() > self._token[1]:
            resp = requests.post(
                f"{self.api_url}/auth/token", json={"username": "admin", "password": self.password}, timeout=30
            )
            resp.raise_for_status()
            self._token = (resp.json()["access_token"], time.monotonic() + 600)
        return self._token[0]

    def request(self, method: str, path: str, **kw) -> requests.Response:
        """The REST API v2 with a bearer token, as the web UI calls it."""
        kw.setdefault("timeout", 60)
        headers = {"Authorization": f"Bearer {self.bearer()}", **kw.pop("headers", {})}
        return requests.request(method, f"{self.api_url}/api/v2{path}", headers=headers, **kw)

    def get(self, path: str, **kw) -> requests.Response:
        resp = self.request("GET", path, **kw)
        resp.raise_for_status()
        return resp

    def s3_client(self):
        import boto3

        return boto3.client(
            "s3",
            endpoint_url=self.s3.endpoint,
            aws_access_key_id="testing",
            aws_secret_access_key="testing",
            region_name="us-east-1",
        )

    def describe(self) -> str:
        return (
            f"  Airflow UI/API:  {self.api_url}   (user: admin  password: {self.password})\n"
            f"  metadata DB:     {self.sql_alchemy_conn}\n"
            f"  Celery broker:   {REDIS_URL} (keys {self.redis_prefix}*, queue {self.queue})\n"
            f"  localflare API:  {self.lf.api_url}\n"
            f"  S3 stand-in:     {self.s3.endpoint}   bucket {BUCKET}\n"
            f"  logs:            {self.dir / 'logs'}\n"
        )


def main() -> int:
    schedules = json.loads(os.environ.get("PRISM_SCHEDULES", "{}"))
    stack = DistributedStack(schedules=schedules)
    print(f"Starting the distributed stack in {stack.dir} ...", flush=True)
    stack.start()
    print(
        f"Up in {stack.startup_seconds:.0f} s:\n{stack.describe()}Press Ctrl-C to stop everything it started.",
        flush=True,
    )
    signal.signal(signal.SIGTERM, lambda *_: (_ for _ in ()).throw(KeyboardInterrupt()))
    try:
        while all(c.alive() for c in stack.components.values()):
            time.sleep(1)
        print("a component exited; stopping", flush=True)
        return 1
    except KeyboardInterrupt:
        return 0
    finally:
        stack.stop()
        if "--keep" not in sys.argv:
            shutil.rmtree(stack.dir, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main())
