"""Injected faults: set with --faults SPEC at start, or at run time through /__localflare/faults.

A SPEC is a ';'-separated list of `kind[:key=value,...]`, for example
`429:route=*/query,count=3,retry_after=2;latency:ms=200;drop_download:count=1`.
Kinds and keys are listed in localflare/README.md.
"""

from __future__ import annotations

import fnmatch
import threading
from dataclasses import dataclass, field

KINDS = {
    "429": {"route": "*", "count": 1, "retry_after": 1},
    "5xx": {"route": "*", "count": 1, "status": 503},
    "latency": {"route": "*", "count": -1, "ms": 200},
    "drop_download": {"route": "*", "count": 1, "after_bytes": 1024},
    "export_stall": {"count": 1},
    "mutation_lag": {"seconds": 5.0},
    "url_expiry": {"seconds": 1.0},
    "error_rate": {"rate": 0.05, "start": "", "end": ""},
    "worker_unhealthy": {"count": -1},
    "worker_metrics": {"count": -1, "set": "{}"},  # a JSON object merged into /worker/metrics (any values)
}


@dataclass
class Fault:
    kind: str
    opts: dict = field(default_factory=dict)
    remaining: int = -1  # -1: until cleared

    def to_dict(self) -> dict:
        return {"kind": self.kind, **self.opts, "remaining": self.remaining}


def _coerce(default, raw: str):
    if isinstance(default, bool):
        return raw.lower() in ("1", "true", "yes")
    if isinstance(default, int):
        return int(raw)
    if isinstance(default, float):
        return float(raw)
    return raw


def parse_spec(spec: str) -> list[Fault]:
    faults = []
    for part in filter(None, (p.strip() for p in (spec or "").split(";"))):
        kind, _, rest = part.partition(":")
        faults.append(make_fault(kind.strip(), dict(kv.split("=", 1) for kv in rest.split(",") if kv)))
    return faults


def make_fault(kind: str, raw_opts: dict) -> Fault:
    if kind not in KINDS:
        raise ValueError(f"unknown fault kind {kind!r}; known: {', '.join(sorted(KINDS))}")
    defaults = KINDS[kind]
    opts = {}
    for key, default in defaults.items():
        if key == "count":
            continue
        opts[key] = _coerce(default, str(raw_opts[key])) if key in raw_opts else default
    unknown = set(raw_opts) - set(defaults)
    if unknown:
        raise ValueError(f"fault {kind!r} has no option(s) {sorted(unknown)}; it takes {sorted(defaults)}")
    count = int(raw_opts.get("count", defaults.get("count", -1)))
    return Fault(kind, opts, count)


class FaultBook:
    """Thread-safe list of active faults. `take` consumes one use of the first matching fault."""

    def __init__(self, faults: list[Fault] | None = None):
        self._lock = threading.Lock()
        self._faults: list[Fault] = list(faults or [])
        self.fired: dict[str, int] = {}

    def add(self, fault: Fault) -> None:
        with self._lock:
            self._faults.append(fault)

    def clear(self) -> None:
        with self._lock:
            self._faults.clear()

    def list(self) -> list[dict]:
        with self._lock:
            return [f.to_dict() for f in self._faults]

    def take(self, kind: str, route: str = "") -> Fault | None:
        with self._lock:
            for fault in self._faults:
                if fault.kind != kind:
                    continue
                pattern = fault.opts.get("route", "*")
                if route and not fnmatch.fnmatchcase(route, pattern):
                    continue
                if fault.remaining == 0:
                    continue
                if fault.remaining > 0:
                    fault.remaining -= 1
                self.fired[kind] = self.fired.get(kind, 0) + 1
                return fault
            return None

    def peek(self, kind: str) -> Fault | None:
        with self._lock:
            for fault in self._faults:
                if fault.kind == kind and fault.remaining != 0:
                    return fault
            return None
