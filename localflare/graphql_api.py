"""GraphQL Analytics API (`POST /client/v4/graphql`), computed from the deterministic traffic history."""

from __future__ import annotations

import json
import time
from datetime import datetime, timezone

from graphql import ExecutionResult, build_schema, execute_sync, parse, validate
from graphql.error import GraphQLSyntaxError
from graphql.validation import VariablesInAllowedPositionRule, specified_rules
from starlette.responses import JSONResponse

from . import traffic
from .core import Req
from .d1 import iso

MAX_LIMIT = 10_000
# How far back each dataset can be queried, and the widest window one query may ask for (seconds).
LOOKBACK = {
    "workersInvocationsAdaptive": 92 * 86400,
    "d1AnalyticsAdaptiveGroups": 31 * 86400,
    "aiInferenceAdaptiveGroups": 31 * 86400,
    "kvOperationsAdaptiveGroups": 31 * 86400,
}
MAX_RANGE = {
    "workersInvocationsAdaptive": 32 * 86400,
    "d1AnalyticsAdaptiveGroups": 32 * 86400,
    "aiInferenceAdaptiveGroups": 32 * 86400,
    "kvOperationsAdaptiveGroups": 32 * 86400,
}

_TIME_FILTERS = """
  datetime: Time  datetime_geq: Time  datetime_gt: Time  datetime_leq: Time  datetime_lt: Time
  datetimeHour: Time  datetimeHour_geq: Time  datetimeHour_gt: Time  datetimeHour_leq: Time  datetimeHour_lt: Time
  date: Date  date_geq: Date  date_gt: Date  date_leq: Date  date_lt: Date
"""
_TIME_ORDER = "datetime_ASC datetime_DESC datetimeHour_ASC datetimeHour_DESC date_ASC date_DESC"

SDL = f"""
scalar Time
scalar Date
scalar string
scalar uint64
scalar float64
scalar bool

type Query {{ viewer: viewer }}

type viewer {{
  accounts(filter: AccountFilter_InputObject!): [account!]!
  budget: uint64
}}

input AccountFilter_InputObject {{ accountTag: string  accountTag_in: [string!] }}

type account {{
  workersInvocationsAdaptive(limit: uint64!, filter: WorkersInvocationsAdaptiveFilter_InputObject, orderBy: [WorkersInvocationsAdaptiveOrderBy!]): [WorkersInvocationsAdaptive!]!
  d1AnalyticsAdaptiveGroups(limit: uint64!, filter: D1AnalyticsAdaptiveGroupsFilter_InputObject, orderBy: [D1AnalyticsAdaptiveGroupsOrderBy!]): [D1AnalyticsAdaptiveGroups!]!
  aiInferenceAdaptiveGroups(limit: uint64!, filter: AiInferenceAdaptiveGroupsFilter_InputObject, orderBy: [AiInferenceAdaptiveGroupsOrderBy!]): [AiInferenceAdaptiveGroups!]!
  kvOperationsAdaptiveGroups(limit: uint64!, filter: KvOperationsAdaptiveGroupsFilter_InputObject, orderBy: [KvOperationsAdaptiveGroupsOrderBy!]): [KvOperationsAdaptiveGroups!]!
}}

input WorkersInvocationsAdaptiveFilter_InputObject {{
  {_TIME_FILTERS}
  scriptName: string  scriptName_in: [string!]  status: string  status_neq: string  status_in: [string!]
  AND: [WorkersInvocationsAdaptiveFilter_InputObject!]
}}
enum WorkersInvocationsAdaptiveOrderBy {{ {_TIME_ORDER} sum_requests_ASC sum_requests_DESC sum_errors_ASC sum_errors_DESC }}
type WorkersInvocationsAdaptive {{
  sum: WorkersInvocationsAdaptiveSum
  quantiles: WorkersInvocationsAdaptiveQuantiles
  avg: WorkersInvocationsAdaptiveAvg
  dimensions: WorkersInvocationsAdaptiveDimensions
}}
type WorkersInvocationsAdaptiveSum {{ requests: uint64 errors: uint64 subrequests: uint64 cpuTimeUs: uint64 wallTime: uint64 }}
type WorkersInvocationsAdaptiveAvg {{ sampleInterval: float64 wallTime: float64 cpuTime: float64 }}
type WorkersInvocationsAdaptiveQuantiles {{
  wallTimeP25: float64 wallTimeP50: float64 wallTimeP75: float64 wallTimeP90: float64 wallTimeP95: float64 wallTimeP99: float64 wallTimeP999: float64
  cpuTimeP25: float64 cpuTimeP50: float64 cpuTimeP75: float64 cpuTimeP90: float64 cpuTimeP95: float64 cpuTimeP99: float64 cpuTimeP999: float64
}}
type WorkersInvocationsAdaptiveDimensions {{ datetime: Time datetimeHour: Time date: Date scriptName: string status: string }}

input D1AnalyticsAdaptiveGroupsFilter_InputObject {{
  {_TIME_FILTERS}
  databaseId: string  databaseId_in: [string!]
  AND: [D1AnalyticsAdaptiveGroupsFilter_InputObject!]
}}
enum D1AnalyticsAdaptiveGroupsOrderBy {{ {_TIME_ORDER} sum_rowsRead_DESC sum_rowsWritten_DESC }}
type D1AnalyticsAdaptiveGroups {{
  sum: D1Sum
  avg: D1Avg
  quantiles: D1Quantiles
  dimensions: D1Dimensions
}}
type D1Sum {{ readQueries: uint64 writeQueries: uint64 rowsRead: uint64 rowsWritten: uint64 queryBatchResponseBytes: uint64 }}
type D1Avg {{ queryBatchTimeMs: float64 sampleInterval: float64 }}
type D1Quantiles {{ queryBatchTimeMsP50: float64 queryBatchTimeMsP90: float64 }}
type D1Dimensions {{ databaseId: string date: Date datetimeHour: Time datetime: Time }}

input AiInferenceAdaptiveGroupsFilter_InputObject {{
  {_TIME_FILTERS}
  modelId: string  modelId_in: [string!]
  AND: [AiInferenceAdaptiveGroupsFilter_InputObject!]
}}
enum AiInferenceAdaptiveGroupsOrderBy {{ {_TIME_ORDER} }}
type AiInferenceAdaptiveGroups {{ count: uint64 sum: AiSum dimensions: AiDimensions }}
type AiSum {{ totalNeurons: float64 totalInputTokens: uint64 totalOutputTokens: uint64 totalRequestBytesIn: uint64 }}
type AiDimensions {{ modelId: string date: Date datetimeHour: Time datetime: Time }}

input KvOperationsAdaptiveGroupsFilter_InputObject {{
  {_TIME_FILTERS}
  namespaceId: string  actionType: string  actionType_in: [string!]
  AND: [KvOperationsAdaptiveGroupsFilter_InputObject!]
}}
enum KvOperationsAdaptiveGroupsOrderBy {{ {_TIME_ORDER} sum_requests_DESC }}
type KvOperationsAdaptiveGroups {{ sum: KvSum dimensions: KvDimensions }}
type KvSum {{ requests: uint64 }}
type KvDimensions {{ actionType: string namespaceId: string date: Date datetimeHour: Time datetime: Time }}

input ZoneWorkersRequestsFilter_InputObject {{
  {_TIME_FILTERS}
  databaseId: string  databaseId_in: [string!]  scriptName: string  scriptName_in: [string!]
  AND: [ZoneWorkersRequestsFilter_InputObject!]
}}
"""
# wrangler's `d1 info` declares its D1 filter variable with this Workers type, and Cloudflare answers
# it: for such a query the variable's declared type is not checked against where it is used.
LENIENT_FILTER_TYPE = "ZoneWorkersRequestsFilter_InputObject"
LENIENT_RULES = tuple(rule for rule in specified_rules if rule is not VariablesInAllowedPositionRule)


class GraphQLError(Exception):
    pass


def _ts(value, is_date: bool = False) -> float:
    try:
        if is_date:
            return datetime.fromisoformat(str(value)).replace(tzinfo=timezone.utc).timestamp()
        return datetime.fromisoformat(str(value).replace("Z", "+00:00")).timestamp()
    except ValueError:
        raise GraphQLError(f"invalid time value {value!r}") from None


def _window(flt: dict, now: float, dataset: str) -> tuple[float, float]:
    """The [start, end) window a filter asks for, checked against the dataset's limits."""
    start, end = None, None
    for f in [flt] + list(flt.get("AND") or []):
        for key, value in f.items():
            field, _, op = key.partition("_")
            if field not in ("datetime", "datetimeHour", "date"):
                continue
            is_date = field == "date"
            t = _ts(value, is_date)
            step = 86400 if is_date else 1
            if op in ("geq", ""):
                start = max(start or t, t)
            if op == "gt":
                start = max(start or t + step, t + step)
            if op in ("leq", ""):
                end = min(end or t + step, t + step)
            if op == "lt":
                end = min(end or t, t)
    if start is None or end is None:
        raise GraphQLError(f"{dataset}: a time range filter is required (for example datetime_geq and datetime_leq)")
    if start < now - LOOKBACK[dataset]:
        raise GraphQLError(f"cannot request data older than {LOOKBACK[dataset] // 86400} days")
    if end - start > MAX_RANGE[dataset]:
        raise GraphQLError("query time range is too large")
    return start, end


def _flat(flt: dict) -> dict:
    out = {}
    for f in [flt] + list(flt.get("AND") or []):
        out.update({k: v for k, v in f.items() if k != "AND"})
    return out


def _selected(info, name: str) -> list[str]:
    for node in info.field_nodes[0].selection_set.selections:
        if getattr(node, "name", None) and node.name.value == name and node.selection_set:
            return [s.name.value for s in node.selection_set.selections if hasattr(s, "name")]
    return []


def _dim_value(dim: str, hour: int):
    if dim in ("datetime", "datetimeHour"):
        return iso(hour * 3600).replace(".000Z", "Z")
    if dim == "date":
        return datetime.fromtimestamp(hour * 3600, timezone.utc).date().isoformat()
    return None


def _sort_and_limit(groups: list[dict], order_by, limit: int) -> list[dict]:
    if not isinstance(limit, int) or not 0 < limit <= MAX_LIMIT:
        raise GraphQLError(f"limit must be positive number and not greater than {MAX_LIMIT}")
    for key in reversed(order_by or []):
        field, _, direction = key.rpartition("_")
        if field.startswith("sum_"):
            get = lambda g, f=field[4:]: (g.get("sum") or {}).get(f, 0)  # noqa: E731
        else:
            get = lambda g, f=field: (g.get("dimensions") or {}).get(f) or ""  # noqa: E731
        groups.sort(key=get, reverse=direction == "DESC")
    return groups[:limit]


class GraphQLService:
    def __init__(self, cfg, faults, prism_db_id, prism_kv_id):
        self.cfg = cfg
        self.faults = faults
        self.prism_db_id = prism_db_id
        self.prism_kv_id = prism_kv_id
        self.schema = build_schema(SDL)
        fields = self.schema.type_map["account"].fields
        fields["workersInvocationsAdaptive"].resolve = self._workers
        fields["d1AnalyticsAdaptiveGroups"].resolve = self._d1
        fields["aiInferenceAdaptiveGroups"].resolve = self._ai
        fields["kvOperationsAdaptiveGroups"].resolve = self._kv
        self.schema.type_map["viewer"].fields["accounts"].resolve = self._accounts

    def error_windows(self):
        fault = self.faults.peek("error_rate")
        if not fault:
            return ()
        start = _ts(fault.opts["start"]) if fault.opts.get("start") else 0
        end = _ts(fault.opts["end"]) if fault.opts.get("end") else 2**40
        return ((start, end, float(fault.opts["rate"])),)

    def _accounts(self, _root, info, filter):  # noqa: A002 - GraphQL argument name
        tags = [filter.get("accountTag")] if filter.get("accountTag") else list(filter.get("accountTag_in") or [])
        for tag in tags:
            if tag != self.cfg.account_id:
                raise GraphQLError("not authorized for that account")
        return [{"accountTag": t} for t in tags]

    def _records(self, flt, dataset):
        now = time.time()
        start, end = _window(flt, now, dataset)
        return traffic.records(start, end, now, self.error_windows())

    def _group(self, info, rows, build):
        """rows: (dims dict, payload); groups by the dimensions the query selected."""
        dims = _selected(info, "dimensions")
        groups: dict[tuple, list] = {}
        for row_dims, payload in rows:
            key = tuple(row_dims.get(d) for d in dims)
            groups.setdefault(key, []).append(payload)
        return [{**build(payloads), "dimensions": dict(zip(dims, key))} for key, payloads in groups.items()]

    def _workers(self, _root, info, limit, filter=None, orderBy=None):  # noqa: A002
        flt = filter or {}
        flat = _flat(flt)
        script = self.cfg.worker_name
        names = [flat["scriptName"]] if "scriptName" in flat else flat.get("scriptName_in") or [script]
        if script not in names:
            return []
        rows = []
        for rec in self._records(flt, "workersInvocationsAdaptive"):
            for status, count in rec["status"].items():
                if "status" in flat and status != flat["status"]:
                    continue
                if "status_neq" in flat and status == flat["status_neq"]:
                    continue
                if "status_in" in flat and status not in flat["status_in"]:
                    continue
                share = count / rec["requests"] if rec["requests"] else 0
                dims = {d: _dim_value(d, rec["hour"]) for d in ("datetime", "datetimeHour", "date")}
                dims.update(scriptName=script, status=status)
                rows.append((dims, (rec, status, count, share)))

        def build(payloads):
            hist = [0] * (len(traffic.EDGES_MS) - 1)
            requests = errors = sub = cpu = wall = 0
            for rec, status, count, share in payloads:
                requests += count
                errors += count if status != "success" else 0
                sub += round(rec["subrequests"] * share)
                cpu += round(rec["cpu_time_us"] * share)
                wall += round(rec["wall_time_us"] * share)
                hist = [h + round(c * share) for h, c in zip(hist, rec["hist"])]
            q = {
                f"wallTimeP{p}": traffic.quantile(hist, v) * 1000
                for p, v in (
                    ("25", 0.25),
                    ("50", 0.5),
                    ("75", 0.75),
                    ("90", 0.9),
                    ("95", 0.95),
                    ("99", 0.99),
                    ("999", 0.999),
                )
            }
            q.update({k.replace("wallTime", "cpuTime"): v / 20 for k, v in q.items()})
            return {
                "sum": {"requests": requests, "errors": errors, "subrequests": sub, "cpuTimeUs": cpu, "wallTime": wall},
                "quantiles": q,
                "avg": {
                    "sampleInterval": 1.0,
                    "wallTime": wall / requests if requests else 0.0,
                    "cpuTime": cpu / requests if requests else 0.0,
                },
            }

        return _sort_and_limit(self._group(info, rows, build), orderBy, limit)

    def _d1(self, _root, info, limit, filter=None, orderBy=None):  # noqa: A002
        flt = filter or {}
        flat = _flat(flt)
        wanted = [flat["databaseId"]] if "databaseId" in flat else flat.get("databaseId_in") or [self.prism_db_id()]
        db_id = self.prism_db_id()
        if db_id not in wanted:
            return []
        rows = []
        for rec in self._records(flt, "d1AnalyticsAdaptiveGroups"):
            dims = {d: _dim_value(d, rec["hour"]) for d in ("datetime", "datetimeHour", "date")}
            dims["databaseId"] = db_id
            rows.append((dims, rec))

        def build(recs):
            total_q = sum(r["d1_read_queries"] + r["d1_write_queries"] for r in recs)
            return {
                "sum": {
                    "readQueries": sum(r["d1_read_queries"] for r in recs),
                    "writeQueries": sum(r["d1_write_queries"] for r in recs),
                    "rowsRead": sum(r["d1_rows_read"] for r in recs),
                    "rowsWritten": sum(r["d1_rows_written"] for r in recs),
                    "queryBatchResponseBytes": total_q * 512,
                },
                "avg": {"queryBatchTimeMs": 2.5, "sampleInterval": 1.0},
                "quantiles": {"queryBatchTimeMsP50": 1.8, "queryBatchTimeMsP90": 6.4},
            }

        return _sort_and_limit(self._group(info, rows, build), orderBy, limit)

    def _ai(self, _root, info, limit, filter=None, orderBy=None):  # noqa: A002
        flt = filter or {}
        flat = _flat(flt)
        model = "@cf/baai/bge-small-en-v1.5"
        wanted = [flat["modelId"]] if "modelId" in flat else flat.get("modelId_in") or [model]
        if model not in wanted:
            return []
        rows = []
        for rec in self._records(flt, "aiInferenceAdaptiveGroups"):
            dims = {d: _dim_value(d, rec["hour"]) for d in ("datetime", "datetimeHour", "date")}
            dims["modelId"] = model
            rows.append((dims, rec))

        def build(recs):
            calls = sum(r["ai_requests"] for r in recs)
            return {
                "count": calls,
                "sum": {
                    "totalNeurons": float(sum(r["neurons"] for r in recs)),
                    "totalInputTokens": calls * 96,
                    "totalOutputTokens": 0,
                    "totalRequestBytesIn": calls * 410,
                },
            }

        return _sort_and_limit(self._group(info, rows, build), orderBy, limit)

    def _kv(self, _root, info, limit, filter=None, orderBy=None):  # noqa: A002
        flt = filter or {}
        flat = _flat(flt)
        ns = self.prism_kv_id()
        if flat.get("namespaceId") not in (None, ns):
            return []
        rows = []
        for rec in self._records(flt, "kvOperationsAdaptiveGroups"):
            for action, key in (
                ("read", "kv_reads"),
                ("write", "kv_writes"),
                ("delete", "kv_deletes"),
                ("list", "kv_lists"),
            ):
                if "actionType" in flat and action != flat["actionType"]:
                    continue
                if "actionType_in" in flat and action not in flat["actionType_in"]:
                    continue
                dims = {d: _dim_value(d, rec["hour"]) for d in ("datetime", "datetimeHour", "date")}
                dims.update(actionType=action, namespaceId=ns)
                rows.append((dims, rec[key]))
        return _sort_and_limit(self._group(info, rows, lambda vals: {"sum": {"requests": sum(vals)}}), orderBy, limit)

    def _run(self, query: str, variables, operation_name) -> ExecutionResult:
        try:
            document = parse(query)
        except GraphQLSyntaxError as err:
            return ExecutionResult(None, [err])
        errors = validate(self.schema, document, LENIENT_RULES if LENIENT_FILTER_TYPE in query else None)
        if errors:
            return ExecutionResult(None, errors)
        return execute_sync(
            self.schema,
            document,
            root_value={"viewer": {"budget": self.cfg.graphql_rate_limit}},
            variable_values=variables,
            operation_name=operation_name,
        )

    def handle(self, req: Req) -> JSONResponse:
        try:
            body = json.loads(req.body or b"")
        except ValueError:
            return JSONResponse(
                {"data": None, "errors": [{"message": "failed to parse the request body as JSON"}]}, status_code=400
            )
        if not isinstance(body, dict) or not isinstance(body.get("query"), str):
            return JSONResponse(
                {"data": None, "errors": [{"message": "the request body needs a 'query' string"}]}, status_code=400
            )
        result = self._run(body["query"], body.get("variables") or None, body.get("operationName"))
        out = {"data": result.data, "errors": None}
        if result.errors:
            stamp = iso(time.time())
            out["errors"] = [
                {
                    "message": e.message,
                    "path": e.path,
                    "locations": [loc._asdict() for loc in e.locations or []] or None,
                    "extensions": {"timestamp": stamp},
                }
                for e in result.errors
            ]
        return JSONResponse(out, status_code=200)
