-- Troubleshooting, slow performance: the slowest single queries in the window (params: [start, end)).
SELECT query, duration_ms, rows, timestamp
FROM query_log
WHERE timestamp >= ? AND timestamp < ?
ORDER BY duration_ms DESC
LIMIT 10
