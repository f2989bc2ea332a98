-- Security events by type in the window (params: [start, end)).
SELECT type, COUNT(*) AS events, COUNT(DISTINCT ip) AS sources
FROM security_events
WHERE created_at >= ? AND created_at < ?
GROUP BY type
ORDER BY events DESC
