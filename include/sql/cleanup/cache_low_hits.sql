-- Rarely hit cache rows older than the cutoff (params: [min_hit_count, created_before]).
DELETE FROM cache_metadata
WHERE hit_count < ?
  AND created_at < ?
