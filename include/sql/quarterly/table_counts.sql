-- Rows in each table of PRISM's schema (include/sql/schema/); keep in step with it.
SELECT 'repos' AS table_name, COUNT(*) AS row_count FROM repos
UNION ALL SELECT 'documents', COUNT(*) FROM documents
UNION ALL SELECT 'document_chunks', COUNT(*) FROM document_chunks
UNION ALL SELECT 'document_relationships', COUNT(*) FROM document_relationships
UNION ALL SELECT 'chunks_fts', COUNT(*) FROM chunks_fts
UNION ALL SELECT 'cache_metadata', COUNT(*) FROM cache_metadata
UNION ALL SELECT 'usage_log', COUNT(*) FROM usage_log
UNION ALL SELECT 'security_events', COUNT(*) FROM security_events
UNION ALL SELECT 'query_log', COUNT(*) FROM query_log
