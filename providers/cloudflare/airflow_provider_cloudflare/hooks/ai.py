"""Workers AI text embeddings (a `@cf/...` embedding model the caller names, e.g. `@cf/baai/bge-small-en-v1.5`)."""

from __future__ import annotations

from collections.abc import Iterable, Iterator

from airflow_provider_cloudflare.hooks.cloudflare import CloudflareBaseHook

MAX_INPUTS = 100  # per request, for the bge models


class WorkersAIHook(CloudflareBaseHook):
    hook_name = "Cloudflare Workers AI"

    def embed(self, texts: Iterable[str], model: str) -> Iterator[list[float]]:
        """One vector per text, in order, 100 texts a request."""
        batch: list[str] = []
        for text in texts:
            batch.append(text)
            if len(batch) == MAX_INPUTS:
                yield from self._run(model, batch)
                batch = []
        if batch:
            yield from self._run(model, batch)

    def _run(self, model: str, texts: list[str]) -> list[list[float]]:
        return self.call("POST", self.account_path(f"/ai/run/{model}"), idempotent=True, json_body={"text": texts})[
            "data"
        ]
