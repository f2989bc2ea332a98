"""Reports read back from the bucket for the dashboard's links (the only reads of the bucket the
dashboard makes, and only when a person opens a report)."""

from __future__ import annotations

from prism.settings.config import load_config


def read_report(key: str, aws_conn_id: str = "aws_default") -> bytes | None:
    """The object at `key` in the config's bucket, None when there is none."""
    # Imported when a report is opened: S3Hook pulls boto3 (~0.3 s) into every process that loads plugins.
    from airflow.providers.amazon.aws.hooks.s3 import S3Hook

    bucket = load_config(_variable())["backups"]["bucket"]
    s3 = S3Hook(aws_conn_id=aws_conn_id)
    if not s3.check_for_key(key, bucket):
        return None
    return s3.get_key(key, bucket).get()["Body"].read()


def _variable() -> str | None:
    """The `prism_config` Variable as the API server sees it (env or metadata DB), None without one."""
    # The core ORM's Variable (read in the API server), kept out of plugin load: every task process loads it.
    from airflow.models.variable import Variable

    return Variable.get("prism_config", default_var=None)
