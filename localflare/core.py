"""Envelope, errors and the request object shared by every localflare route."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any

from starlette.responses import JSONResponse, Response


class CFError(Exception):
    """An API error, rendered as Cloudflare's failure envelope."""

    def __init__(self, status: int, code: int, message: str, headers: dict | None = None):
        super().__init__(f"{status} {code} {message}")
        self.status = status
        self.code = code
        self.message = message
        self.headers = headers or {}


def envelope(result: Any = None, result_info: dict | None = None, messages: list | None = None) -> dict:
    body = {"success": True, "errors": [], "messages": messages or [], "result": result}
    if result_info is not None:
        body["result_info"] = result_info
    return body


def ok(
    result: Any = None, result_info: dict | None = None, status: int = 200, messages: list | None = None
) -> JSONResponse:
    return JSONResponse(envelope(result, result_info, messages), status_code=status)


def fail_response(err: CFError) -> JSONResponse:
    body = {"success": False, "errors": [{"code": err.code, "message": err.message}], "messages": [], "result": None}
    return JSONResponse(body, status_code=err.status, headers=err.headers)


def no_route() -> CFError:
    return CFError(400, 7003, "No route for the URI")


@dataclass
class Req:
    """What a handler needs from an HTTP request, read before the handler runs in a thread."""

    method: str
    path: str
    params: dict
    query: dict
    headers: dict
    body: bytes
    account_id: str = ""
    base_url: str = ""
    form: dict = field(default_factory=dict)
    query_all: dict = field(default_factory=dict)  # every value of repeated keys (?fields=a&fields=b)

    @property
    def content_type(self) -> str:
        return self.headers.get("content-type", "").split(";")[0].strip().lower()

    def json(self, expect_json_content_type: bool = False, code: int = 10026) -> Any:
        if expect_json_content_type and self.content_type != "application/json":
            raise CFError(400, 40026, "Expected request with `Content-Type: application/json`")
        if not self.body:
            raise CFError(400, code, "Request body is empty or not valid JSON")
        try:
            return json.loads(self.body)
        except ValueError as exc:
            raise CFError(400, code, f"Could not parse JSON body: {exc}") from None

    def int_arg(self, name: str, default: int, lo: int, hi: int, code: int = 10001) -> int:
        raw = self.query.get(name)
        if raw is None or raw == "":
            return default
        try:
            value = int(raw)
        except ValueError:
            raise CFError(400, code, f"{name} must be an integer") from None
        if not lo <= value <= hi:
            raise CFError(400, code, f"{name} must be between {lo} and {hi}")
        return value


def raw_response(
    data: bytes, status: int = 200, headers: dict | None = None, media_type: str = "application/octet-stream"
) -> Response:
    return Response(content=data, status_code=status, headers=headers, media_type=media_type)
