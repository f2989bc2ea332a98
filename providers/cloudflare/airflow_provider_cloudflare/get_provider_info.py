"""What Airflow's providers manager reads about this distribution: the `cloudflare` connection type and its
form, and the hook, operator, transfer and trigger modules."""

# The providers manager reads this without importing the hooks; it imports the hook class only when a
# connection is tested or used.
HOOK_CLASS_NAME = "airflow_provider_cloudflare.hooks.cloudflare.CloudflareBaseHook"
PACKAGE = "airflow_provider_cloudflare"
S3 = "Amazon Simple Storage Service (S3)"  # the amazon provider's integration name

INTEGRATIONS = {
    "Cloudflare": "https://developers.cloudflare.com/api/",
    "Cloudflare D1": "https://developers.cloudflare.com/d1/",
    "Cloudflare Vectorize": "https://developers.cloudflare.com/vectorize/",
    "Cloudflare Workers KV": "https://developers.cloudflare.com/kv/",
    "Cloudflare Workers AI": "https://developers.cloudflare.com/workers-ai/",
    "Cloudflare GraphQL Analytics": "https://developers.cloudflare.com/analytics/graphql-api/",
}
HOOKS = {
    "Cloudflare": "hooks.cloudflare",
    "Cloudflare D1": "hooks.d1",
    "Cloudflare Vectorize": "hooks.vectorize",
    "Cloudflare Workers KV": "hooks.kv",
    "Cloudflare Workers AI": "hooks.ai",
    "Cloudflare GraphQL Analytics": "hooks.analytics",
}


def get_provider_info() -> dict:
    return {
        "package-name": "airflow-provider-cloudflare",
        "name": "Cloudflare",
        "description": "Cloudflare D1, Vectorize, Workers KV, Workers AI and GraphQL analytics: hooks, operators, "
        "backups to S3, triggers, and a `cloudflare` connection type (API token, account id, API base URL).",
        "versions": ["2.0.0"],
        "integrations": [
            {"integration-name": name, "external-doc-url": url, "tags": ["service"]}
            for name, url in INTEGRATIONS.items()
        ],
        "hooks": [
            {"integration-name": name, "python-modules": [f"{PACKAGE}.{module}"]} for name, module in HOOKS.items()
        ],
        "operators": [{"integration-name": "Cloudflare D1", "python-modules": [f"{PACKAGE}.operators.d1"]}],
        "transfers": [
            {
                "source-integration-name": source,
                "target-integration-name": S3,
                "python-module": f"{PACKAGE}.transfers.cloudflare_to_s3",
            }
            for source in ("Cloudflare D1", "Cloudflare Vectorize", "Cloudflare Workers KV")
        ],
        "triggers": [{"integration-name": "Cloudflare", "python-modules": [f"{PACKAGE}.triggers.cloudflare"]}],
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
