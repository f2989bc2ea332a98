"""Helpers for the hook tests that prove calls overlap: what localflare is working on at once."""

from __future__ import annotations

import json
import threading
from pathlib import Path


class ServerInFlight(threading.Thread):
    """While a block runs, samples how many requests to one route localflare has received but not yet
    answered: received from its counters (counted on arrival), answered from its exchange record
    (written once the answer is ready). The counters are read first, so a sample never overstates.
    `most` is the highest sample: 2 or more means the server worked on two calls at once."""

    def __init__(self, server, record: Path, method: str, route: str, suffix: str):
        super().__init__(daemon=True)
        self.server, self.record, self.method, self.suffix = server, record, method, suffix
        self.key = f"route:{method} {route}"
        self.done = threading.Event()
        self.most, self.answered, self.error = 0, 0, None

    def __enter__(self):
        self.offset = self.record.stat().st_size
        self.received = self.server.counters().get(self.key, 0)
        self.start()
        return self

    def __exit__(self, *exc):
        self.done.set()
        self.join()
        assert self.error is None, self.error

    def run(self):
        try:
            while not self.done.is_set():
                received = self.server.counters().get(self.key, 0) - self.received
                with open(self.record, "rb") as fh:
                    fh.seek(self.offset)
                    data = fh.read()
                complete = data[: data.rfind(b"\n") + 1]  # a line being written is read next time
                self.offset += len(complete)
                for entry in map(json.loads, complete.splitlines()):
                    self.answered += entry["method"] == self.method and entry["path"].endswith(self.suffix)
                self.most = max(self.most, received - self.answered)
                self.done.wait(0.01)
        except Exception as exc:  # reported by __exit__
            self.error = exc


def bulk_threads() -> list[threading.Thread]:
    return [t for t in threading.enumerate() if t.name.startswith("cloudflare-bulk")]
