"""Cloudflare for Apache Airflow 3: hooks, operators, triggers, errors and the account's request budget."""

__version__ = "2.0.0"
