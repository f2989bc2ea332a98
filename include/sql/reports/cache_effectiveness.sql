-- Hits per cache entry by type (guide: Performance Tuning).
SELECT type, SUM(hit_count) AS total_hits, COUNT(*) AS total_entries,
       CAST(SUM(hit_count) AS FLOAT) / COUNT(*) AS hits_per_entry
FROM cache_metadata
GROUP BY type
ORDER BY type
