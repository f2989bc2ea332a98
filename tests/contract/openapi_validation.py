"""Check recorded localflare exchanges against the pruned Cloudflare OpenAPI spec (openapi-core 0.23).

`localflare serve --record FILE` appends one JSON line per API exchange: method, path (already
URL-decoded, starting with /client/v4), query, content types, and base64 bodies. This module finds
the spec operation for each exchange, validates the request (parameters and body) and the response
(status, content type and body, error responses included) and sorts what it finds into:

- not covered: no operation in the pruned spec for that method and path (GraphQL, Time Travel,
  list_vectors, KV bulk/get, GET metadata_index/list, ...). Reported, never failures.
- tolerated: a finding that matches an entry of DEVIATIONS, the known gaps between the 2024 spec
  and the real API. Each entry names the operation, the exact finding and the reason.
- violations: everything else.

A request that breaks the spec and was *rejected* by localflare (4xx) is the intended outcome of an
error test, so request findings only count as violations when localflare answered 2xx.

Security requirements are not checked: the recording keeps no headers, so no tokens end up in it.
"""

from __future__ import annotations

import base64
import json
import re
from collections import Counter
from dataclasses import dataclass, field
from fnmatch import fnmatchcase
from pathlib import Path
from urllib.parse import parse_qsl, urlparse

from jsonschema.exceptions import best_match
from jsonschema_path import SchemaPath
from openapi_core.datatypes import RequestParameters
from openapi_core.validation.request import V30RequestBodyValidator, V30RequestParametersValidator
from openapi_core.validation.request.exceptions import MissingRequestBody
from openapi_core.validation.response import V30ResponseValidator
from werkzeug.datastructures import Headers, ImmutableMultiDict

SPEC_PATH = Path(__file__).with_name("cloudflare-openapi-prism.json")
METHODS = ("get", "put", "post", "delete", "patch", "head", "options", "trace")
# KV key names may contain "/" (sent percent-encoded, recorded decoded), so this parameter may span
# path segments. Every other parameter is a single segment, as in the spec.
MULTI_SEGMENT_PARAMS = {"key_name"}


@dataclass(frozen=True)
class Deviation:
    """A known gap between the 2024 spec and the real API.

    `operation` is an fnmatch pattern over operationIds. `rule` is an fnmatch pattern over a finding's
    key, "<where> <json path> <check>", optionally followed by ": <text>" that must occur in the
    finding's message. <where> is "request" or "response <status>".
    """

    operation: str
    rule: str
    reason: str

    def matches(self, finding: Finding) -> bool:
        pattern, _, text = self.rule.partition(": ")
        return (
            fnmatchcase(finding.operation, self.operation)
            and fnmatchcase(finding.key, pattern)
            and text in finding.message
        )


DEVIATIONS = (
    # --- the 2024 spec lags the API -------------------------------------------------------------
    Deviation(
        "cloudflare-d1-query-database",
        "request $ required: 'sql' is a required property",
        "The {batch: [{sql, params}]} body is newer than the 2024 spec (SDK 5.9.0 database_query_params; "
        "cloudflare-api.md 2.3).",
    ),
    Deviation(
        "cloudflare-d1-raw-database-query",
        "request $ required: 'sql' is a required property",
        "/raw takes the same body as /query, batch form included (cloudflare-api.md 2.4).",
    ),
    Deviation(
        "vectorize-query-vector",
        "request $.returnMetadata type",
        "V2 takes returnMetadata 'none'|'indexed'|'all'; the 2024 spec still types it as the V1 boolean "
        "(SDK 5.9.0 index_query_params; cloudflare-api.md 3.4 and 8).",
    ),
    Deviation(
        "vectorize-query-vector",
        "request $ required: 'vector' is a required property",
        "wrangler queries by id with {vectorId} instead of {vector} (cloudflare-api.md 3.4).",
    ),
    Deviation(
        "vectorize-insert-vector",
        "request $ MediaTypeNotFound: multipart/form-data",
        "wrangler and the official docs send multipart/form-data with a 'vectors' file part; the spec "
        "lists only application/x-ndjson (cloudflare-api.md 3.3).",
    ),
    Deviation(
        "vectorize-upsert-vector",
        "request $ MediaTypeNotFound: multipart/form-data",
        "Same two wire formats as insert (cloudflare-api.md 3.3).",
    ),
    Deviation(
        "workers-kv-namespace-write-key-value-pair-with-metadata",
        "request $ MediaTypeNotFound",
        "A value may be sent as the raw body, not multipart (cloudflare-api.md 4.4): wrangler's putKVKeyValue "
        "sends the value itself with no content type of its own (a string goes out as text/plain, bytes with "
        "none) unless there is metadata; the spec lists only multipart/form-data.",
    ),
    Deviation(
        "workers-kv-namespace-write-key-value-pair-with-metadata",
        "request $ required: 'metadata' is a required property",
        "The multipart 'metadata' part is optional; the spec marks it required (cloudflare-api.md 4.4).",
    ),
    Deviation(
        "workers-kv-namespace-*",
        "request $ MissingRequiredRequestBody",
        "DELETE value and DELETE namespace declare a required application/json body with no schema; the "
        "SDK 5.9.0 and wrangler send no body at all.",
    ),
    Deviation(
        "workers-kv-namespace-read-the-metadata-for-a-key",
        "response 200 $.result type: None for not nullable",
        "A key stored without metadata reads back as result: null. The 2024 schema is a non-nullable object; "
        "the SDK 5.9.0 (generated from the newer spec) unwraps this result as Optional[object], unlike e.g. "
        "namespaces.get (plain Namespace).",
    ),
    Deviation(
        "workers-kv-namespace-read-the-metadata-for-a-key",
        "response 200 $.result type: None is not of type 'object'",
        "The same null result, as reported by the type check (see the entry above).",
    ),
    Deviation(
        "cloudflare-d1-raw-database-query",
        "response 200 $.result.*.results.rows.*.* anyOf: None is not valid",
        "SQL NULL comes back as JSON null; the spec's cell anyOf(number, string, object) forgets null "
        "(SDK 5.9.0 types cells as Union[float, str, object]).",
    ),
    Deviation(
        "workers-kv-namespace-list-namespaces",
        "request query.per_page maximum",
        "wrangler 4's `kv namespace list` asks for per_page=1000 and Cloudflare serves it; the spec says at "
        "most 100 (issue 13, localflare/README.md).",
    ),
    Deviation(
        "workers-kv-namespace-list-a-namespace'-s-keys",
        "request query.prefix EmptyQueryParameterValue",
        "wrangler 4's `kv key list` always sends `prefix=`, empty without --prefix (listKVNamespaceKeys), and "
        "Cloudflare lists every key for it.",
    ),
    # --- the 2024 spec contradicts itself -------------------------------------------------------
    Deviation(
        "user'-s-account-memberships-list-memberships",
        "response 200 $ oneOf",
        "The 200 response is oneOf two membership lists (with and without policies) that differ only in an "
        "optional property and allow any other: every list is valid under both, so none passes oneOf.",
    ),
    Deviation(
        "user'-s-account-memberships-list-memberships",
        "response 4?? $.success enum: False is not one of [True]",
        "The 4XX schema allOf's the success list with the failure envelope: unsatisfiable (as for Workers).",
    ),
    Deviation(
        "user'-s-account-memberships-list-memberships",
        "response 4?? $.result type",
        "Same allOf: the success half wants a result array, the failure half null.",
    ),
    Deviation(
        "accounts-list-accounts",
        "response 4?? $.success enum: False is not one of [True]",
        "The 4XX schema allOf's the success list with the failure envelope: unsatisfiable (as for Workers).",
    ),
    Deviation(
        "accounts-list-accounts",
        "response 4?? $.result type",
        "Same allOf: the success half wants a result array, the failure half null.",
    ),
    Deviation(
        "*",
        "request path.* readOnly",
        "Path parameters reuse the identifier schemas (account, database, namespace, version ids), "
        "which are marked readOnly for response bodies; readOnly means nothing for a parameter.",
    ),
    Deviation(
        "vectorize-*-vectors-by-id",
        "request $.ids.* readOnly",
        "The ids a client must send to get_by_ids/delete_by_ids use the readOnly vector-identifier schema.",
    ),
    Deviation(
        "cloudflare-d1-*",
        "response 200 $.result type: is not of type 'object'",
        "D1 responses allOf the common envelope, whose result is typed 'object', with an operation schema "
        "whose result is an array (list, query, raw): no real response can pass both.",
    ),
    Deviation(
        "cloudflare-d1-delete-database",
        "response 200 $.result type: None for not nullable",
        "Same allOf: the delete schema says result is null, the common envelope says a non-nullable object.",
    ),
    Deviation(
        "vectorize-get-vectors-by-id",
        "response 200 $.result anyOf: is not valid under any",
        "get_by_ids returns an array (the operation's own schema), but the allOf'd single-result envelope "
        "allows only an object or a string.",
    ),
    Deviation(
        "vectorize-get-vectors-by-id",
        "response 200 $.result type: is not of type 'object'",
        "Same allOf as above: the single-result envelope also types result as an object.",
    ),
    Deviation(
        "vectorize-delete-vectorize-index",
        "response 200 $.result anyOf: None is not valid",
        "Delete answers result: null, which the operation schema allows (nullable) and the allOf'd common "
        "envelope's anyOf(object, array, string) does not.",
    ),
    Deviation(
        "vectorize-*",
        "response 4?? $.success enum: False is not one of [True]",
        "Vectorize 4XX schemas allOf the success envelope (success: true) with the failure envelope "
        "(success: false): unsatisfiable, so the success flag is checked by the failure half only.",
    ),
    Deviation(
        "vectorize-*",
        "response 4?? $.result anyOf: None is not valid",
        "Same allOf: the success half wants result to be an object, array or string; the failure half, null.",
    ),
    Deviation(
        "worker-*",
        "response 4?? $.success enum: False is not one of [True]",
        "Workers 4XX schemas allOf the list/single success response with the failure envelope: unsatisfiable.",
    ),
    Deviation(
        "worker-*",
        "response 4?? $.result type",
        "Same allOf: the success half wants a (non-nullable) result object, the failure half wants null "
        "(and still checks it, through its enum [null]).",
    ),
    Deviation(
        "user-api-tokens-verify-token",
        "response 4?? $.success enum: False is not one of [True]",
        "The token-verify 4XX schema allOf the success response with the failure envelope: unsatisfiable.",
    ),
    Deviation(
        "accounts-account-details",
        "response 4?? $.success enum: False is not one of [True]",
        "The Account Details 4XX schema allOf the success response with the failure envelope: unsatisfiable.",
    ),
    Deviation(
        "accounts-account-details",
        "response 4?? $.result type",
        "Same allOf: the success half wants a (non-nullable) result object, the failure half null.",
    ),
    Deviation(
        "workers-kv-namespace-read-key-value-pair",
        "response 200 $ type: is not of type 'string'",
        "The value is raw bytes (application/octet-stream); the schema says type string but leaves out "
        "format: binary, so a validator sees bytes where it wants text.",
    ),
    # --- the real API's errors differ from the spec's error schema ------------------------------
    Deviation(
        "*",
        "response 429 $.errors.*.code minimum: 971 is less than the minimum of 1000",
        "The global rate limit answers with code 971 (cloudflare-api.md 1.3 and 1.4); the spec's message "
        "schema says codes start at 1000.",
    ),
    Deviation(
        "*",
        "response 5?? $ ResponseNotFound",
        "The spec declares no 5xx responses, but the API sends them (overload, D1 busy with an export or "
        "import) and wrangler and the SDK retry them (cloudflare-api.md 1.4 and 7.3).",
    ),
    Deviation(
        "workers-ai-post-run-cf-baai-bge-small-en-v1-5",
        "response 400 $.errors.*.code type: is not of type 'string'",
        "The Workers AI 400 schema types error codes as strings; the v4 envelope uses integers everywhere "
        "else (cloudflare-api.md 1.2; SDK ResponseInfo.code: int).",
    ),
    Deviation(
        "workers-ai-post-run-cf-baai-bge-small-en-v1-5",
        "response 403 $ ResponseNotFound",
        "The Workers AI operation declares 200 and 400 only; a token without the Workers AI permission "
        "gets the v4 envelope's 403 with code 10000 Authentication error (cloudflare-api.md 1.2), as every "
        "other operation declares in its 4XX.",
    ),
    Deviation(
        "workers-ai-post-run-cf-baai-bge-small-en-v1-5",
        "response 400 $.result type",
        "The Workers AI 400 schema types result as a non-nullable object; failures carry result: null "
        "(cloudflare-api.md 1.2, and every other failure schema in the spec: enum [null]).",
    ),
)


@dataclass(frozen=True)
class Exchange:
    """One recorded API exchange (a line of the --record JSONL file)."""

    method: str
    path: str
    query: str
    request_content_type: str
    request_body: bytes | None
    status: int
    response_content_type: str
    response_body: bytes | None
    line: int = 0

    @classmethod
    def from_record(cls, record: dict, line: int = 0) -> Exchange:
        def unb64(value):
            return None if value is None else base64.b64decode(value)

        return cls(
            record["method"],
            record["path"],
            record.get("query", ""),
            record.get("request_content_type", ""),
            unb64(record.get("request_body")),
            int(record["status"]),
            record.get("response_content_type", ""),
            unb64(record.get("response_body")),
            line,
        )

    def __str__(self) -> str:
        query = f"?{self.query}" if self.query else ""
        return f"{self.method} {self.path}{query} -> {self.status}"


def load_exchanges(path: Path, start: int = 0) -> list[Exchange]:
    """The exchanges recorded in a JSONL file, from byte offset `start` (a line boundary) on."""
    data = Path(path).read_bytes()
    first_line = data[:start].count(b"\n") + 1
    lines = data[start:].decode("utf-8").splitlines()
    return [Exchange.from_record(json.loads(text), n) for n, text in enumerate(lines, first_line) if text.strip()]


@dataclass(frozen=True)
class Finding:
    """One thing the spec disagrees with, located by a JSON path into the request or response body."""

    operation: str
    where: str  # "request" or "response <status>"
    json_path: str  # "$", "$.result.status", "$.errors.0.code", or "query.limit" for parameters
    check: str  # a JSON Schema keyword ("enum", "type", ...) or an openapi-core error class name
    message: str
    exchange: Exchange

    @property
    def key(self) -> str:
        return f"{self.where} {self.json_path} {self.check}"

    def __str__(self) -> str:
        body = self.exchange.request_body if self.where == "request" else self.exchange.response_body
        excerpt = (body or b"")[:300].decode("utf-8", "replace")
        return (
            f"{self.operation}: {self.key}\n    {self.message}\n    exchange: {self.exchange} "
            f"(recording line {self.exchange.line})\n    {self.where.split()[0]} body: {excerpt}"
        )


@dataclass(frozen=True)
class Operation:
    method: str
    template: str  # the spec's path, without the server prefix
    operation_id: str
    regex: re.Pattern


class _RecordedRequest:
    """An openapi-core Request (with path_pattern) built from a recorded exchange."""

    def __init__(self, exchange: Exchange, op: Operation, variables: dict, host_url: str, prefix: str):
        self.host_url = host_url
        self.path = exchange.path
        self.path_pattern = prefix + op.template
        self.method = exchange.method.lower()
        self.body = exchange.request_body or b""
        # wrangler sends "application/json; charset=utf-8;": the empty parameter would crash openapi-core.
        self.content_type = exchange.request_content_type.lower().rstrip("; ")
        self.parameters = RequestParameters(
            path=variables,
            query=ImmutableMultiDict(parse_qsl(exchange.query, keep_blank_values=True)),
            header=Headers(),
            cookie=ImmutableMultiDict(),
        )


class _RecordedResponse:
    def __init__(self, exchange: Exchange):
        self.status_code = exchange.status
        self.content_type = exchange.response_content_type.lower()
        self.headers = Headers()
        self.data = exchange.response_body or b""


@dataclass
class Report:
    """The outcome of checking a list of exchanges."""

    exchanges: int = 0
    covered: Counter = field(default_factory=Counter)  # operationId -> exchanges seen
    not_covered: Counter = field(default_factory=Counter)  # "METHOD /path" -> exchanges seen
    violations: list[Finding] = field(default_factory=list)
    tolerated: list[tuple[Finding, Deviation]] = field(default_factory=list)
    rejected_requests: list[Finding] = field(default_factory=list)  # spec-invalid requests answered 4xx

    def format(self, limit: int = 40) -> str:
        out = [
            f"{self.exchanges} exchanges: {sum(self.covered.values())} covered by the spec "
            f"({len(self.covered)} operations), {sum(self.not_covered.values())} not covered, "
            f"{len(self.violations)} violations, {len(self.tolerated)} tolerated deviations, "
            f"{len(self.rejected_requests)} spec-invalid requests rejected with 4xx"
        ]
        for finding in self.violations[:limit]:
            out.append("VIOLATION " + str(finding))
        if len(self.violations) > limit:
            out.append(f"... and {len(self.violations) - limit} more violations")
        used = Counter((d.operation, d.rule) for _, d in self.tolerated)
        out += [f"tolerated x{n}: {op} / {rule}" for (op, rule), n in sorted(used.items())]
        out += [f"not covered x{n}: {route}" for route, n in sorted(self.not_covered.items())]
        return "\n".join(out)


def _generalise(path: str) -> str:
    """/accounts/0123.../d1/database/5f0c.../time_travel/bookmark -> /accounts/*/d1/database/*/time_travel/bookmark"""
    path = re.sub(r"^(/client/v4/accounts/)[^/]+", r"\1*", path)
    return re.sub(r"/[0-9a-f][0-9a-f-]{15,}(?=/|$)", "/*", path)


class ContractChecker:
    """Validates recorded exchanges against the pruned spec."""

    def __init__(self, spec_path: Path = SPEC_PATH, deviations: tuple[Deviation, ...] = DEVIATIONS):
        self.spec_dict = json.loads(Path(spec_path).read_text(encoding="utf-8"))
        # The spec is not re-validated here: the upstream file has one invalid default (the AI run
        # response's `success` default is the string "true"), which does not affect validation.
        spec = SchemaPath.from_dict(self.spec_dict)
        server = urlparse(self.spec_dict["servers"][0]["url"])  # https://api.cloudflare.com/client/v4
        self.host_url = f"{server.scheme}://{server.netloc}"
        self.prefix = server.path.rstrip("/")
        self.deviations = deviations
        self.operations = self._operations()
        self._params = V30RequestParametersValidator(spec)
        self._body = V30RequestBodyValidator(spec)
        self._response = V30ResponseValidator(spec)

    def _operations(self) -> list[Operation]:
        ops = []
        for template, item in self.spec_dict["paths"].items():
            pattern = ""
            for literal, name in re.findall(r"([^{]*)(?:\{(\w+)\})?", template):
                pattern += re.escape(literal)
                if name:
                    pattern += f"(?P<{name}>{'.+' if name in MULTI_SEGMENT_PARAMS else '[^/]+'})"
            regex = re.compile("^" + re.escape(self.prefix) + pattern + "$")
            ops += [Operation(m.upper(), template, item[m]["operationId"], regex) for m in METHODS if m in item]
        # The most concrete match wins: fewer parameters first, then longer templates.
        return sorted(ops, key=lambda op: (op.regex.groups, -len(op.template)))

    def find(self, method: str, path: str) -> tuple[Operation, dict] | None:
        for op in self.operations:
            m = op.regex.match(path)
            if m and op.method == method.upper():
                return op, m.groupdict()
        return None

    def check(self, exchange: Exchange) -> tuple[Operation | None, list[Finding]]:
        """The operation an exchange belongs to (None: not covered) and everything the spec disagrees with."""
        found = self.find(exchange.method, exchange.path)
        if found is None:
            return None, []
        op, variables = found
        request = _RecordedRequest(exchange, op, variables, self.host_url, self.prefix)
        findings = []
        for error in self._params.iter_errors(request):
            location = f"{getattr(error, 'location', 'parameter')}.{getattr(error, 'name', '?')}"
            findings += self._findings(op, "request", error, exchange, location)
        # The recorder leaves out bodies over 2 MB (null in the JSONL): those cannot be checked.
        if exchange.request_body is not None:
            for error in self._body.iter_errors(request):
                if type(error) is not MissingRequestBody:  # an optional body that was left out is fine
                    findings += self._findings(op, "request", error, exchange)
        if exchange.response_body is not None:
            for error in self._response.iter_errors(request, _RecordedResponse(exchange)):
                findings += self._findings(op, f"response {exchange.status}", error, exchange)
        return op, findings

    @staticmethod
    def _findings(
        op: Operation, where: str, error: Exception, exchange: Exchange, location: str = "$"
    ) -> list[Finding]:
        cause = error.__cause__
        schema_errors = list(getattr(cause, "schema_errors", None) or [])
        if not schema_errors:
            name = type(cause).__name__ if cause is not None else type(error).__name__
            return [Finding(op.operation_id, where, location, name, str(cause or error), exchange)]
        findings = []
        for err in schema_errors:
            path = location + "".join(f".{part}" for part in err.absolute_path)
            message = err.message
            if err.context:  # oneOf/anyOf: say which branch came closest and why it failed
                message += f" (closest branch: {best_match(err.context).message})"
            findings.append(Finding(op.operation_id, where, path, err.validator, message, exchange))
        return findings

    def check_all(self, exchanges: list[Exchange]) -> Report:
        report = Report(exchanges=len(exchanges))
        for exchange in exchanges:
            op, findings = self.check(exchange)
            if op is None:
                report.not_covered[f"{exchange.method} {_generalise(exchange.path)}"] += 1
                continue
            report.covered[op.operation_id] += 1
            for finding in findings:
                deviation = next((d for d in self.deviations if d.matches(finding)), None)
                if deviation is not None:
                    report.tolerated.append((finding, deviation))
                elif finding.where == "request" and 400 <= exchange.status < 500:
                    report.rejected_requests.append(finding)
                else:
                    report.violations.append(finding)
        return report
