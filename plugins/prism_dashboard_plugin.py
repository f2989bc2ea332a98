"""The PRISM dashboard as an Airflow plugin: a FastAPI app at /prism-dashboard (behind Airflow's own
login) and a "PRISM Dashboard" entry in the UI's navigation that shows it inside the UI.

The logic lives in the package prism_dashboard (listed in .airflowignore, imported as a package).
"""

from __future__ import annotations

from airflow.plugins_manager import AirflowPlugin

from prism_dashboard.app import URL_PREFIX, create_app


class PrismDashboardPlugin(AirflowPlugin):
    name = "prism_dashboard"
    fastapi_apps = [{"app": create_app(), "url_prefix": URL_PREFIX, "name": "PRISM dashboard"}]
    external_views = [
        {
            "name": "PRISM Dashboard",
            "href": f"{URL_PREFIX}/",
            "url_route": "prism-dashboard",  # shown inside the UI at /plugin/prism-dashboard
            "destination": "nav",
            "nav_top_level": True,
        }
    ]
