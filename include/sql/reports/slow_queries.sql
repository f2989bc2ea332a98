-- The ten slowest queries on average in the window (params: [start, end)).
SELECT query, AVG(duration_ms) AS avg_duration_ms, MAX(duration_ms) AS max_duration_ms, COUNT(*) AS runs
FROM query_log
WHERE timestamp >= ? AND timestamp < ?
GROUP BY query
ORDER BY avg_duration_ms DESC
LIMIT 10
