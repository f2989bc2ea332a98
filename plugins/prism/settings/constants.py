"""Names PRISM's DAGs, the dashboard and the reports share. The dashboard plugin imports them from here."""

from __future__ import annotations

# Every PRISM DAG id starts with this (prism_dag() tags them; the dashboard lists them for its access check).
DAG_ID_PREFIX = "prism_"
# XCom keys the DAGs record for the dashboard: prism_dashboard_<kind>.
DASHBOARD_XCOM_PREFIX = "prism_dashboard_"
# Where the dashboard is mounted in the Airflow API server.
DASHBOARD_URL_PREFIX = "/prism-dashboard"
# Reports live under reports/<dag_id>/<period>/ in the backups bucket.
REPORTS_PREFIX = "reports"
# The kinds of backup set (backups/sets.py): two on a schedule, one taken before a recovery.
SET_CADENCES = ("daily", "monthly", "safety")
