-- The guide's "Analyze query performance" (params: [document_id]): chunk lookups by document
-- should search idx_chunks_document_id, not scan the table.
EXPLAIN QUERY PLAN
SELECT * FROM document_chunks
WHERE document_id = ?
