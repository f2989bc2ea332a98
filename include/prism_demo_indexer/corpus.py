"""The demo repositories: deterministic synthetic source files, one changed every 12 hours.

A repository's history is a grid of changes: file k changed at ORIGIN + offset(repo) + k * STEP.
Its files as of `now` are the ones changed in the HISTORY before `now` (older files left the demo
repo's window). The same repo, time and `since` always give the same files with the same content,
so indexing twice changes nothing.
"""

from __future__ import annotations

import hashlib
import os
import random
import zlib
from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone

ORIGIN = datetime(2026, 1, 1, tzinfo=timezone.utc)
STEP = timedelta(hours=12)
HISTORY = timedelta(days=14)
WORDS_PER_CHUNK = 24
NOW_ENV = "PRISM_DEMO_NOW"  # pin the demo repos' clock (ISO time), e.g. in tests
WORDS = (
    "index vector query cache worker deploy database chunk document embedding token search latency "
    "request response retry backup restore schema table migration cursor batch stream export import "
    "namespace metadata cosine similarity rank score filter budget quota model inference prompt "
    "context summary relation graph module function class method test config secret key value ttl "
    "hit miss evict region queue cron trigger schedule alert health metric trace span handler router "
    "middleware auth session role permission audit policy rule"
).split()


@dataclass(frozen=True)
class SourceFile:
    repo: str
    path: str
    title: str
    language: str
    changed_at: datetime
    chunks: list[str] = field(hash=False)

    @property
    def doc_id(self) -> str:
        return document_id(self.repo, self.path)

    def chunk_id(self, index: int) -> str:
        return f"{self.doc_id}-{index:02d}"

    @property
    def size_bytes(self) -> int:
        return sum(len(c.encode()) + 1 for c in self.chunks)


def document_id(repo: str, path: str) -> str:
    return "demo-" + hashlib.sha1(f"{repo}:{path}".encode()).hexdigest()[:16]


def parse_time(value: str) -> datetime:
    """An ISO time or D1's 'YYYY-MM-DD HH:MM:SS' (UTC when no zone is given)."""
    parsed = datetime.fromisoformat(value.strip().replace("Z", "+00:00"))
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=timezone.utc)


def clock() -> datetime:
    pinned = os.environ.get(NOW_ENV)
    return parse_time(pinned) if pinned else datetime.now(timezone.utc)


def _offset(repo: str) -> timedelta:
    return timedelta(minutes=zlib.crc32(repo.encode()) % int(STEP.total_seconds() // 60))


def _file(repo: str, k: int) -> SourceFile:
    rng = random.Random(f"{repo}#{k}")
    docs = repo.endswith("/docs")
    folder, stem = rng.choice(WORDS), rng.choice(WORDS)
    path = f"{'docs' if docs else 'src'}/{folder}/{stem}_{k}.{'md' if docs else 'ts'}"
    chunks = [" ".join(rng.choice(WORDS) for _ in range(WORDS_PER_CHUNK)) for _ in range(rng.randint(2, 4))]
    return SourceFile(
        repo,
        path,
        f"{stem.title()} {folder}",
        "markdown" if docs else "typescript",
        ORIGIN + _offset(repo) + k * STEP,
        chunks,
    )


def files(repo: str, now: datetime | None = None, since: datetime | None = None) -> list[SourceFile]:
    """The repo's files as of `now` (changed in the HISTORY before it), only those changed after `since`."""
    now = now or clock()
    first = ORIGIN + _offset(repo)
    if now < first:
        return []
    newest = int((now - first) / STEP)
    oldest = max(0, newest - int(HISTORY / STEP) + 1)
    out = [_file(repo, k) for k in range(oldest, newest + 1)]
    return [f for f in out if since is None or f.changed_at > since]
