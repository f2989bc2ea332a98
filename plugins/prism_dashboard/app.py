"""The dashboard's FastAPI app, mounted by the Airflow API server at /prism-dashboard.

Every route sits behind Airflow's own authentication: the auth manager's JWT (the UI's `_token`
cookie, or a Bearer token) must name a user allowed to read the DAGs' XComs. Without one the answer
is 401 (no token) or 403 (an invalid token, or a user without that permission) and carries no data.
"""

from __future__ import annotations

import mimetypes
from datetime import datetime, timezone

from fastapi import Depends, FastAPI, HTTPException, Request
from fastapi.responses import HTMLResponse, JSONResponse, Response

URL_PREFIX = "/prism-dashboard"
REPORTS = "reports/"


async def require_reader(request: Request) -> None:
    """Airflow's own checks, imported when a request comes (every process that loads plugins imports
    this module; only the API server serves it): the user from the Bearer token or the `_token`
    cookie (security.get_user), who must be allowed to read every DAG's XComs (what the page shows)."""
    from airflow.api_fastapi.auth.managers.models.resource_details import DagAccessEntity
    from airflow.api_fastapi.core_api.security import bearer_scheme, get_user, requires_access_dag

    user = await get_user(request, None, await bearer_scheme(request))
    requires_access_dag("GET", DagAccessEntity.XCOM)(request, user)


def create_app() -> FastAPI:
    app = FastAPI(title="PRISM dashboard", docs_url=None, redoc_url=None, openapi_url=None,
                  dependencies=[Depends(require_reader)])

    @app.get("/", response_class=HTMLResponse)
    def page() -> HTMLResponse:
        from prism_dashboard.page import render

        return HTMLResponse(render(_data()), headers={"Cache-Control": "no-store"})

    @app.get("/data.json")
    def data() -> JSONResponse:
        return JSONResponse(_data(), headers={"Cache-Control": "no-store"})

    @app.get("/reports/{key:path}")
    def report(key: str) -> Response:
        """A report from the bucket (reports/ only), as the task published it."""
        from prism_dashboard.report_files import read_report

        full = REPORTS + key if not key.startswith(REPORTS) else key
        if ".." in full.split("/"):
            raise HTTPException(400, "bad report key")
        body = read_report(full)
        if body is None:
            raise HTTPException(404, f"no report {full}")
        kind = "text/html" if full.endswith(".html") else "text/plain" if full.endswith(".md") else \
            (mimetypes.guess_type(full)[0] or "application/octet-stream")
        return Response(body, media_type=f"{kind}; charset=utf-8", headers={"Cache-Control": "no-store"})

    return app


def _data() -> dict:
    from airflow.utils.session import create_session

    from prism_dashboard.data import dashboard

    with create_session() as session:
        return _jsonable(dashboard(session, datetime.now(timezone.utc)))


def _jsonable(value):
    if isinstance(value, dict):
        return {k: _jsonable(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_jsonable(v) for v in value]
    if isinstance(value, datetime):
        return value.isoformat()
    return value
