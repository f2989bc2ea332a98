"""A per-DAG auth manager for tests, as FAB or Keycloak behave: a user may read exactly the DAGs
listed in PRISM_TEST_GRANTED_DAGS (comma-separated), nothing else; access to "all DAGs" (no DAG id)
is not granted. Logins and tokens are SimpleAuthManager's. Set it with
AIRFLOW__CORE__AUTH_MANAGER=per_dag_auth.GrantedDagsAuthManager (this folder on sys.path)."""

from __future__ import annotations

import os

from airflow.api_fastapi.auth.managers.simple.simple_auth_manager import SimpleAuthManager


class GrantedDagsAuthManager(SimpleAuthManager):
    asked: list[tuple[str, str | None, str | None]] = []  # (method, entity, dag_id) of every check, for the tests

    def is_authorized_dag(self, *, method, user, access_entity=None, details=None) -> bool:
        dag_id = details.id if details else None
        self.asked.append((method, access_entity.value if access_entity else None, dag_id))
        granted = {d for d in os.environ.get("PRISM_TEST_GRANTED_DAGS", "").split(",") if d}
        return method == "GET" and dag_id is not None and dag_id in granted
