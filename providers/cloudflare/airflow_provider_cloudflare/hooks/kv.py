"""Workers KV: namespaces, key listing with expiration and metadata, bulk reads and writes, snapshots.

Bulk reads (`snapshot`, `get_values`) keep the connection's `max_in_flight` calls waiting on
Cloudflare at once (`concurrency.ordered_map`) and still return their results in key order.
"""

from __future__ import annotations

import base64
import json
import time
from collections.abc import Iterable, Iterator
from contextlib import closing
from itertools import islice
from typing import IO
from urllib.parse import quote

from airflow_provider_cloudflare.concurrency import ordered_map
from airflow_provider_cloudflare.errors import CloudflareBadRequest, CloudflareNotFound
from airflow_provider_cloudflare.hooks.cloudflare import CloudflareBaseHook

MAX_BULK_GET = 100
MAX_BULK_WRITE = 10_000
MAX_BULK_BYTES = 95 * 1024 * 1024  # under the 100 MB request limit


class KVHook(CloudflareBaseHook):
    """Cloudflare Workers KV over the REST API."""

    hook_name = "Cloudflare KV"

    def _path(self, namespace_id: str = "", suffix: str = "") -> str:
        return self.account_path("/storage/kv/namespaces" + (f"/{namespace_id}" if namespace_id else "") + suffix)

    @staticmethod
    def _key(key: str) -> str:
        return quote(key, safe="")

    # ---- namespaces -----------------------------------------------------------------------
    def list_namespaces(self) -> list[dict]:
        return list(self.paginate_pages(self._path(), per_page=100))

    def find_namespace(self, title: str) -> str:
        for ns in self.list_namespaces():
            if ns["title"] == title:
                return ns["id"]
        raise CloudflareNotFound(f"no KV namespace titled {title!r} in account {self.account_id}")

    def create_namespace(self, title: str) -> dict:
        return self.call("POST", self._path(), idempotent=False, json_body={"title": title})

    def delete_namespace(self, namespace_id: str) -> None:
        self.call("DELETE", self._path(namespace_id), idempotent=True)

    # ---- keys and values ------------------------------------------------------------------
    def list_keys(self, namespace_id: str, prefix: str | None = None) -> Iterator[dict]:
        """Every key as {name, expiration?, metadata?}, following the cursor."""
        params = {"limit": 1000, **({"prefix": prefix} if prefix else {})}
        yield from self.paginate_info_cursor(self._path(namespace_id, "/keys"), params)

    def get_value(self, namespace_id: str, key: str) -> bytes:
        return self.request(
            "GET", self._path(namespace_id, f"/values/{self._key(key)}"), idempotent=True, expect_json=False
        ).content

    def put_value(
        self,
        namespace_id: str,
        key: str,
        value: bytes,
        *,
        metadata: dict | None = None,
        expiration: int | None = None,
        expiration_ttl: int | None = None,
    ) -> None:
        params = {k: v for k, v in (("expiration", expiration), ("expiration_ttl", expiration_ttl)) if v is not None}
        path = self._path(namespace_id, f"/values/{self._key(key)}")
        if metadata is None:
            self.call(
                "PUT",
                path,
                idempotent=True,
                params=params,
                data=value,
                headers={"Content-Type": "application/octet-stream"},
            )
        else:
            files = {"value": (None, value), "metadata": (None, json.dumps(metadata))}
            self.call("PUT", path, idempotent=True, params=params, data=None, files=files)

    def delete_value(self, namespace_id: str, key: str) -> None:
        self.call("DELETE", self._path(namespace_id, f"/values/{self._key(key)}"), idempotent=True)

    def bulk_get(self, namespace_id: str, keys: list[str], *, with_metadata: bool = True) -> dict:
        """Up to 100 text values: {key: {value, metadata, expiration?}} (or {key: value}); missing keys are None.

        Raises CloudflareBadRequest when a value is binary (bulk get cannot return those).
        """
        if len(keys) > MAX_BULK_GET:
            raise ValueError(f"bulk_get takes at most {MAX_BULK_GET} keys")
        body = {"keys": keys, "type": "text", "withMetadata": with_metadata}
        return self.call("POST", self._path(namespace_id, "/bulk/get"), idempotent=True, json_body=body)["values"]

    def bulk_write(self, namespace_id: str, items: Iterable[dict]) -> int:
        """Write {key, value: bytes|str, metadata?, expiration?} items, up to 10,000 a request.

        Binary values travel base64-encoded. Returns how many keys were written; raises if
        Cloudflare reports keys it could not write.
        """
        written, batch, size = 0, [], 0
        for item in items:
            entry = _bulk_entry(item)
            entry_size = len(entry["value"]) + len(item["key"]) + 200
            if batch and (len(batch) >= MAX_BULK_WRITE or size + entry_size > MAX_BULK_BYTES):
                written += self._bulk_put(namespace_id, batch)
                batch, size = [], 0
            batch.append(entry)
            size += entry_size
        if batch:
            written += self._bulk_put(namespace_id, batch)
        return written

    def _bulk_put(self, namespace_id: str, batch: list[dict]) -> int:
        result = self.call("PUT", self._path(namespace_id, "/bulk"), idempotent=True, json_body=batch)
        failed = result.get("unsuccessful_keys") or []
        if failed:
            raise CloudflareBadRequest(f"KV bulk write left {len(failed)} keys unwritten, e.g. {failed[:5]}")
        return result.get("successful_key_count", len(batch))

    def bulk_delete(self, namespace_id: str, keys: Iterable[str]) -> int:
        deleted, batch = 0, []
        for key in keys:
            batch.append(key)
            if len(batch) == MAX_BULK_WRITE:
                deleted += self._bulk_delete(namespace_id, batch)
                batch = []
        if batch:
            deleted += self._bulk_delete(namespace_id, batch)
        return deleted

    def _bulk_delete(self, namespace_id: str, batch: list[str]) -> int:
        result = self.call("POST", self._path(namespace_id, "/bulk/delete"), idempotent=True, json_body=batch)
        return result.get("successful_key_count", len(batch))

    # ---- snapshot -------------------------------------------------------------------------
    def snapshot(self, namespace_id: str, out: IO[bytes], *, include_values: bool = True) -> dict:
        """Write every key as an NDJSON line {key, expiration, metadata, value_b64?} in listing order;
        memory stays flat.

        Values come 100 at a time through bulk get, `max_in_flight` calls at once; a batch holding a
        binary value is halved until the binary values stand alone, and those are read with one GET
        each. Keys that expire or vanish during the snapshot are left out and counted. The output and
        the stats are the same whatever `max_in_flight` is.
        """
        stats = {"keys": 0, "values": 0, "vanished": 0, "single_gets": 0}

        def read(batch: list[dict]) -> tuple[list[dict], dict, int]:
            # Each batch counts its own GETs; the counts are added up on this thread, in order.
            counted = {"single_gets": 0}
            return batch, self._values(namespace_id, [k["name"] for k in batch], counted), counted["single_gets"]

        keys = _chunks(self.list_keys(namespace_id), MAX_BULK_GET)
        batches = ordered_map(read, keys, self.max_in_flight) if include_values else ((b, {}, 0) for b in keys)
        with closing(batches):  # stops the calls in flight if writing fails
            for batch, values, single_gets in batches:
                stats["single_gets"] += single_gets
                for key in batch:
                    record = {"key": key["name"], "expiration": key.get("expiration"), "metadata": key.get("metadata")}
                    if include_values:
                        if values.get(key["name"]) is None:
                            stats["vanished"] += 1
                            continue
                        record["value_b64"] = base64.b64encode(values[key["name"]]).decode()
                        stats["values"] += 1
                    out.write(json.dumps(record, separators=(",", ":")).encode() + b"\n")
                    stats["keys"] += 1
        return stats

    def get_values(self, namespace_id: str, keys: list[str]) -> dict[str, bytes | None]:
        """Raw values of any number of keys (None: missing), 100 a request and `max_in_flight` requests
        at once, binary ones one by one."""
        out: dict[str, bytes | None] = {}
        chunks = (keys[i : i + MAX_BULK_GET] for i in range(0, len(keys), MAX_BULK_GET))
        for values in ordered_map(
            lambda chunk: self._values(namespace_id, chunk, {"single_gets": 0}), chunks, self.max_in_flight
        ):
            out.update(values)
        return out

    def _values(self, namespace_id: str, keys: list[str], stats: dict) -> dict[str, bytes | None]:
        """Values of up to 100 keys; bulk get refuses binary values, so a refused batch is halved until
        the binary keys stand alone and are read one by one as raw bytes. `stats` is the caller's own
        (runs in a pool thread: never share one between calls)."""
        try:
            got = self.bulk_get(namespace_id, keys, with_metadata=False)
            return {k: None if v is None else v.encode() for k, v in got.items()}
        except CloudflareBadRequest:
            if len(keys) > 1:
                half = len(keys) // 2
                return {
                    **self._values(namespace_id, keys[:half], stats),
                    **self._values(namespace_id, keys[half:], stats),
                }
        stats["single_gets"] += 1
        try:
            return {keys[0]: self.get_value(namespace_id, keys[0])}
        except CloudflareNotFound:
            return {keys[0]: None}

    def restore_snapshot(self, namespace_id: str, lines: Iterable[bytes], *, now: float | None = None) -> dict:
        """Write back what `snapshot` wrote. Keys that expire within a minute of `now` are skipped: KV
        refuses such expirations, and the keys would be gone anyway."""
        stats = {"written": 0, "skipped_expired": 0}
        soon = (time.time() if now is None else now) + 60

        def items():
            for line in lines:
                if not line.strip():
                    continue
                rec = json.loads(line)
                if "value_b64" not in rec:
                    raise ValueError(
                        f"the snapshot has no value for {rec['key']!r} (taken without values): it cannot be restored"
                    )
                if rec.get("expiration") and rec["expiration"] < soon:
                    stats["skipped_expired"] += 1
                    continue
                yield {
                    "key": rec["key"],
                    "value": base64.b64decode(rec["value_b64"]),
                    "metadata": rec.get("metadata"),
                    "expiration": rec.get("expiration"),
                }

        stats["written"] = self.bulk_write(namespace_id, items())
        return stats


def _chunks(items: Iterable, size: int) -> Iterator[list]:
    """Lists of `size` items (the last may be shorter), read lazily."""
    it = iter(items)
    while chunk := list(islice(it, size)):
        yield chunk


def _bulk_entry(item: dict) -> dict:
    value = item["value"]
    if isinstance(value, str):
        value = value.encode()
    entry = {"key": item["key"], "value": base64.b64encode(value).decode(), "base64": True}
    for field in ("metadata", "expiration", "expiration_ttl"):
        if item.get(field) is not None:
            entry[field] = item[field]
    return entry
