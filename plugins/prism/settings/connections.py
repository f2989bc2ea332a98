"""The Airflow connections PRISM's tasks use, by id. Every task and hook call names them through these
constants; docs/production-setup.md says what each must hold.

| id | type | holds |
|---|---|---|
| `cloudflare_default` | cloudflare | the API token, the account id, the API base URL |
| `aws_default` | aws | the backups bucket's credentials (S3 or R2) |
| `prism_worker` | http | PRISM's Worker base URL (`/health`, `/metrics`) |
| `prism_slack` | slackwebhook | optional: alerts to Slack |
| `prism_smtp` | smtp | optional: alerts by e-mail (extra `{"to": [...]}`) |
"""

from __future__ import annotations

CLOUDFLARE = "cloudflare_default"
AWS = "aws_default"
WORKER = "prism_worker"
SLACK = "prism_slack"
SMTP = "prism_smtp"


def s3():
    """The backups bucket's S3 client (the amazon provider's S3Hook on `aws_default`). The one place a
    task gets its S3 access. Imported when called: boto3 is slow to import and DAG parsing must stay fast."""
    from airflow.providers.amazon.aws.hooks.s3 import S3Hook  # boto3: too slow for DAG parsing

    return S3Hook(aws_conn_id=AWS)
