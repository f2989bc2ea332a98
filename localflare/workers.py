"""Workers scripts (deployments, versions), Workers AI embeddings, token verify, the user and account
lists wrangler asks for (`/user`, `/memberships`, `/accounts`), and PRISM's own Worker."""

from __future__ import annotations

import json
import re
import time
from datetime import datetime, timezone
from pathlib import Path

from starlette.responses import JSONResponse

from . import embedding, traffic
from .core import CFError, Req, ok
from .d1 import iso

MAX_AI_INPUTS = 100
PERIOD_RE = re.compile(r"^(\d+)([hd])$")


class Workers:
    def __init__(self, cfg, faults):
        self.cfg = cfg
        self.faults = faults
        self.path = Path(cfg.data_dir) / "workers" / "scripts.json"
        self.path.parent.mkdir(parents=True, exist_ok=True)

    def scripts(self) -> dict:
        return json.loads(self.path.read_text()) if self.path.exists() else {}

    def save_scripts(self, scripts: dict) -> None:
        tmp = self.path.with_suffix(".tmp")
        tmp.write_text(json.dumps(scripts, indent=1))
        tmp.replace(self.path)

    def routes(self):
        base = "/accounts/{account_id}/workers/scripts/{script_name}"
        return [
            ("GET", base + "/deployments", self.deployments),
            ("GET", base + "/versions", self.versions),
            ("GET", base + "/versions/{version_id}", self.version),
            ("POST", "/accounts/{account_id}/ai/run/{model_name:path}", self.ai_run),
            ("GET", "/user/tokens/verify", self.verify_token),
            ("GET", "/accounts/{account_id}/tokens/verify", self.verify_token),
            ("GET", "/accounts/{account_id}", self.account),
            # wrangler: `whoami` reads /user and /accounts; without CLOUDFLARE_ACCOUNT_ID every command
            # first picks the account from /memberships.
            ("GET", "/user", self.user),
            ("GET", "/memberships", self.memberships),
            ("GET", "/accounts", self.accounts),
        ]

    def _account(self) -> dict:
        return {
            "id": self.cfg.account_id,
            "name": "localflare account",
            "type": "standard",
            "settings": {"enforce_twofactor": False},
            "created_on": "2024-01-01T00:00:00Z",
        }

    def account(self, req: Req):
        # Account Details: auth already checked that the id is this server's account.
        return ok(self._account())

    def user(self, req: Req):
        return ok(
            {
                "id": "7c5dae5552338874e5053f2534d2767a",
                "email": "operator@localflare.example",
                "first_name": None,
                "last_name": None,
                "username": "localflare-operator",
                "telephone": None,
                "country": None,
                "zipcode": None,
                "two_factor_authentication_enabled": False,
                "two_factor_authentication_locked": False,
                "has_pro_zones": False,
                "has_business_zones": False,
                "has_enterprise_zones": False,
                "suspended": False,
                "organizations": [],
                "betas": [],
                "created_on": "2024-01-01T00:00:00Z",
                "modified_on": "2024-01-01T00:00:00Z",
            }
        )

    @staticmethod
    def _one_page(req: Req, items: list) -> dict:
        # The spec's bounds for /memberships and /accounts: per_page 5-50 (default 20), page from 1.
        page = req.int_arg("page", 1, 1, 10**9)
        per_page = req.int_arg("per_page", 20, 5, 50)
        chunk = items[(page - 1) * per_page : page * per_page]
        info = {
            "page": page,
            "per_page": per_page,
            "count": len(chunk),
            "total_count": len(items),
            "total_pages": (len(items) + per_page - 1) // per_page,
        }
        return ok(chunk, info)

    def memberships(self, req: Req):
        account = self._account()
        membership = {
            "id": "4536bcfad5faccb111b47003c79917fa",
            "account": account,
            "api_access_enabled": True,
            "permissions": {},
            "policies": [],
            "roles": ["Super Administrator - All Privileges"],
            "status": "accepted",
        }
        wanted = req.query.get("account.name") or req.query.get("name")
        return self._one_page(req, [] if wanted and wanted != account["name"] else [membership])

    def accounts(self, req: Req):
        account = self._account()
        wanted = req.query.get("name")
        return self._one_page(req, [] if wanted and wanted != account["name"] else [account])

    def _script(self, name: str) -> dict:
        script = self.scripts().get(name)
        if script is None:
            raise CFError(404, 10007, "This Worker does not exist on your account.")
        return script

    def deployments(self, req: Req):
        return ok({"deployments": self._script(req.params["script_name"])["deployments"]})

    def versions(self, req: Req):
        items = self._script(req.params["script_name"])["versions"]
        if req.query.get("deployable") in ("true", "1"):
            return ok(
                {"items": items}, {"page": 1, "per_page": len(items), "count": len(items), "total_count": len(items)}
            )
        page = req.int_arg("page", 1, 1, 10**9)
        per_page = req.int_arg("per_page", 10, 1, 100)
        chunk = items[(page - 1) * per_page : page * per_page]
        return ok(
            {"items": chunk}, {"page": page, "per_page": per_page, "count": len(chunk), "total_count": len(items)}
        )

    def version(self, req: Req):
        for item in self._script(req.params["script_name"])["versions"]:
            if item["id"] == req.params["version_id"]:
                # The detail adds `resources` (bindings, script, runtime) to the list item.
                return ok(
                    {
                        **item,
                        "resources": {
                            "bindings": [
                                {"name": "DB", "type": "d1", "id": self.cfg.d1_name},
                                {"name": "VECTORIZE", "type": "vectorize", "index_name": self.cfg.index_name},
                                {"name": "CACHE", "type": "kv_namespace", "namespace_id": self.cfg.kv_title},
                                {"name": "AI", "type": "ai"},
                            ],
                            "script": {
                                "etag": item["id"].replace("-", "") * 2,
                                "handlers": ["fetch", "scheduled"],
                                "last_deployed_from": item["metadata"]["source"],
                            },
                            "script_runtime": {"usage_model": "standard"},
                        },
                    }
                )
        raise CFError(404, 10230, "version not found")

    def ai_run(self, req: Req):
        model = req.params["model_name"]
        if model != embedding.MODEL:
            raise CFError(400, 5007, f"No such model {model} or task")
        body = req.json(code=5006)
        text = body.get("text") if isinstance(body, dict) else None
        texts = [text] if isinstance(text, str) else text
        if not isinstance(texts, list) or not texts or not all(isinstance(t, str) for t in texts):
            raise CFError(400, 5006, "Type mismatch of '/text', 'string' not in 'array','string'")
        if len(texts) > MAX_AI_INPUTS:
            raise CFError(400, 5006, f"at most {MAX_AI_INPUTS} inputs per request")
        data = [[float(x) for x in embedding.embed(t)] for t in texts]
        return ok({"shape": [len(data), embedding.DIMS], "data": data, "pooling": "mean"})

    def verify_token(self, req: Req):
        return ok(
            {"id": "localflare-token", "status": "active"},
            messages=[{"code": 10000, "message": "This API Token is valid and active", "type": None}],
        )


def _merge(into: dict, extra: dict) -> None:
    for key, value in extra.items():
        if isinstance(value, dict) and isinstance(into.get(key), dict):
            _merge(into[key], value)
        else:
            into[key] = value


class PrismWorker:
    """PRISM's Worker as the guide reads it: GET /health and GET /metrics[?period=24h|7d|30d]."""

    def __init__(self, cfg, faults, d1, vectorize, kv, graphql):
        self.cfg = cfg
        self.faults = faults
        self.d1 = d1
        self.vectorize = vectorize
        self.kv = kv
        self.graphql = graphql

    def checks(self) -> dict:
        checks = {}
        db = self.d1.find_by_name(self.cfg.d1_name)
        try:
            if db is None:
                raise CFError(404, 7404, "database missing")
            self.d1.execute(db, [("SELECT 1", [])])
            checks["database"] = "ok"
        except CFError as exc:
            checks["database"] = f"error: {exc.message}"
        try:
            _, idx = self.vectorize.index(self.cfg.index_name)
            checks["vectorize"] = "ok" if idx.count() > 0 else "error: index is empty"
        except CFError as exc:
            checks["vectorize"] = f"error: {exc.message}"
        checks["kv"] = "ok" if self.kv.find_by_title(self.cfg.kv_title) else "error: cache namespace missing"
        checks["ai"] = "ok"
        return checks

    def health(self) -> JSONResponse:
        checks = self.checks()
        forced = self.faults.take("worker_unhealthy") is not None
        healthy = all(v == "ok" for v in checks.values()) and not forced
        body = {
            "status": "healthy" if healthy else "unhealthy",
            "timestamp": iso(time.time()),
            "version": "1.4.2",
            "checks": checks,
        }
        if forced:
            body["checks"]["worker"] = "error: injected fault worker_unhealthy"
        return JSONResponse(body, status_code=200 if healthy else 503)

    def metrics(self, period: str) -> JSONResponse:
        match = PERIOD_RE.match(period or "24h")
        if not match:
            return JSONResponse({"error": "period must look like 24h, 7d or 30d"}, status_code=400)
        seconds = int(match.group(1)) * (3600 if match.group(2) == "h" else 86400)
        now = time.time()
        recs = traffic.records(now - seconds, now, now, self.graphql.error_windows())
        today = traffic.records(now - now % 86400, now, now, self.graphql.error_windows())
        total = sum(r["requests"] for r in recs)
        errors = sum(r["errors"] for r in recs)
        hist = traffic.merge_hist(recs)
        hits = sum(r["cache_hits"] for r in recs)
        misses = sum(r["cache_misses"] for r in recs)
        saved = sum(r["tokens_saved"] for r in recs)
        entries, size = self._cache_table()
        try:
            row, idx = self.vectorize.index(self.cfg.index_name)
            dims = row["dimensions"]
            stored_dims = idx.count() * dims
        except CFError:
            dims, stored_dims = 0, 0
        # A quarter of the requests are searches; each one the cache misses queries the index (this month, UTC).
        month_start = datetime.fromtimestamp(now, timezone.utc).replace(
            day=1, hour=0, minute=0, second=0, microsecond=0
        )
        month = traffic.records(month_start.timestamp(), now, now, self.graphql.error_windows())
        body = {
            "period": period or "24h",
            "window": {"start": iso(now - seconds), "end": iso(now)},
            "requests": {
                "total": total,
                "errors": errors,
                "success_rate": round(100 * (total - errors) / total, 3) if total else 100.0,
                "error_rate": round(100 * errors / total, 3) if total else 0.0,
            },
            "performance": {
                "p50_latency_ms": round(traffic.quantile(hist, 0.5), 1),
                "p95_latency_ms": round(traffic.quantile(hist, 0.95), 1),
                "p99_latency_ms": round(traffic.quantile(hist, 0.99), 1),
            },
            "resources": {
                "neurons_used": sum(r["neurons"] for r in today),
                "neurons_limit": traffic.NEURONS_DAILY_LIMIT,
                "d1_rows_read_today": sum(r["d1_rows_read"] for r in today),
                "d1_rows_written_today": sum(r["d1_rows_written"] for r in today),
                "kv_reads_today": sum(r["kv_reads"] for r in today),
                "kv_writes_today": sum(r["kv_writes"] for r in today),
                "vectorize_stored_dimensions": stored_dims,
                "vectorize_queries_month": sum(r["cache_misses"] // 4 for r in month),
                "vectorize_queried_dimensions_month": sum(r["cache_misses"] // 4 for r in month) * dims,
            },
            "tokens": {"saved": saved, "cost_saved_usd": round(saved * traffic.COST_PER_TOKEN_USD, 2)},
            "cache": {
                "hits": hits,
                "misses": misses,
                "hit_rate": round(100 * hits / (hits + misses), 2) if hits + misses else 0.0,
                "entries": entries,
                "size_bytes": size,
                "evictions": sum(r["kv_deletes"] for r in recs),
            },
        }
        override = self.faults.take("worker_metrics")
        if override is not None:  # a Worker answering what it likes: hostile strings, wrong types
            _merge(body, json.loads(override.opts["set"]))
        return JSONResponse(body)

    def _cache_table(self) -> tuple[int, int]:
        db = self.d1.find_by_name(self.cfg.d1_name)
        if db is None:
            return 0, 0
        try:
            res = self.d1.execute(db, [("SELECT COUNT(*), COALESCE(SUM(size_bytes), 0) FROM cache_metadata", [])])
            return tuple(res[0]["rows"][0])
        except CFError:
            return 0, 0
