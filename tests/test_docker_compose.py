"""docker-compose.yaml and the Dockerfile, checked by structure (there is no Docker engine here):
the official Airflow 3.3.2 CeleryExecutor layout, the shared environment, the mounts, healthchecks and
dependencies, and the `local` profile wired to the stand-ins the connections point at."""

from __future__ import annotations

import re
import shlex
from pathlib import Path
from urllib.parse import urlsplit

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[1]
AIRFLOW = [
    "airflow-apiserver",
    "airflow-scheduler",
    "airflow-dag-processor",
    "airflow-worker",
    "airflow-triggerer",
    "airflow-init",
    "airflow-cli",
    "flower",
]
COMPONENTS = ["airflow-apiserver", "airflow-scheduler", "airflow-dag-processor", "airflow-worker", "airflow-triggerer"]
STAND_INS = ["localflare", "s3", "local-init"]
ONE_SHOT = {"airflow-init", "airflow-cli", "local-init"}
SHARED = [
    "AIRFLOW__CORE__EXECUTOR",
    "AIRFLOW__DATABASE__SQL_ALCHEMY_CONN",
    "AIRFLOW__CELERY__BROKER_URL",
    "AIRFLOW__CELERY__RESULT_BACKEND",
    "AIRFLOW__CORE__EXECUTION_API_SERVER_URL",
    "AIRFLOW__API_AUTH__JWT_SECRET",
    "AIRFLOW__API__SECRET_KEY",
    "AIRFLOW__CORE__FERNET_KEY",
    "AIRFLOW__CORE__AUTH_MANAGER",
    "AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_USERS",
    "AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_PASSWORDS_FILE",
    "AIRFLOW__CELERY_BROKER_TRANSPORT_OPTIONS__VISIBILITY_TIMEOUT",
    "AIRFLOW_CONN_CLOUDFLARE_DEFAULT",
    "AIRFLOW_CONN_PRISM_WORKER",
    "AIRFLOW_CONN_AWS_DEFAULT",
    "PRISM_SCHEDULES",
    "PRISM_TASK_RETRIES",
    "PRISM_TASK_RETRY_DELAY_SECONDS",
]
VARIABLE = re.compile(r"\$\$|\$\{([A-Za-z_][A-Za-z0-9_]*)(?:(:?[-?])([^}]*))?\}|\$([A-Za-z_][A-Za-z0-9_]*)")


def interpolate(value, env: dict):
    """Compose's variable substitution (${VAR}, ${VAR:-default}, ${VAR-default}, ${VAR:?error}, $$)."""
    if isinstance(value, dict):
        return {k: interpolate(v, env) for k, v in value.items()}
    if isinstance(value, list):
        return [interpolate(v, env) for v in value]
    if not isinstance(value, str):
        return value

    def sub(m: re.Match) -> str:
        if m.group(0) == "$$":
            return "$"
        name, op, arg = m.group(1) or m.group(4), m.group(2), m.group(3)
        current = env.get(name)
        if op in (":-", ":?") and not current or op in ("-", "?") and current is None:
            if op.endswith("?"):
                raise ValueError(f"{name} is required: {arg}")
            return arg
        return current or ""

    return VARIABLE.sub(sub, value)


def load(env: dict | None = None) -> dict:
    return interpolate(yaml.safe_load((ROOT / "docker-compose.yaml").read_text()), env or {})


@pytest.fixture(scope="module")
def compose() -> dict:
    return load()


@pytest.fixture(scope="module")
def services(compose) -> dict:
    return compose["services"]


def environment(service: dict) -> dict:
    env = service.get("environment") or {}
    if isinstance(env, list):
        env = dict(item.split("=", 1) for item in env)
    return {k: "" if v is None else str(v) for k, v in env.items()}


def command(service: dict) -> list[str]:
    cmd = service.get("command") or []
    return shlex.split(cmd) if isinstance(cmd, str) else [str(c) for c in cmd]


def option(args: list[str], flag: str) -> str:
    return args[args.index(flag) + 1]


def connection(uri: str):
    from airflow.models.connection import Connection

    return Connection(conn_id="probe", uri=uri)


# ---- layout ----------------------------------------------------------------------------------


def test_services_follow_the_official_celery_layout(services):
    assert set(services) == {"postgres", "redis", *AIRFLOW, *STAND_INS}
    profiles = {name: s.get("profiles") for name, s in services.items() if s.get("profiles")}
    assert profiles == {"flower": ["flower"], "airflow-cli": ["debug"], **dict.fromkeys(STAND_INS, ["local"])}
    expected = {
        "airflow-apiserver": ["api-server"],
        "airflow-scheduler": ["scheduler"],
        "airflow-dag-processor": ["dag-processor"],
        "airflow-worker": ["celery", "worker"],
        "airflow-triggerer": ["triggerer"],
        "flower": ["celery", "flower"],
    }
    assert {name: command(services[name]) for name in expected} == expected
    assert services["postgres"]["image"].startswith("postgres:")
    assert services["redis"]["image"].startswith("redis:")
    assert services["airflow-worker"]["environment"]["DUMB_INIT_SETSID"] == "0"  # warm shutdown of the worker


def test_image_is_built_from_the_dockerfile_with_the_lock(services):
    dockerfile = (ROOT / "Dockerfile").read_text()
    stages = dict(re.findall(r"^FROM\s+(\S+)\s+AS\s+(\S+)", dockerfile, re.M | re.I))
    assert stages.get("apache/airflow:3.3.2") == "airflow", stages
    assert stages.get("airflow") == "stand-ins", stages
    pinned = re.search(r"^apache-airflow==(\S+)", (ROOT / "requirements.txt").read_text(), re.M).group(1)
    assert pinned == "3.3.2" and re.search(r"^apache-airflow==3\.3\.2$", (ROOT / "requirements.lock").read_text(), re.M)
    install = re.search(
        r"^RUN grep -v '\^-e ' requirements\.lock > constraints\.txt(?:.*\\\n)*.*$", dockerfile, re.M
    ).group(0)
    assert "pip install --no-cache-dir -r requirements.txt -c constraints.txt" in install
    assert "WORKDIR /opt/airflow/prism-requirements" in dockerfile
    assert re.search(r"^COPY .*requirements\.txt requirements\.lock /opt/airflow/prism-requirements/", dockerfile, re.M)
    for name in AIRFLOW:
        assert services[name]["build"] == {"context": ".", "target": "airflow"}, name
    assert len({services[name]["image"] for name in AIRFLOW}) == 1
    for name in STAND_INS:
        assert services[name]["build"] == {"context": ".", "target": "stand-ins"}, name
    ignored = {
        line.strip()
        for line in (ROOT / ".dockerignore").read_text().splitlines()
        if line.strip() and not line.startswith("#")
    }
    assert not ignored & {
        "dags",
        "plugins",
        "include",
        "localflare",
        "requirements.txt",
        "requirements.lock",
        "providers",
    }
    # The Cloudflare provider (and its connection type) is installed into the image from requirements.txt.
    assert re.search(
        r"^COPY .*providers/cloudflare/ /opt/airflow/prism-requirements/providers/cloudflare/$", dockerfile, re.M
    )
    assert "-e ./providers/cloudflare" in (ROOT / "requirements.txt").read_text()
    assert environment(services["airflow-worker"])["AIRFLOW__CORE__TEST_CONNECTION"] == "Enabled"


# ---- the environment every component shares ----------------------------------------------------


def test_every_component_shares_the_environment(services):
    envs = {name: environment(services[name]) for name in AIRFLOW}
    for key in SHARED:
        values = {name: env.get(key) for name, env in envs.items()}
        assert None not in values.values(), (key, values)
        assert len(set(values.values())) == 1, (key, values)
    env = envs["airflow-apiserver"]
    assert env["AIRFLOW__CORE__EXECUTOR"] == "CeleryExecutor"
    assert env["AIRFLOW__API_AUTH__JWT_SECRET"] and env["AIRFLOW__API__SECRET_KEY"]


def test_urls_point_at_the_services(services):
    env = environment(services["airflow-apiserver"])
    api = urlsplit(env["AIRFLOW__CORE__EXECUTION_API_SERVER_URL"])
    assert api.hostname == "airflow-apiserver" and api.path == "/execution/"
    assert f"{api.port}:{api.port}" in services["airflow-apiserver"]["ports"]
    broker = urlsplit(env["AIRFLOW__CELERY__BROKER_URL"])
    assert (broker.scheme, broker.hostname, broker.port) == ("redis", "redis", 6379)
    pg = services["postgres"]["environment"]
    for key in ("AIRFLOW__DATABASE__SQL_ALCHEMY_CONN", "AIRFLOW__CELERY__RESULT_BACKEND"):
        url = urlsplit(env[key].removeprefix("db+"))
        assert url.scheme.startswith("postgresql") and url.hostname == "postgres", key
        assert (url.username, url.password, url.path.strip("/")) == (
            pg["POSTGRES_USER"],
            pg["POSTGRES_PASSWORD"],
            pg["POSTGRES_DB"],
        )
    health = services["airflow-scheduler"]["healthcheck"]["test"]
    assert env["AIRFLOW__SCHEDULER__ENABLE_HEALTH_CHECK"] == "true" and "http://localhost:8974/health" in health


def test_production_values_replace_the_local_defaults():
    env = {
        "AIRFLOW_JWT_SECRET": "s3cret",
        "AIRFLOW_CONN_CLOUDFLARE_DEFAULT": "cloudflare://:token@/?account_id=abc",
        "PRISM_SCHEDULES": '{"prism_daily": "0 6 * * *"}',
        "AIRFLOW_UID": "1000",
    }
    services = load(env)["services"]
    for name in AIRFLOW:
        got = environment(services[name])
        assert got["AIRFLOW__API_AUTH__JWT_SECRET"] == "s3cret"
        assert got["AIRFLOW_CONN_CLOUDFLARE_DEFAULT"] == env["AIRFLOW_CONN_CLOUDFLARE_DEFAULT"]
        assert got["PRISM_SCHEDULES"] == env["PRISM_SCHEDULES"]
    assert services["airflow-scheduler"]["user"] == "1000:0"


# ---- mounts ----------------------------------------------------------------------------------


def test_the_bundle_is_mounted_into_every_airflow_service(services):
    for name in AIRFLOW:
        mounts = dict(v.rsplit(":", 1) for v in services[name]["volumes"] if v.startswith("./"))
        assert mounts == {
            "./dags": "/opt/airflow/dags",
            "./plugins": "/opt/airflow/plugins",
            "./include": "/opt/airflow/include",
        }, name
    # The plugins find include/ next to themselves (config, SQL templates), as in the repository.
    from_plugins = (ROOT / "plugins" / "prism" / "settings" / "paths.py").resolve().parents[3]
    assert from_plugins == ROOT and (ROOT / "include" / "prism.config.json").exists()
    for name in ("dags", "plugins", "include", "localflare"):
        assert (ROOT / name).is_dir()
    lf_mounts = dict(v.rsplit(":", 2)[:2] for v in services["localflare"]["volumes"])
    assert lf_mounts == {"./localflare": "/opt/airflow/localflare", "./include": "/opt/airflow/include"}


# ---- healthchecks and dependencies ------------------------------------------------------------


def test_every_long_running_service_has_a_healthcheck(services):
    for name, service in services.items():
        if name in ONE_SHOT:
            continue
        test = service.get("healthcheck", {}).get("test")
        assert test and test[0] in ("CMD", "CMD-SHELL"), name
        assert service.get("restart") == "always", name


def test_dependencies(services):
    for name, service in services.items():
        for dep, spec in (service.get("depends_on") or {}).items():
            assert dep in services, (name, dep)
            assert spec["condition"] in ("service_healthy", "service_completed_successfully"), (name, dep)
            if dep in ONE_SHOT:
                assert spec["condition"] == "service_completed_successfully", (name, dep)
            else:
                assert services[dep].get("healthcheck"), (name, dep)
            # a service of the default profile never needs a `local` one to start
            if services[dep].get("profiles") and not service.get("profiles"):
                assert spec.get("required") is False, (name, dep)
    for name in AIRFLOW:
        deps = services[name]["depends_on"]
        assert deps["postgres"]["condition"] == deps["redis"]["condition"] == "service_healthy", name
    for name in [*COMPONENTS, "flower"]:
        assert services[name]["depends_on"]["airflow-init"]["condition"] == "service_completed_successfully", name
    assert services["airflow-worker"]["depends_on"]["airflow-apiserver"]["condition"] == "service_healthy"
    # no cycles
    graph = {name: set(s.get("depends_on") or {}) for name, s in services.items()}
    done: set[str] = set()
    while len(done) < len(graph):
        ready = {n for n, deps in graph.items() if n not in done and deps <= done}
        assert ready, f"dependency cycle among {set(graph) - done}"
        done |= ready


def test_init_migrates_and_creates_the_pool(services):
    init = services["airflow-init"]
    script = "\n".join(command(init))
    assert environment(init)["_AIRFLOW_DB_MIGRATE"] == "true"
    # the pools come from their one definition, mounted where the init container reads it
    assert "airflow pools import /opt/airflow/include/pools.json" in script
    assert "airflow pools set" not in script
    assert "./include:/opt/airflow/include" in init["volumes"]
    pools = __import__("json").loads((ROOT / "include" / "pools.json").read_text())
    assert {name: p["slots"] for name, p in pools.items()} == {"cloudflare_heavy": 3, "prism_deletes": 1}
    # no pool name is spelled out in the bundle but in its constants module
    sources = [*(ROOT / "dags").glob("*.py"), *(ROOT / "plugins").rglob("*.py"), *(ROOT / "scripts").glob("*.py")]
    spelled = [p.name for p in sources for name in pools if f'"{name}"' in p.read_text()]
    assert spelled == ["pools.py", "pools.py"], spelled
    assert "simple_auth_manager_passwords.json" in script


# ---- the `local` profile ---------------------------------------------------------------------


def test_local_profile_is_what_the_default_connections_point_at(services):
    config = __import__("json").loads((ROOT / "include" / "prism.config.json").read_text())
    env = environment(services["airflow-worker"])
    lf = command(services["localflare"])
    assert services["localflare"]["entrypoint"] == ["python", "-m", "localflare"] and lf[0] == "serve"
    port = option(lf, "--port")
    assert f"{port}:{port}" in services["localflare"]["ports"]
    assert option(lf, "--seed") == "demo" and option(lf, "--public-url") == f"http://localflare:{port}"

    cloudflare = connection(env["AIRFLOW_CONN_CLOUDFLARE_DEFAULT"])
    assert cloudflare.conn_type == "cloudflare" and cloudflare.password == option(lf, "--api-token")
    assert cloudflare.extra_dejson == {
        "account_id": option(lf, "--account-id"),
        "base_url": f"http://localflare:{port}/client/v4",
    }
    worker = connection(env["AIRFLOW_CONN_PRISM_WORKER"])
    assert (worker.conn_type, worker.host) == ("http", f"http://localflare:{port}/worker")

    s3_port = option(command(services["s3"]), "-p")
    assert services["s3"]["entrypoint"] == ["python", "-m", "moto.server"]
    aws = connection(env["AIRFLOW_CONN_AWS_DEFAULT"])
    assert aws.conn_type == "aws" and aws.extra_dejson["endpoint_url"] == f"http://s3:{s3_port}"
    bucket_script = "\n".join(command(services["local-init"]))
    assert f'endpoint_url="http://s3:{s3_port}"' in bucket_script
    assert f'create_bucket(Bucket="{config["backups"]["bucket"]}")' in bucket_script
    assert services["local-init"]["depends_on"]["s3"]["condition"] == "service_healthy"


def test_the_e2e_suite_runs_the_same_components():
    """tests/e2e starts these components as processes, with the settings this file gives them."""
    text = (ROOT / "scripts" / "e2e_stack.py").read_text()
    for component in ("api-server", "scheduler", "dag-processor", "triggerer"):
        assert f'"{component}": ["{component}"]' in text
    assert re.search(r'"worker":\s*\[\s*"celery",\s*"worker"', text)  # however the formatter wraps it
    for key in (
        "AIRFLOW__CORE__EXECUTOR",
        "AIRFLOW__API_AUTH__JWT_SECRET",
        "AIRFLOW__CELERY__BROKER_URL",
        "AIRFLOW__CELERY__RESULT_BACKEND",
        "AIRFLOW__API__SECRET_KEY",
        "AIRFLOW__CELERY_BROKER_TRANSPORT_OPTIONS__VISIBILITY_TIMEOUT",
    ):
        assert f'"{key}"' in text, key


def test_the_locked_celery_runs_the_celery_executor():
    """The scheduler and the workers of this file import the CeleryExecutor; with the locked versions
    (the image installs requirements.txt constrained by requirements.lock) that import must work."""
    import celery

    try:
        from airflow.providers.celery.executors import celery_executor  # noqa: F401
    except ImportError as exc:
        pytest.fail(
            f"celery {celery.__version__} breaks apache-airflow-providers-celery: {exc}. Pin a celery it "
            "supports in requirements.txt (celery[redis]>=5.5,<5.7) and run `make lock`."
        )
