-- Full rebuild, step 1: clear chunks (and their full-text rows), then documents (guide: Manual Index Rebuild).
DELETE FROM document_chunks;
DELETE FROM chunks_fts;
DELETE FROM documents
