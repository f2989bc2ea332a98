"""Vectorize v2: indexes, queries, batched writes, mutation waits, and a streaming export.

Cloudflare has no Vectorize export (the guide's `wrangler vectorize export` does not exist); an export
here pages `list` for ids (1,000 a call) and fetches values and metadata with `get_by_ids`, several
batches in flight at once (`concurrency.ordered_map`), written in listing order.
"""

from __future__ import annotations

import json
import logging
import threading
import time
from collections.abc import Iterable, Iterator
from contextlib import closing
from typing import IO, Any

from airflow_provider_cloudflare.concurrency import ordered_map
from airflow_provider_cloudflare.errors import CloudflareBadRequest, CloudflareError, CloudflareTimeout
from airflow_provider_cloudflare.hooks.cloudflare import CloudflareBaseHook

log = logging.getLogger(__name__)
MAX_VECTORS_PER_WRITE = 5000  # Cloudflare's documented maximum for the HTTP API
MAX_WRITE_BYTES = 95 * 1024 * 1024  # under the 100 MB upload limit
MAX_IDS_PER_DELETE = 100
LIST_PAGE = 1000


class VectorizeHook(CloudflareBaseHook):
    """Cloudflare Vectorize (v2) over the REST API.

    :param get_batch_size: ids per `get_by_ids` call; halves by itself when Cloudflare answers
        "too many ids" (its maximum is not documented). `get_by_ids` and `export_vectors` keep up to
        the connection's `max_in_flight` of these calls waiting on Cloudflare at once.
    """

    hook_name = "Cloudflare Vectorize"
    _batch_size_lock = threading.Lock()  # guards get_batch_size across the calls in flight

    def __init__(self, *args, get_batch_size: int = 100, **kwargs):
        super().__init__(*args, **kwargs)
        self.get_batch_size = get_batch_size

    def _path(self, index: str = "", suffix: str = "") -> str:
        return self.account_path("/vectorize/v2/indexes" + (f"/{index}" if index else "") + suffix)

    # ---- indexes --------------------------------------------------------------------------
    def list_indexes(self) -> list[dict]:
        return self.get(self._path())

    def get_index(self, index: str) -> dict:
        return self.get(self._path(index))

    def create_index(self, index: str, dimensions: int, metric: str, description: str = "") -> dict:
        body = {"name": index, "description": description, "config": {"dimensions": dimensions, "metric": metric}}
        return self.call("POST", self._path(), idempotent=False, json_body=body)

    def delete_index(self, index: str) -> None:
        self.call("DELETE", self._path(index), idempotent=True)

    def info(self, index: str) -> dict:
        """{dimensions, vectorCount, processedUpToMutation, processedUpToDatetime}"""
        return self.get(self._path(index, "/info"))

    async def ainfo(self, index: str) -> dict:
        return await self.aget(self._path(index, "/info"))

    def query(
        self,
        index: str,
        vector: list[float],
        *,
        top_k: int = 5,
        return_values: bool = False,
        return_metadata: str = "none",
        namespace: str | None = None,
        filter: dict | None = None,
    ) -> dict:  # noqa: A002
        body: dict[str, Any] = {
            "vector": vector,
            "topK": top_k,
            "returnValues": return_values,
            "returnMetadata": return_metadata,
        }
        if namespace is not None:
            body["namespace"] = namespace
        if filter:
            body["filter"] = filter
        return self.call("POST", self._path(index, "/query"), idempotent=True, json_body=body)

    # ---- writes ---------------------------------------------------------------------------
    def upsert(self, index: str, vectors: Iterable[dict], *, batch_size: int = MAX_VECTORS_PER_WRITE) -> list[str]:
        """Upsert vectors ({id, values, metadata?, namespace?}) as NDJSON, up to 5,000 a request.

        Returns the mutation ids in order; wait for the last one with `wait_for_mutation`.
        """
        return self._write(index, "upsert", vectors, batch_size)

    def insert(self, index: str, vectors: Iterable[dict], *, batch_size: int = MAX_VECTORS_PER_WRITE) -> list[str]:
        """Insert vectors; an id that exists keeps its old vector."""
        return self._write(index, "insert", vectors, batch_size)

    def _write(self, index: str, verb: str, vectors: Iterable[dict], batch_size: int) -> list[str]:
        if not 1 <= batch_size <= MAX_VECTORS_PER_WRITE:
            raise ValueError(f"batch_size must be 1..{MAX_VECTORS_PER_WRITE}")
        mutations, lines, size = [], [], 0
        for vec in vectors:
            line = json.dumps(vec, separators=(",", ":")).encode() + b"\n"
            if lines and (len(lines) >= batch_size or size + len(line) > MAX_WRITE_BYTES):
                mutations.append(self._send(index, verb, lines))
                lines, size = [], 0
            lines.append(line)
            size += len(line)
        if lines:
            mutations.append(self._send(index, verb, lines))
        return mutations

    def _send(self, index: str, verb: str, lines: list[bytes]) -> str:
        # Same vectors again are harmless for upsert and insert, so both are idempotent.
        result = self.call(
            "POST",
            self._path(index, f"/{verb}"),
            idempotent=True,
            data=b"".join(lines),
            headers={"Content-Type": "application/x-ndjson"},
        )
        return result["mutationId"]

    def delete_by_ids(self, index: str, ids: Iterable[str]) -> list[str]:
        """Delete vectors, 100 ids a request (Cloudflare's cap). Returns the mutation ids."""
        mutations, batch = [], []
        for vid in ids:
            batch.append(vid)
            if len(batch) == MAX_IDS_PER_DELETE:
                mutations.append(self._delete(index, batch))
                batch = []
        if batch:
            mutations.append(self._delete(index, batch))
        return mutations

    def _delete(self, index: str, ids: list[str]) -> str:
        return self.call("POST", self._path(index, "/delete_by_ids"), idempotent=True, json_body={"ids": ids})[
            "mutationId"
        ]

    def wait_for_mutation(
        self,
        index: str,
        mutation_id: str,
        *,
        timeout: float = 600,
        poll_interval: float = 1.0,
        expected_count: int | None = None,
    ) -> dict:
        """Wait until `processedUpToMutation` reaches the mutation (and the count, if given).

        Mutation ids are not ordered, so a later mutation being processed also counts as done only
        when it is this one; pass the last mutation of a series. A trigger waits the same way with
        `amutation_progress` (VectorizeMutationTrigger).
        """
        started = time.monotonic()
        while True:
            done, info = self.mutation_progress(index, mutation_id, expected_count)
            if done:
                return info
            if time.monotonic() - started > timeout:
                raise CloudflareTimeout(
                    f"Vectorize index {index} did not apply mutation {mutation_id} within {timeout:.0f} s "
                    f"(processed up to {info.get('processedUpToMutation')}, {info.get('vectorCount')} vectors)"
                )
            time.sleep(poll_interval)

    def mutation_progress(self, index: str, mutation_id: str, expected_count: int | None = None) -> tuple[bool, dict]:
        """One poll: (is the mutation applied?, the index's info)."""
        info = self.info(index)
        return mutation_applied(info, mutation_id, expected_count), info

    async def amutation_progress(
        self, index: str, mutation_id: str, expected_count: int | None = None
    ) -> tuple[bool, dict]:
        """`mutation_progress` from an event loop."""
        info = await self.ainfo(index)
        return mutation_applied(info, mutation_id, expected_count), info

    # ---- reads ----------------------------------------------------------------------------
    def get_by_ids(self, index: str, ids: Iterable[str]) -> Iterator[dict]:
        """Yield {id, values, metadata, namespace} for the ids that exist, batch after batch in input
        order; `max_in_flight` batches are fetched at once, and `ids` is read lazily."""
        found = ordered_map(lambda batch: self._get_batch(index, batch), self._batches(ids), self.max_in_flight)
        with closing(found):  # stops the calls in flight when the caller stops early
            for vectors in found:
                yield from vectors

    def _batches(self, ids: Iterable[str]) -> Iterator[list[str]]:
        """Lists of `get_batch_size` ids, the size read again for each batch, as a refusal lowers it."""
        batch: list[str] = []
        for vid in ids:
            batch.append(vid)
            if len(batch) >= self.get_batch_size:
                yield batch
                batch = []
        if batch:
            yield batch

    def _get_batch(self, index: str, ids: list[str]) -> list[dict]:
        try:
            return self.call("POST", self._path(index, "/get_by_ids"), idempotent=True, json_body={"ids": ids})
        except CloudflareBadRequest as exc:
            if not _too_many_ids(exc) or len(ids) == 1:
                raise
        with self._batch_size_lock:
            # Other calls in flight may have learnt a smaller size already: use it, and never raise it.
            size = min(max(1, len(ids) // 2), self.get_batch_size)
            if size < self.get_batch_size:
                self.get_batch_size = size
                log.warning("Vectorize get_by_ids refused %d ids; batches of %d from now on", len(ids), size)
        out = []
        for start in range(0, len(ids), size):  # `size` stays fixed while recursion shrinks the default
            out += self._get_batch(index, ids[start : start + size])
        return out

    def list_ids(self, index: str, count: int = LIST_PAGE) -> Iterator[str]:
        """Every vector id, following the cursor (a snapshot taken at the first page)."""
        for item in self.paginate_result_cursor(self._path(index, "/list"), "vectors", {"count": count}):
            yield item["id"]

    def export_vectors(self, index: str, out: IO[bytes]) -> dict:
        """Write every vector as one NDJSON line {id, values, metadata, namespace}, batch after batch in
        listing order (within a batch, in the order Cloudflare answers).

        Ids are listed 1,000 a call and fetched `get_batch_size` a call, `max_in_flight` calls at once;
        memory stays flat (one list page and `max_in_flight` batches at most), and `max_in_flight`
        changes how fast the export runs, not the bytes it writes. Returns {count, dimensions,
        ids_listed, missing}; `missing` counts ids that vanished between listing and fetching (deleted
        while the export ran).
        """
        dims = self.info(index)["dimensions"]
        count = listed = 0

        def listing() -> Iterator[str]:
            nonlocal listed
            for vid in self.list_ids(index):
                listed += 1
                yield vid

        vectors = self.get_by_ids(index, listing())
        with closing(vectors):
            for vec in vectors:
                record = {
                    "id": vec["id"],
                    "values": vec["values"],
                    "metadata": vec.get("metadata") or {},
                    "namespace": vec.get("namespace"),
                }
                if len(record["values"]) != dims:
                    raise CloudflareError(
                        f"vector {vec['id']} has {len(record['values'])} dimensions, the index {dims}"
                    )
                out.write(json.dumps(record, separators=(",", ":")).encode() + b"\n")
                count += 1
        return {"count": count, "dimensions": dims, "ids_listed": listed, "missing": listed - count}

    # ---- metadata indexes -----------------------------------------------------------------
    def list_metadata_indexes(self, index: str) -> list[dict]:
        return self.get(self._path(index, "/metadata_index/list"))["metadataIndexes"]

    def create_metadata_index(self, index: str, property_name: str, index_type: str) -> str:
        body = {"propertyName": property_name, "indexType": index_type}
        return self.call("POST", self._path(index, "/metadata_index/create"), idempotent=True, json_body=body)[
            "mutationId"
        ]


def mutation_applied(info: dict, mutation_id: str, expected_count: int | None = None) -> bool:
    """Whether an index's info shows the mutation processed (and, if given, the expected vector count)."""
    return info.get("processedUpToMutation") == mutation_id and (
        expected_count is None or info.get("vectorCount") == expected_count
    )


def _too_many_ids(exc: CloudflareError) -> bool:
    return exc.code == 40007 or "too many ids" in exc.message.lower()
