-- Relationships with a missing source or target document.
DELETE FROM document_relationships
WHERE source_document_id NOT IN (SELECT id FROM documents)
   OR target_document_id NOT IN (SELECT id FROM documents)
