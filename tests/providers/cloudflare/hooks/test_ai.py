"""WorkersAIHook.embed against localflare's deterministic stand-in for bge-small-en-v1.5."""

from __future__ import annotations

import math

import pytest

from airflow_provider_cloudflare.errors import CloudflareBadRequest
from airflow_provider_cloudflare.hooks.ai import WorkersAIHook
from airflow_provider_cloudflare.hooks.d1 import D1Hook
from airflow_provider_cloudflare.hooks.vectorize import VectorizeHook

MODEL = "@cf/baai/bge-small-en-v1.5"  # the caller names the model

AI_ROUTE = "route:POST /accounts/{account_id}/ai/run/{model_name:path}"


def test_embeddings_have_384_dims_are_normalised_deterministic_and_in_order(cf):
    hook = WorkersAIHook()
    (one,) = hook.embed(["vector index query cache"], model=MODEL)
    assert len(one) == 384 and math.isclose(math.fsum(x * x for x in one), 1.0, rel_tol=1e-4)
    assert list(hook.embed(["vector index query cache"], model=MODEL)) == [one]  # same text, same vector
    texts = ["worker deploy database", "vector index query cache", "token search latency"]
    batch = list(hook.embed(texts, model=MODEL))
    assert batch[1] == one and batch[0] != batch[2]
    assert batch == [next(iter(hook.embed([t], model=MODEL))) for t in texts]  # one per text, in order


def test_embed_is_lazy_and_sends_nothing_for_no_texts(lf_fresh, connect):
    server = lf_fresh(seed=False)
    connect(server, budget={"bulk_rps": 0})
    hook = WorkersAIHook()
    gen = hook.embed(["never sent"], model=MODEL)
    assert list(hook.embed([], model=MODEL)) == []
    assert server.counters().get(AI_ROUTE, 0) == 0
    assert len(next(gen)) == 384 and server.counters()[AI_ROUTE] == 1


def test_250_texts_take_3_requests(lf_fresh, connect):
    server = lf_fresh(seed=False)
    connect(server, budget={"bulk_rps": 0})
    texts = [f"chunk number {i} about vector search" for i in range(250)]
    vectors = list(WorkersAIHook().embed(texts, model=MODEL))
    assert server.counters()[AI_ROUTE] == 3  # 100 + 100 + 50
    assert len(vectors) == 250 and all(len(v) == 384 for v in vectors)
    assert vectors[249] == next(iter(WorkersAIHook().embed([texts[249]], model=MODEL)))  # the last batch kept its order


def test_the_embedding_of_a_demo_chunk_queries_back_to_that_chunk(cf):
    chunks = D1Hook().rows(
        cf.d1_id,
        "SELECT id, content FROM document_chunks WHERE id NOT LIKE 'chk-orphan%' ORDER BY id LIMIT 3 OFFSET 100",
    )
    assert len(chunks) == 3
    vectors = list(WorkersAIHook().embed([c["content"] for c in chunks], model=MODEL))
    for chunk, vector in zip(chunks, vectors):
        top = VectorizeHook().query("claudes-companion", vector, top_k=1)["matches"][0]
        assert top["id"] == chunk["id"] and top["score"] == pytest.approx(1.0, abs=1e-5)


def test_an_unknown_model_is_a_bad_request(cf):
    with pytest.raises(CloudflareBadRequest):
        list(WorkersAIHook().embed(["x"], model="@cf/no/such-model"))
