-- The guide's "analyze query performance": the plan of PRISM's hottest lookup (params: [document_id]).
EXPLAIN QUERY PLAN
SELECT * FROM document_chunks WHERE document_id = ?
