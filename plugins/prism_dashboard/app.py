"""The dashboard's FastAPI app, mounted by the Airflow API server at /prism-dashboard.

Every route sits behind Airflow's own authentication: the auth manager's JWT (the UI's `_token`
cookie, or a Bearer token) must name a user allowed to read the XComs and task instances of every
PRISM DAG (each DAG whose data the page can show). What the request names (a `dag_id` query
parameter, a report key) plays no part in that decision. Without a token the answer is 401; with an
invalid token, or a user lacking any one PRISM DAG, it is 403, and carries no data.

Every answer carries `X-Content-Type-Options: nosniff` and a Content-Security-Policy that allows no
script, so even a value that slipped through escaping could not run on Airflow's origin.
"""

from __future__ import annotations

from datetime import datetime, timezone

from airflow.utils.session import create_session
from fastapi import Depends, FastAPI, HTTPException, Request
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import HTMLResponse, JSONResponse, Response
from sqlalchemy import select

from prism.settings.constants import DAG_ID_PREFIX, DASHBOARD_URL_PREFIX, REPORTS_PREFIX
from prism_dashboard.data import HEALTH_DAG, dashboard
from prism_dashboard.page import render
from prism_dashboard.report_files import read_report

URL_PREFIX = DASHBOARD_URL_PREFIX
REPORTS = REPORTS_PREFIX + "/"
DAG_PREFIX = DAG_ID_PREFIX
# The page: inline styles and SVG only; framed by the Airflow UI (same origin) and nothing else.
PAGE_CSP = (
    "default-src 'none'; style-src 'unsafe-inline'; img-src data:; base-uri 'none'; form-action 'none'; "
    "frame-ancestors 'self'"
)
# A report opened from a link: a sandboxed document (its own opaque origin) with no scripts at all.
REPORT_CSP = (
    "default-src 'none'; style-src 'unsafe-inline'; img-src data:; base-uri 'none'; form-action 'none'; sandbox"
)
# What a report object may be served as; anything else is a download, never rendered.
REPORT_TYPES = {
    ".html": "text/html",
    ".md": "text/plain",
    ".txt": "text/plain",
    ".json": "application/json",
    ".csv": "text/csv",
}


def prism_dag_ids(session) -> list[str]:
    """The DAGs whose data the dashboard shows: every DAG whose id starts with `prism_`, and the
    health monitor even before it is parsed (its task instances are the health history)."""
    # The core ORM (~0.5 s) stays out of plugin load: every task process imports this plugin too.
    from airflow.models.dag import DagModel

    known = session.scalars(
        select(DagModel.dag_id).where(DagModel.dag_id.startswith(DAG_PREFIX, autoescape=True))
    ).all()
    return sorted({*known, HEALTH_DAG})


async def require_reader(request: Request) -> list[str]:
    """Airflow's own checks, imported when a request comes (every process that loads plugins imports
    this module; only the API server serves it): the user from the Bearer token or the `_token`
    cookie (security.get_user), who must be allowed to read every PRISM DAG's XComs and task
    instances, asked of the auth manager in one batch. Returns those DAG ids (the only ones whose
    data is read) and keeps them on request.state."""
    # Lazy (see above): the API server's modules (~2 s) and the ORM are only wanted where a request is served.
    from airflow.api_fastapi.app import get_auth_manager
    from airflow.api_fastapi.auth.managers.models.resource_details import DagAccessEntity, DagDetails
    from airflow.api_fastapi.core_api.security import bearer_scheme, get_user
    from airflow.models.dag import DagModel

    user = await get_user(request, None, await bearer_scheme(request))

    def allowed() -> tuple[bool, list[str]]:  # the DB and the auth manager are synchronous: off the event loop
        with create_session() as session:
            dag_ids = prism_dag_ids(session)
            teams = DagModel.get_dag_id_to_team_name_mapping(dag_ids, session=session)
        checks = [
            {"method": "GET", "access_entity": entity, "details": DagDetails(id=dag_id, team_name=teams.get(dag_id))}
            for dag_id in dag_ids
            for entity in (DagAccessEntity.XCOM, DagAccessEntity.TASK_INSTANCE)
        ]
        return get_auth_manager().batch_is_authorized_dag(checks, user=user), dag_ids

    ok, dag_ids = await run_in_threadpool(allowed)
    if not ok:
        raise HTTPException(403, "Forbidden")
    request.state.prism_dag_ids = dag_ids
    return dag_ids


def _headers(csp: str) -> dict[str, str]:
    return {
        "Cache-Control": "no-store",
        "X-Content-Type-Options": "nosniff",
        "Content-Security-Policy": csp,
        "Referrer-Policy": "no-referrer",
    }


def create_app() -> FastAPI:
    app = FastAPI(
        title="PRISM dashboard", docs_url=None, redoc_url=None, openapi_url=None, dependencies=[Depends(require_reader)]
    )

    @app.middleware("http")
    async def safe_headers(request: Request, call_next):
        # Refusals and errors too: no answer of this app may be sniffed into HTML or run a script.
        response = await call_next(request)
        for name, value in _headers(PAGE_CSP).items():
            response.headers.setdefault(name, value)
        return response

    @app.get("/", response_class=HTMLResponse)
    def page(request: Request) -> HTMLResponse:
        return HTMLResponse(render(_data(request.state.prism_dag_ids)), headers=_headers(PAGE_CSP))

    @app.get("/data.json")
    def data(request: Request) -> JSONResponse:
        return JSONResponse(_data(request.state.prism_dag_ids), headers=_headers(PAGE_CSP))

    @app.get("/reports/{key:path}")
    def report(key: str) -> Response:
        """A report from the bucket (reports/ only), as the task published it."""
        full = REPORTS + key if not key.startswith(REPORTS) else key
        if ".." in full.split("/"):
            raise HTTPException(400, "bad report key")
        body = read_report(full)
        if body is None:
            raise HTTPException(404, f"no report {full}")
        kind = REPORT_TYPES.get("." + full.rsplit(".", 1)[-1].lower()) if "." in full.rsplit("/", 1)[-1] else None
        headers = _headers(REPORT_CSP)
        if kind is None:  # not a report format: offered as a file, never rendered by the browser
            headers["Content-Disposition"] = "attachment"
            return Response(body, media_type="application/octet-stream", headers=headers)
        return Response(body, media_type=f"{kind}; charset=utf-8", headers=headers)

    return app


def _data(dag_ids: list[str]) -> dict:
    with create_session() as session:
        return _jsonable(dashboard(session, datetime.now(timezone.utc), dag_ids=dag_ids))


def _jsonable(value):
    if isinstance(value, dict):
        return {k: _jsonable(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_jsonable(v) for v in value]
    if isinstance(value, datetime):
        return value.isoformat()
    return value
