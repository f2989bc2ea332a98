"""The localflare ASGI app: routing, auth, rate limits, faults, counters and signed URLs."""

from __future__ import annotations

import asyncio
import base64
import hashlib
import hmac
import json
import re
import secrets
import threading
import time
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import parse_qsl, unquote, urlencode

from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import JSONResponse, Response, StreamingResponse

from . import clock
from .core import CFError, Req, fail_response, no_route
from .d1 import D1
from .faults import FaultBook, make_fault, parse_spec
from .graphql_api import GraphQLService
from .kv import KV
from .permissions import ALL, required
from .ratelimit import RateLimiter
from .vectorize import Vectorize
from .workers import PrismWorker, Workers

API_PREFIX = "/client/v4"


@dataclass
class Config:
    data_dir: str
    host: str = "127.0.0.1"
    port: int = 8787
    account_id: str = "0123456789abcdef0123456789abcdef"
    api_token: str = ""
    public_url: str = ""
    rate_limit: int = 1200
    rate_window: float = 300.0
    graphql_rate_limit: int = 300
    graphql_rate_window: float = 300.0
    mutation_lag: float = 1.0
    export_min_seconds: float = 0.5
    export_poll_timeout: float = 60.0
    poll_wait: float = 0.25
    signed_url_ttl: float = 3600.0
    time_travel: bool = True
    time_travel_days: int = 30
    max_databases: int = 50_000
    get_by_ids_max: int = 100
    record_path: str = ""
    faults: str = ""
    # restricted tokens: bearer token -> the permission groups it holds (permissions.py)
    tokens: dict = field(default_factory=dict)
    # PRISM's resource names, for the Worker stand-in and the analytics
    d1_name: str = "claudes-friend-db"
    index_name: str = "claudes-companion"
    kv_title: str = "prism-cache"
    worker_name: str = "claudes-friend"
    extra: dict = field(default_factory=dict)

    @property
    def base_url(self) -> str:
        return self.public_url or f"http://{self.host}:{self.port}"


class Signer:
    """Presigned URLs for export downloads and import uploads, served without auth like R2's."""

    def __init__(self, cfg: Config, faults: FaultBook, key: bytes):
        self.cfg = cfg
        self.faults = faults
        self.key = key

    def sign(self, path: str) -> str:
        expiry_fault = self.faults.peek("url_expiry")
        ttl = float(expiry_fault.opts["seconds"]) if expiry_fault else self.cfg.signed_url_ttl
        expires = f"{time.time() + ttl:.3f}"
        sig = hmac.new(self.key, f"{path}:{expires}".encode(), hashlib.sha256).hexdigest()
        return f"{self.cfg.base_url}/__r2/{path}?" + urlencode({"X-Amz-Expires": expires, "X-Amz-Signature": sig})

    def check(self, path: str, query: dict) -> None:
        expires, sig = query.get("X-Amz-Expires", ""), query.get("X-Amz-Signature", "")
        good = hmac.new(self.key, f"{path}:{expires}".encode(), hashlib.sha256).hexdigest()
        if not hmac.compare_digest(good, sig):
            raise CFError(403, 0, "SignatureDoesNotMatch")
        if time.time() > float(expires):
            raise CFError(403, 0, "Request has expired")


def _compile(template: str) -> re.Pattern:
    pattern = re.sub(r"\{(\w+):path\}", r"(?P<\1>.+)", template)
    pattern = re.sub(r"\{(\w+)\}", r"(?P<\1>[^/]+)", pattern)
    return re.compile("^" + pattern + "$")


class LocalFlare:
    def __init__(self, cfg: Config):
        self.cfg = cfg
        root = Path(cfg.data_dir)
        root.mkdir(parents=True, exist_ok=True)
        key_file = root / "signing.key"
        if not key_file.exists():
            key_file.write_bytes(secrets.token_bytes(32))
        if not cfg.api_token:
            token_file = root / "api-token"
            if not token_file.exists():
                token_file.write_text(secrets.token_urlsafe(30))
            cfg.api_token = token_file.read_text().strip()
        self.faults = FaultBook(parse_spec(cfg.faults))
        self.signer = Signer(cfg, self.faults, key_file.read_bytes())
        self.limiter = RateLimiter(cfg.rate_limit, cfg.rate_window)
        self.gql_limiter = RateLimiter(cfg.graphql_rate_limit, cfg.graphql_rate_window)
        self.d1 = D1(cfg, self.faults, self.signer)
        self.vectorize = Vectorize(cfg, self.faults)
        self.kv = KV(cfg, self.faults)
        self.workers = Workers(cfg, self.faults)
        self.graphql = GraphQLService(
            cfg,
            self.faults,
            lambda: self.d1.find_by_name(cfg.d1_name) or "",
            lambda: self.kv.find_by_title(cfg.kv_title) or "",
        )
        self.worker = PrismWorker(cfg, self.faults, self.d1, self.vectorize, self.kv, self.graphql)
        self.routes = []
        for service in (self.d1, self.vectorize, self.kv, self.workers):
            for method, template, handler in service.routes():
                self.routes.append((method, template, _compile(template), handler))
        self.counters: Counter = Counter()
        self._counter_lock = threading.Lock()
        self._record_lock = threading.Lock()

    # ---- ASGI -----------------------------------------------------------------------------
    async def __call__(self, scope, receive, send):
        if scope["type"] == "lifespan":
            while True:
                message = await receive()
                if message["type"] == "lifespan.startup":
                    await send({"type": "lifespan.startup.complete"})
                elif message["type"] == "lifespan.shutdown":
                    await send({"type": "lifespan.shutdown.complete"})
                    return
        request = Request(scope, receive)
        response = await self.dispatch(request)
        await response(scope, receive, send)

    async def dispatch(self, request: Request) -> Response:
        raw_path = request.scope.get("raw_path", b"").decode("latin-1").split("?", 1)[0] or request.url.path
        if raw_path.startswith("/__localflare/"):
            return await self.admin(request, raw_path)
        if raw_path.startswith("/__r2/"):
            return await self.r2(request, raw_path[len("/__r2/") :])
        if raw_path.startswith("/worker/"):
            return await self.prism_worker(request, raw_path[len("/worker") :])
        if raw_path.startswith(API_PREFIX + "/") or raw_path == API_PREFIX:
            return await self.api(request, raw_path[len(API_PREFIX) :])
        return JSONResponse({"error": "not found"}, status_code=404)

    def _count(self, key: str) -> None:
        with self._counter_lock:
            self.counters[key] += 1

    async def api(self, request: Request, path: str) -> Response:
        method = request.method
        body = await request.body()
        pairs = parse_qsl(request.url.query, keep_blank_values=True)
        query, query_all = dict(pairs), {}
        for key, value in pairs:
            query_all.setdefault(key, []).append(value)
        headers = {k.lower(): v for k, v in request.headers.items()}
        route_key = f"{method} {path}"
        if path == "/graphql":
            template, handler, params = "/graphql", None, {}
        else:
            template, handler, params = self._match(method, path)
        if template is None:
            self._count("no_route")
            return self._finish(request, body, fail_response(no_route()))
        route_key = f"{method} {template}"
        self._count(f"route:{route_key}")
        self._count("requests")
        try:
            self._auth(headers, params, path, method, template)
        except CFError as err:
            self._count("auth_errors")
            if err.code == 10000 and err.status == 403 and path == "/graphql":
                # GraphQL answers in its own shape, not the v4 envelope.
                return self._finish(
                    request,
                    body,
                    JSONResponse(
                        {
                            "data": None,
                            "errors": [{"message": "not authorized for that account", "extensions": {"code": "authz"}}],
                        },
                        status_code=403,
                    ),
                )
            return self._finish(request, body, fail_response(err))
        allowed, rl_headers = self.limiter.check(self.cfg.api_token)
        if not allowed:
            self._count("429_sent")
            err = CFError(429, 971, "Please wait and consider throttling your request speed", rl_headers)
            return self._finish(request, body, fail_response(err))
        injected = await self._inject(f"{method} {path}")
        if injected is not None:
            return self._finish(request, body, injected)
        if path == "/graphql":
            resp = await self._graphql(method, body, headers)
        else:
            form = {}
            if headers.get("content-type", "").startswith("multipart/form-data"):
                form = await self._form(request, body)
            req = Req(
                method,
                path,
                params,
                query,
                headers,
                body,
                params.get("account_id", ""),
                self.cfg.base_url,
                form,
                query_all,
            )
            try:
                resp = await run_in_threadpool(handler, req)
            except CFError as err:
                resp = fail_response(err)
        for key, value in rl_headers.items():
            resp.headers.setdefault(key, value)
        return self._finish(request, body, resp)

    def _match(self, method: str, path: str):
        """The route for METHOD path; a known path with another method is 'no route' too, as on Cloudflare."""
        for r_method, template, regex, handler in self.routes:
            m = regex.match(path)
            if m and r_method == method:
                return template, handler, {k: unquote(v) for k, v in m.groupdict().items()}
        return None, None, {}

    def _permissions(self, token: str) -> frozenset | None:
        """The permission groups the token holds; None for an unknown token."""
        if hmac.compare_digest(token.encode(), self.cfg.api_token.encode()):
            return ALL
        for name, perms in self.cfg.tokens.items():
            if hmac.compare_digest(token.encode(), name.encode()):
                return perms
        return None

    def _auth(self, headers: dict, params: dict, path: str, method: str = "GET", template: str = "") -> None:
        auth = headers.get("authorization", "")
        if not auth:
            raise CFError(400, 10000, "Authentication error")
        scheme, _, token = auth.partition(" ")
        if scheme.lower() != "bearer" or not token.strip():
            raise CFError(400, 6003, "Invalid request headers")
        perms = self._permissions(token.strip())
        if perms is None:
            if path == "/user/tokens/verify":
                raise CFError(401, 1000, "Invalid API Token")
            raise CFError(403, 10000, "Authentication error")
        account = params.get("account_id")
        if account is not None and account != self.cfg.account_id:
            raise CFError(403, 9109, "Unauthorized to access requested resource")
        need = required(method, template or path)
        if need is not None and need not in perms:
            self._count("permission_denied")
            if template in ("/user", "/memberships"):
                # User-level routes answer 9109, which wrangler reads as "this token may not see the user".
                raise CFError(403, 9109, "Unauthorized to access requested resource")
            raise CFError(403, 10000, "Authentication error")

    async def _inject(self, route: str) -> Response | None:
        fault = self.faults.take("latency", route)
        if fault:
            # Awaited, not slept: a slow call must not hold up the calls made beside it, as on Cloudflare.
            await asyncio.sleep(fault.opts["ms"] / 1000.0)
        fault = self.faults.take("429", route)
        if fault:
            self._count("429_sent")
            wait = int(fault.opts["retry_after"])
            err = CFError(
                429,
                971,
                "Please wait and consider throttling your request speed",
                {"retry-after": str(wait), "x-ratelimit-limit": str(self.cfg.rate_limit), "x-ratelimit-remaining": "0"},
            )
            return fail_response(err)
        fault = self.faults.take("5xx", route)
        if fault:
            self._count("5xx_sent")
            status = int(fault.opts["status"])
            return fail_response(CFError(status, 10000 + status, f"Internal error (injected {status})"))
        return None

    async def _form(self, request: Request, body: bytes) -> dict:
        async def replay():
            return {"type": "http.request", "body": body, "more_body": False}

        form = await Request(request.scope, replay).form(max_part_size=200 * 1024 * 1024)
        out = {}
        for key, value in form.multi_items():
            out[key] = await value.read() if hasattr(value, "read") else value.encode()
        return out

    async def _graphql(self, method: str, body: bytes, headers: dict) -> Response:
        if method != "POST":
            return JSONResponse(
                {"data": None, "errors": [{"message": "Cloudflare API v4 doesn't allow GETs to /graphql"}]},
                status_code=405,
            )
        allowed, _ = self.gql_limiter.check(self.cfg.api_token)
        if not allowed:
            self._count("429_sent")
            return JSONResponse(
                {
                    "data": None,
                    "errors": [
                        {
                            "message": "rate limiter budget depleted, try again after 5 minutes",
                            "extensions": {"code": "budgetDepleted"},
                        }
                    ],
                },
                status_code=429,
            )
        req = Req("POST", "/graphql", {}, {}, headers, body)
        return await run_in_threadpool(self.graphql.handle, req)

    def _finish(self, request: Request, body: bytes, resp: Response) -> Response:
        if self.cfg.record_path:
            self._record(request, body, resp)
        return resp

    def _record(self, request: Request, body: bytes, resp: Response) -> None:
        """Append the exchange to a JSONL file, for validation against the OpenAPI spec."""
        resp_body = getattr(resp, "body", b"") or b""
        entry = {
            "method": request.method,
            "path": request.url.path,
            "query": request.url.query,
            "request_content_type": request.headers.get("content-type", ""),
            "request_body": base64.b64encode(body).decode() if len(body) <= 2_000_000 else None,
            "status": resp.status_code,
            "response_content_type": resp.headers.get("content-type", ""),
            "response_body": base64.b64encode(resp_body).decode() if len(resp_body) <= 2_000_000 else None,
        }
        with self._record_lock, open(self.cfg.record_path, "a") as fh:
            fh.write(json.dumps(entry) + "\n")

    # ---- signed URLs (R2 stand-in) --------------------------------------------------------
    async def r2(self, request: Request, path: str) -> Response:
        query = dict(parse_qsl(request.url.query))
        try:
            self.signer.check(path, query)
        except CFError as err:
            return Response(
                f"<Error><Code>AccessDenied</Code><Message>{err.message}</Message></Error>",
                status_code=403,
                media_type="application/xml",
            )
        kind, _, name = path.partition("/")
        if kind == "exports" and request.method in ("GET", "HEAD"):
            return self._download(request, name)
        if kind == "imports" and request.method == "PUT":
            etag = await run_in_threadpool(self.d1.store_upload, name, [await request.body()])
            return Response(b"", status_code=200, headers={"ETag": f'"{etag}"'})
        return Response("<Error><Code>MethodNotAllowed</Code></Error>", status_code=405, media_type="application/xml")

    def _download(self, request: Request, name: str) -> Response:
        path = self.d1.export_file(name)
        if path is None:
            return Response("<Error><Code>NoSuchKey</Code></Error>", status_code=404, media_type="application/xml")
        size = path.stat().st_size
        start, end, status = 0, size - 1, 200
        rng = request.headers.get("range", "")
        m = re.match(r"bytes=(\d+)-(\d*)$", rng)
        if m:
            start = int(m.group(1))
            end = min(int(m.group(2)) if m.group(2) else size - 1, size - 1)
            if start >= size:
                return Response(b"", status_code=416, headers={"Content-Range": f"bytes */{size}"})
            status = 206
        length = end - start + 1
        headers = {"Content-Length": str(length), "Accept-Ranges": "bytes", "ETag": f'"{path.stat().st_mtime_ns:x}"'}
        if status == 206:
            headers["Content-Range"] = f"bytes {start}-{end}/{size}"
        if request.method == "HEAD":
            return Response(b"", status_code=status, headers=headers)
        drop = self.faults.take("drop_download", f"GET /__r2/exports/{name}")
        self._count("downloads")

        def stream():
            sent = 0
            with open(path, "rb") as fh:
                fh.seek(start)
                while sent < length:
                    chunk = fh.read(min(64 * 1024, length - sent))
                    if not chunk:
                        break
                    if drop and sent + len(chunk) > int(drop.opts["after_bytes"]):
                        cut = max(0, int(drop.opts["after_bytes"]) - sent)
                        yield chunk[:cut]
                        self._count("downloads_dropped")
                        raise ConnectionAbortedError("localflare: injected drop_download fault")
                    sent += len(chunk)
                    yield chunk

        return StreamingResponse(stream(), status_code=status, headers=headers, media_type="application/sql")

    # ---- PRISM's Worker -------------------------------------------------------------------
    async def prism_worker(self, request: Request, path: str) -> Response:
        self._count(f"worker:{path}")
        if path == "/health":
            return await run_in_threadpool(self.worker.health)
        if path == "/metrics":
            return await run_in_threadpool(self.worker.metrics, request.query_params.get("period", "24h"))
        return JSONResponse({"error": "not found"}, status_code=404)

    # ---- admin API ------------------------------------------------------------------------
    async def admin(self, request: Request, path: str) -> Response:
        what = path[len("/__localflare/") :].strip("/")
        if what == "info":
            return JSONResponse(self.info())
        if what == "counters":
            if request.method == "DELETE":
                with self._counter_lock:
                    self.counters.clear()
                return JSONResponse({"ok": True})
            with self._counter_lock:
                return JSONResponse({"counters": dict(self.counters), "faults_fired": dict(self.faults.fired)})
        if what == "faults":
            if request.method == "GET":
                return JSONResponse({"faults": self.faults.list()})
            if request.method == "DELETE":
                self.faults.clear()
                return JSONResponse({"faults": []})
            try:
                payload = json.loads(await request.body() or b"{}")
                if isinstance(payload, dict) and "spec" in payload:
                    new = parse_spec(payload["spec"])
                else:
                    items = payload if isinstance(payload, list) else [payload]
                    new = [make_fault(i.pop("kind"), i) for i in items]
            except (ValueError, KeyError, AttributeError) as exc:
                return JSONResponse({"error": str(exc)}, status_code=400)
            for fault in new:
                self.faults.add(fault)
            return JSONResponse({"faults": self.faults.list()})
        if what == "clock":
            if request.method == "POST":
                payload = json.loads(await request.body() or b"{}")
                clock.advance(float(payload.get("advance", 0)))
            return JSONResponse({"now": clock.now(), "offset": clock.now() - time.time()})
        if what == "ratelimit" and request.method == "DELETE":
            self.limiter.reset()
            self.gql_limiter.reset()
            return JSONResponse({"ok": True})
        return JSONResponse({"error": f"unknown admin path {path}"}, status_code=404)

    def info(self) -> dict:
        return {
            "api_base_url": f"{self.cfg.base_url}{API_PREFIX}",
            "worker_base_url": f"{self.cfg.base_url}/worker",
            "account_id": self.cfg.account_id,
            "d1_database_id": self.d1.find_by_name(self.cfg.d1_name),
            "vectorize_index": self.cfg.index_name,
            "kv_namespace_id": self.kv.find_by_title(self.cfg.kv_title),
            "worker_name": self.cfg.worker_name,
            "rate_limit": f"{self.cfg.rate_limit}/{int(self.cfg.rate_window)}s",
        }
