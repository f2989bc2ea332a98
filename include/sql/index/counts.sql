-- What the index holds, to check a rebuild against Vectorize's vectorCount.
SELECT (SELECT COUNT(*) FROM documents) AS documents,
       (SELECT COUNT(*) FROM document_chunks) AS chunks,
       (SELECT COUNT(*) FROM document_chunks WHERE vector_id IS NULL) AS chunks_without_vector
