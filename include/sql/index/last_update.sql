-- When the index last took a document (guide: Incremental Index Update).
SELECT MAX(created_at) AS last_update FROM documents
