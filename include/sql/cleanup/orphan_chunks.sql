-- Chunks whose document is gone (guide: Database Cleanup).
DELETE FROM document_chunks
WHERE document_id NOT IN (SELECT id FROM documents)
