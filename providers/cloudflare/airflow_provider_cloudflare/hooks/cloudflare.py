"""The base Cloudflare hook: connection, sync and async clients, envelope, typed errors, retries, budget,
pagination, and the connection test."""

from __future__ import annotations

import logging
import random
import threading
import time
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager
from email.utils import parsedate_to_datetime
from functools import cached_property
from typing import TYPE_CHECKING, Any

import requests
import tenacity
from airflow.sdk import BaseHook

from airflow_provider_cloudflare import __version__
from airflow_provider_cloudflare.budget import BudgetSettings, RequestBudget, budget_for
from airflow_provider_cloudflare.errors import CloudflareError, CloudflareRateLimited, CloudflareServerError, for_status

if TYPE_CHECKING:
    import httpx

DEFAULT_BASE_URL = "https://api.cloudflare.com/client/v4"
DEFAULT_MAX_IN_FLIGHT = 12
MAX_IN_FLIGHT_CAP = 16
log = logging.getLogger(__name__)


class CloudflareBaseHook(BaseHook):
    """Talks to Cloudflare's REST API with one account's API token, synchronously (requests) or from an
    event loop (httpx, for triggers): both share the connection, the envelope and error handling, the
    retry policy and the account's request budget.

    Connection ``cloudflare_default`` (type ``cloudflare``; ``generic`` still works): the password is
    the API token; the extra holds ``account_id`` and optionally ``base_url`` (default: the real API),
    ``connect_timeout``, ``read_timeout``, ``max_in_flight``, and ``budget`` (budget.BudgetSettings, such as
    ``{"reserve_share": 0.05}``).

    :param cloudflare_conn_id: the connection to use.
    :param priority: ``"bulk"`` for heavy work (spends the budget down to the reserve) or ``"monitor"``
        for health checks (may use the reserve).
    :param max_attempts: attempts per request, the first included.
    :param retry_after_cap: give up at once when Cloudflare asks to wait longer than this (s).
    """

    conn_name_attr = "cloudflare_conn_id"
    default_conn_name = "cloudflare_default"
    conn_type = "cloudflare"
    hook_name = "Cloudflare"

    def __init__(
        self,
        cloudflare_conn_id: str = default_conn_name,
        *,
        priority: str = "bulk",
        max_attempts: int = 5,
        retry_after_cap: float = 60.0,
        **kwargs,
    ):
        super().__init__(**kwargs)
        self.cloudflare_conn_id = cloudflare_conn_id
        self.priority = priority
        self.max_attempts = max_attempts
        self.retry_after_cap = retry_after_cap
        self._aclient: httpx.AsyncClient | None = None

    def __repr__(self) -> str:
        return f"<{type(self).__name__} conn={self.cloudflare_conn_id!r} priority={self.priority!r}>"

    # ---- connection -----------------------------------------------------------------------
    @cached_property
    def _config(self) -> dict:
        return self._config_from(self.get_connection(self.cloudflare_conn_id))

    async def aconfig(self) -> dict:
        """The connection's settings, read without blocking the event loop (the triggerer cannot wait
        on a synchronous connection lookup)."""
        if "_config" not in self.__dict__:
            self.__dict__["_config"] = self._config_from(await self.aget_connection(self.cloudflare_conn_id))
        return self._config

    def _config_from(self, conn) -> dict:
        extra = _extra_fields(conn.extra_dejson)
        if not conn.password:
            raise CloudflareError(f"connection {self.cloudflare_conn_id!r} has no API token in its password field")
        if not extra.get("account_id"):
            raise CloudflareError(f"connection {self.cloudflare_conn_id!r} has no account_id in its extra")
        _mask(conn.password)
        return {
            "token": conn.password,
            "account_id": extra["account_id"],
            "base_url": (extra.get("base_url") or DEFAULT_BASE_URL).rstrip("/"),
            "timeout": (float(extra.get("connect_timeout", 10)), float(extra.get("read_timeout", 60))),
            "budget": _budget_settings(extra.get("budget"), self.cloudflare_conn_id),
            "max_in_flight": _max_in_flight(extra.get("max_in_flight", DEFAULT_MAX_IN_FLIGHT)),
        }

    @property
    def account_id(self) -> str:
        return self._config["account_id"]

    @property
    def base_url(self) -> str:
        return self._config["base_url"]

    @property
    def max_in_flight(self) -> int:
        """How many bulk reads may wait on Cloudflare at once (connection extra ``max_in_flight``): at
        100-500 ms a call, one at a time cannot reach the account's 4 requests a second."""
        return self._config["max_in_flight"]

    @cached_property
    def budget(self) -> RequestBudget:
        return budget_for(self.account_id, self._config["budget"])

    def get_conn(self) -> requests.Session:
        return self._session

    @property
    def _session(self) -> requests.Session:
        """One session per thread: requests does not promise that a Session is thread-safe, and bulk
        reads run several calls at once from a thread pool."""
        session = getattr(self._sessions, "session", None)
        if session is None:
            session = self._sessions.session = requests.Session()
            session.headers.update(_headers(self._config))
        return session

    @cached_property
    def _sessions(self) -> threading.local:
        return threading.local()

    def account_path(self, suffix: str) -> str:
        return f"/accounts/{self.account_id}{suffix}"

    # ---- requests -------------------------------------------------------------------------
    def request(
        self,
        method: str,
        path: str,
        *,
        idempotent: bool,
        params: dict | None = None,
        json_body: Any = None,
        data: Any = None,
        files: dict | None = None,
        headers: dict | None = None,
        expect_json: bool = True,
        stream: bool = False,
    ) -> requests.Response:
        """Send one API request with the budget, retries and error mapping.

        :param idempotent: whether sending it twice is harmless. A 429 (never applied) is always
            retried; a 5xx or a timeout only when the request is idempotent, because a write that
            may have been applied must not be sent blindly again.
        :param expect_json: parse Cloudflare's envelope and raise on ``success: false``.
        """
        url = f"{self.base_url}{path}"

        def attempt() -> requests.Response:
            ticket = self.budget.acquire(self.priority)
            try:
                resp = self._session.request(
                    method,
                    url,
                    params=params,
                    json=json_body,
                    data=data,
                    files=files,
                    headers=headers,
                    timeout=self._config["timeout"],
                    stream=stream,
                )
            except requests.ConnectTimeout as exc:
                self.budget.cancel(ticket)
                raise _Transport(exc, applied=False) from None
            except requests.ConnectionError as exc:
                self.budget.cancel(ticket)
                raise _Transport(exc, applied="NewConnectionError" not in str(exc)) from None
            except requests.Timeout as exc:
                self.budget.cancel(ticket)
                raise _Transport(exc, applied=True) from None
            return self._checked(resp, method, path, expect_json, ticket)

        try:
            return tenacity.Retrying(**self._retry_policy(method, path, idempotent))(attempt)
        except _Transport as exc:
            raise exc.error(method, path) from None

    async def arequest(
        self,
        method: str,
        path: str,
        *,
        idempotent: bool,
        params: dict | None = None,
        json_body: Any = None,
        data: Any = None,
        headers: dict | None = None,
        expect_json: bool = True,
    ) -> httpx.Response:
        """`request` from an event loop: the same budget (waited for with asyncio), retries and errors.

        Uses the client of an enclosing ``async with hook.async_client()``, or one of its own.
        """
        if self._aclient is None:
            async with self.async_client():
                return await self.arequest(
                    method,
                    path,
                    idempotent=idempotent,
                    params=params,
                    json_body=json_body,
                    data=data,
                    headers=headers,
                    expect_json=expect_json,
                )
        import httpx  # the triggerer's dependency; workers parsing DAGs never need it

        client = self._aclient
        # httpx takes raw bodies as `content` and only form fields as `data`.
        body = {"content": data} if isinstance(data, (bytes, str)) else {"data": data}

        async def attempt() -> httpx.Response:
            ticket = await self.budget.aacquire(self.priority)
            try:
                resp = await client.request(
                    method, f"{self.base_url}{path}", params=params, json=json_body, headers=headers, **body
                )
            except (httpx.ConnectError, httpx.ConnectTimeout, httpx.PoolTimeout) as exc:
                self.budget.cancel(ticket)
                raise _Transport(exc, applied=False) from None
            except httpx.TransportError as exc:
                self.budget.cancel(ticket)
                raise _Transport(exc, applied=True) from None
            return self._checked(resp, method, path, expect_json, ticket)

        try:
            return await tenacity.AsyncRetrying(**self._retry_policy(method, path, idempotent))(attempt)
        except _Transport as exc:
            raise exc.error(method, path) from None

    @asynccontextmanager
    async def async_client(self) -> AsyncIterator[httpx.AsyncClient]:
        """An ``httpx.AsyncClient`` for this connection (token, timeouts); while the block runs, the
        hook's async methods (``arequest``, ``acall``, ``aget`` and the services' ``a*``) share it."""
        import httpx  # the triggerer's dependency; workers parsing DAGs never need it

        config = await self.aconfig()
        connect, read = config["timeout"]
        async with httpx.AsyncClient(headers=_headers(config), timeout=httpx.Timeout(read, connect=connect)) as client:
            outer, self._aclient = self._aclient, client
            try:
                yield client
            finally:
                self._aclient = outer

    def _checked(self, resp, method: str, path: str, expect_json: bool, ticket: int | None = None):
        """Record the budget headers, then raise a typed error for a failed answer (requests or httpx)."""
        self.budget.observe(resp.headers, resp.status_code, ticket)
        if resp.status_code >= 400 or expect_json:
            _raise_for_envelope(resp, method, path, expect_json)
        return resp

    def _retry_policy(self, method: str, path: str, idempotent: bool) -> dict:
        """tenacity's arguments, the same for the sync and the async client."""
        return {
            "stop": tenacity.stop_after_attempt(self.max_attempts),
            "retry": tenacity.retry_if_exception(lambda exc: self._retryable(exc, idempotent)),
            "wait": self._wait,
            "before_sleep": lambda state: log.warning(
                "Cloudflare %s %s failed (%s); retry %d of %d",
                method,
                path,
                state.outcome.exception(),
                state.attempt_number,
                self.max_attempts - 1,
            ),
            "reraise": True,
        }

    def _retryable(self, exc: BaseException, idempotent: bool) -> bool:
        if isinstance(exc, CloudflareRateLimited):
            return exc.retry_after is None or exc.retry_after <= self.retry_after_cap
        if isinstance(exc, _Transport):
            return idempotent or not exc.applied
        return isinstance(exc, CloudflareServerError) and idempotent

    def _wait(self, state: tenacity.RetryCallState) -> float:
        exc = state.outcome.exception()
        if isinstance(exc, CloudflareRateLimited) and exc.retry_after is not None:
            return exc.retry_after + random.uniform(0, 1)  # jitter so parallel clients do not return together
        return min(30.0, 0.5 * 2 ** (state.attempt_number - 1)) * random.uniform(0.5, 1.0)

    def call(self, method: str, path: str, *, idempotent: bool, **kwargs) -> Any:
        """A request whose envelope's `result` is returned."""
        return self.request(method, path, idempotent=idempotent, **kwargs).json()["result"]

    def get(self, path: str, params: dict | None = None) -> Any:
        return self.call("GET", path, idempotent=True, params=params)

    async def acall(self, method: str, path: str, *, idempotent: bool, **kwargs) -> Any:
        """`call` from an event loop."""
        return (await self.arequest(method, path, idempotent=idempotent, **kwargs)).json()["result"]

    async def aget(self, path: str, params: dict | None = None) -> Any:
        return await self.acall("GET", path, idempotent=True, params=params)

    # ---- pagination -----------------------------------------------------------------------
    def paginate_pages(self, path: str, params: dict | None = None, per_page: int = 100) -> Iterator[dict]:
        """page/per_page lists: ask page+1 until a short or empty page."""
        page = 1
        while True:
            body = self.request(
                "GET", path, idempotent=True, params={**(params or {}), "page": page, "per_page": per_page}
            ).json()
            items = body["result"] or []
            yield from items
            info = body.get("result_info") or {}
            total = info.get("total_count")
            if len(items) < per_page or (total is not None and page * per_page >= total):
                return
            page += 1

    def paginate_info_cursor(self, path: str, params: dict | None = None) -> Iterator[dict]:
        """Cursor in result_info (KV keys): follow it until it is empty."""
        cursor = None
        while True:
            query = {**(params or {}), **({"cursor": cursor} if cursor else {})}
            body = self.request("GET", path, idempotent=True, params=query).json()
            yield from body["result"] or []
            cursor = (body.get("result_info") or {}).get("cursor")
            if not cursor:
                return

    def paginate_result_cursor(
        self,
        path: str,
        items_key: str,
        params: dict | None = None,
        cursor_key: str = "nextCursor",
        more_key: str = "isTruncated",
    ) -> Iterator[dict]:
        """Cursor inside result (Vectorize list): follow it while the result says there is more."""
        cursor = None
        while True:
            query = {**(params or {}), **({"cursor": cursor} if cursor else {})}
            result = self.get(path, query)
            yield from result.get(items_key) or []
            cursor = result.get(cursor_key)
            if not result.get(more_key) or not cursor:
                return

    # ---- connection test ------------------------------------------------------------------
    def verify_token(self) -> tuple[bool, str]:
        """(active?, detail). A user token verifies at /user/tokens/verify; an account-owned token only
        at /accounts/{id}/tokens/verify, which then also proves it belongs to that account."""
        try:
            status, kind = self.get("/user/tokens/verify")["status"], "user token"
        except CloudflareError as exc:
            if exc.status not in (400, 401, 403):
                return False, f"token verify failed: {exc}"
            try:
                status, kind = self.get(self.account_path("/tokens/verify"))["status"], "account token"
            except CloudflareError as exc2:
                return False, f"the API token is not valid (user and account token verify both refused it: {exc2})"
        if status != "active":
            return False, f"the API token ({kind}) is {status}"
        return True, f"{kind} active"

    def verify_account(self) -> tuple[bool, str]:
        """(reachable?, detail) for the connection's account id: GET /accounts/{id}, which needs Account
        Settings Read. Without that permission (code 10000), any list the token may read in the account
        proves the id as well; code 9109 means the token may not use that account at all."""
        wrong = (
            f"account {self.account_id} is not reachable with this token (a wrong account id, or a token "
            "not scoped to it)"
        )
        try:
            name = self.get(self.account_path("")).get("name") or "?"
            return True, f"account {self.account_id} ({name!r}) reachable"
        except CloudflareError as exc:
            if exc.status not in (401, 403) or exc.code == 9109:
                return False, f"{wrong}: {exc}"
            first = exc
        for suffix, permission in (
            ("/d1/database", "D1 Read"),
            ("/storage/kv/namespaces", "Workers KV Storage Read"),
            ("/vectorize/v2/indexes", "Vectorize Read"),
        ):
            try:
                self.request("GET", self.account_path(suffix), idempotent=True, params={"per_page": 10})
                return True, (
                    f"account {self.account_id} reachable (proven with {permission}; the token cannot read "
                    "the account's details without Account Settings Read)"
                )
            except CloudflareError as exc:
                if exc.code == 9109:
                    return False, f"{wrong}: {exc}"
        return False, f"{wrong}: {first}"

    def test_connection(self) -> tuple[bool, str]:
        """Verify the token (user or account token) and the account id; what `airflow connections test` runs."""
        try:
            ok, token_detail = self.verify_token()
            if not ok:
                return False, token_detail
            ok, account_detail = self.verify_account()
            return ok, f"{token_detail}; {account_detail}" if ok else account_detail
        except CloudflareError as exc:
            return False, str(exc)


def _budget_settings(value, conn_id: str) -> BudgetSettings:
    try:
        return BudgetSettings.from_extra(value)
    except (TypeError, ValueError) as exc:
        raise CloudflareError(f"connection {conn_id!r}: {exc}") from None


def _max_in_flight(value) -> int:
    try:
        n = int(value)
    except (TypeError, ValueError):
        n = 0
    if not 1 <= n <= MAX_IN_FLIGHT_CAP:
        raise CloudflareError(f"max_in_flight must be a whole number from 1 to {MAX_IN_FLIGHT_CAP}, not {value!r}")
    return n


def _extra_fields(extra: dict) -> dict:
    """The extra with form-style keys (`extra__cloudflare__account_id`, as older Airflow forms saved them)
    read as plain ones; a plain key wins."""
    out = dict(extra)
    for key, value in extra.items():
        for prefix in ("extra__cloudflare__", "extra__generic__"):
            if key.startswith(prefix) and value not in (None, "") and not out.get(key[len(prefix) :]):
                out[key[len(prefix) :]] = value
    return out


def _headers(config: dict) -> dict:
    return {
        "Authorization": f"Bearer {config['token']}",
        "User-Agent": f"airflow-provider-cloudflare/{__version__}",
    }


class _Transport(Exception):
    """A connection failure or timeout; `applied` tells whether the request may have reached Cloudflare."""

    def __init__(self, cause: Exception, applied: bool):
        super().__init__(type(cause).__name__)
        self.cause = cause
        self.applied = applied

    def error(self, method: str, path: str) -> CloudflareError:
        return CloudflareError(f"could not reach Cloudflare: {type(self.cause).__name__}", method=method, path=path)


def _retry_after(resp) -> float | None:
    value = resp.headers.get("retry-after")
    if value is None:
        return None
    try:
        return max(0.0, float(value))
    except ValueError:
        try:
            return max(0.0, parsedate_to_datetime(value).timestamp() - time.time())
        except (TypeError, ValueError):
            return None


def _raise_for_envelope(resp, method: str, path: str, expect_json: bool) -> None:
    """Raise a typed error for an error status, or for HTTP 200 with `success: false` (a requests or an
    httpx response: both offer status_code, headers, json() and text)."""
    body = None
    if expect_json or "json" in resp.headers.get("content-type", ""):
        try:
            body = resp.json()
        except ValueError:
            body = None
    if resp.status_code < 400:
        if not expect_json:
            return
        if not isinstance(body, dict):
            raise CloudflareError(
                f"expected a JSON envelope, got {resp.headers.get('content-type')!r}",
                status=resp.status_code,
                method=method,
                path=path,
            )
        if body.get("success") is not False:
            return
    code, message = None, f"HTTP {resp.status_code}"
    if isinstance(body, dict) and body.get("errors"):
        first = body["errors"][0]
        code, message = first.get("code"), first.get("message", message)
        if len(body["errors"]) > 1:
            message += "; " + "; ".join(e.get("message", "") for e in body["errors"][1:])
    elif body is None:
        message = (resp.text or message)[:300]
    status = resp.status_code if resp.status_code >= 400 else 400
    cls = for_status(status)
    kwargs = {"status": resp.status_code, "code": code, "method": method, "path": path}
    if cls is CloudflareRateLimited:
        raise CloudflareRateLimited(message, retry_after=_retry_after(resp), **kwargs)
    raise cls(message, **kwargs)


def _mask(secret: str) -> None:
    """Register the token with Airflow's secrets masker, so no log line can show it."""
    try:
        from airflow.sdk.log import mask_secret

        mask_secret(secret)
    except ImportError:  # pragma: no cover - always present on Airflow 3.3
        pass
