-- Documents indexed in the window (params: [start, end)).
SELECT COUNT(*) AS new_documents
FROM documents
WHERE created_at >= ? AND created_at < ?
