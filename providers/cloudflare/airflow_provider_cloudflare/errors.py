"""Typed Cloudflare errors: each carries the HTTP status, Cloudflare's error code and its message."""

from __future__ import annotations


class CloudflareError(Exception):
    """An error answer from Cloudflare (or a transport failure talking to it)."""

    def __init__(
        self, message: str, *, status: int | None = None, code: int | None = None, method: str = "", path: str = ""
    ):
        self.status = status
        self.code = code
        self.message = message
        self.method = method
        self.path = path
        where = f"{method} {path}: " if method else ""
        codes = ", ".join(str(x) for x in (f"HTTP {status}" if status else None, f"code {code}" if code else None) if x)
        super().__init__(f"{where}{message}" + (f" ({codes})" if codes else ""))


class CloudflareAuthError(CloudflareError):
    """The token is wrong, expired or lacks a permission (401/403, codes 10000, 9109, 6003, 1000)."""


class CloudflareNotFound(CloudflareError):
    """The database, index, namespace, key or script does not exist."""


class CloudflareRateLimited(CloudflareError):
    """HTTP 429. `retry_after` is in seconds (None when Cloudflare gave no hint)."""

    def __init__(self, message: str, *, retry_after: float | None = None, **kw):
        super().__init__(message, **kw)
        self.retry_after = retry_after


class CloudflareServerError(CloudflareError):
    """HTTP 5xx: Cloudflare failed; the request may or may not have been applied."""


class CloudflareBadRequest(CloudflareError):
    """HTTP 400-class: the request is wrong (invalid SQL is code 7500)."""


class CloudflareTimeout(CloudflareError):
    """A long operation (export, import, mutation) did not finish in time."""


class GraphQLError(CloudflareError):
    """The GraphQL Analytics API answered with `errors` (often with HTTP 200)."""


def for_status(status: int):
    if status in (401, 403):
        return CloudflareAuthError
    if status == 404:
        return CloudflareNotFound
    if status == 429:
        return CloudflareRateLimited
    if status >= 500:
        return CloudflareServerError
    return CloudflareBadRequest
