-- Full rebuild, step 1: clear chunks, then documents (guide: Manual Index Rebuild).
DELETE FROM document_chunks;
DELETE FROM documents
