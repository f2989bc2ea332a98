"""Fixtures for DAG tests. Shared helpers live in dagtest.py next to this file (put on sys.path here:
with importlib mode, test modules cannot import a conftest)."""

from __future__ import annotations

import json
import sys
import uuid
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parent))


@pytest.fixture
def configure(monkeypatch):
    """configure(override): the `prism_config` Variable, through its environment variable."""

    def apply(override: dict) -> None:
        monkeypatch.setenv("AIRFLOW_VAR_PRISM_CONFIG", json.dumps(override))

    return apply


@pytest.fixture
def bucket(s3, configure):
    """A bucket of this test's own, set as the config's backups.bucket."""
    name = f"prism-test-{uuid.uuid4().hex[:12]}"
    s3.create_bucket(bucket_name=name)
    configure({"backups": {"bucket": name}})
    return name


@pytest.fixture
def server(lf_fresh, connect):
    """A private demo-seeded localflare, connected, for tests that change Cloudflare data."""
    server = lf_fresh()
    connect(server, budget={"bulk_rps": 0})
    return server


@pytest.fixture(scope="module")
def dr():
    """prism_disaster_recovery as the bundle defines it (retries off)."""
    from dagtest import load_dag

    return load_dag("prism_disaster_recovery")


@pytest.fixture(scope="module")
def daily():
    """prism_daily as the bundle defines it (retries off)."""
    from dagtest import load_dag

    return load_dag("prism_daily")
