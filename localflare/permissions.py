"""Restricted API tokens: which Cloudflare permission group each route needs.

`--token NAME=PERM,PERM,...` gives the bearer token NAME exactly those permission groups (named as
in Cloudflare's token editor); `--token NAME=all` gives every one. The server's own token (`--api-token`)
always holds every permission. A request the token lacks the group for gets Cloudflare's answer for
it: HTTP 403 with code 10000 "Authentication error" (GraphQL: `not authorized for that account`).

Each route needs one group, and an Edit group does not stand in for its Read group here: a test can
then take away exactly one permission. (On Cloudflare, Edit groups generally include reading too.)
"""

from __future__ import annotations

PERMISSIONS = (
    "D1 Read",
    "D1 Edit",
    "Vectorize Read",
    "Vectorize Edit",
    "Workers KV Storage Read",
    "Workers KV Storage Edit",
    "Workers Scripts Read",
    "Workers AI Read",
    "Account Analytics Read",
    "Account Settings Read",
    "User Details Read",
    "Memberships Read",
)
ALL = frozenset(PERMISSIONS)


def parse_token(spec: str) -> tuple[str, frozenset]:
    """`NAME=PERM,PERM` -> (NAME, {PERM, ...}); ValueError on an unknown group, so a typo cannot
    silently make a token weaker than meant."""
    name, sep, perms = spec.partition("=")
    name = name.strip()
    if not sep or not name:
        raise ValueError(f"--token wants NAME=PERMISSIONS, got {spec!r}")
    if perms.strip().lower() in ("all", "*"):
        return name, ALL
    wanted = {p.strip() for p in perms.split(",") if p.strip()}
    unknown = sorted(wanted - ALL)
    if unknown:
        raise ValueError(f"unknown permission group(s) {unknown}; known: {list(PERMISSIONS)}")
    return name, frozenset(wanted)


def required(method: str, template: str) -> str | None:
    """The permission group METHOD template needs, or None (token verify needs only a valid token)."""
    if template.endswith("/tokens/verify"):
        return None
    if template == "/graphql":
        return "Account Analytics Read"
    if template == "/accounts/{account_id}":
        return "Account Settings Read"
    if template == "/user":
        return "User Details Read"
    if template == "/memberships":
        return "Memberships Read"
    if "/ai/run/" in template:
        return "Workers AI Read"
    if "/workers/scripts/" in template:
        return "Workers Scripts Read"
    if "/d1/database" in template:
        # Any SQL (query, raw), export and import need Edit: the API cannot tell a read-only statement.
        return "D1 Read" if method == "GET" else "D1 Edit"
    if "/vectorize/" in template:
        reads = template.endswith(("/query", "/get_by_ids"))
        return "Vectorize Read" if method == "GET" or reads else "Vectorize Edit"
    if "/storage/kv/" in template:
        reads = template.endswith("/bulk/get")
        return "Workers KV Storage Read" if method == "GET" or reads else "Workers KV Storage Edit"
    return None
