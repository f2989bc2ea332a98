-- Chunks whose document is gone (guide: Database Cleanup), returning their vector ids so the
-- vectors can go too. One statement, so the chunks deleted are exactly the ids returned.
DELETE FROM document_chunks
WHERE document_id NOT IN (SELECT id FROM documents)
RETURNING id, vector_id
