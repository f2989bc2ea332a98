"""The `cloudflare` connection type: what Airflow's providers manager reads (no hook code lives here)."""

# The hook is imported only when a connection is tested or used, in a process whose plugins folder
# is on sys.path (every Airflow component puts it there).
HOOK_CLASS_NAME = "airflow_provider_cloudflare.hooks.cloudflare.CloudflareBaseHook"


def get_provider_info() -> dict:
    return {
        "package-name": "airflow-provider-cloudflare",
        "name": "Cloudflare",
        "description": "A `cloudflare` connection type: API token, account id and API base URL.",
        "versions": ["2.0.0"],
        "connection-types": [
            {
                "connection-type": "cloudflare",
                "hook-class-name": HOOK_CLASS_NAME,
                "hook-name": "Cloudflare",
                "ui-field-behaviour": {
                    "hidden-fields": ["host", "schema", "login", "port"],
                    "relabeling": {"password": "API token"},
                    "placeholders": {"password": "a Cloudflare API token (user or account token)"},
                },
                "conn-fields": {
                    "account_id": {
                        "label": "Account ID",
                        "description": "The Cloudflare account id (32 hex digits), from the dashboard's URL.",
                        "schema": {"type": ["string", "null"], "pattern": "^[0-9a-fA-F]{32}$"},
                    },
                    "base_url": {
                        "label": "API base URL",
                        "description": "Empty for Cloudflare's API (https://api.cloudflare.com/client/v4).",
                        "schema": {"type": ["string", "null"], "format": "uri"},
                    },
                },
            }
        ],
    }
