-- API keys with abuse events in the window, most abused first (params: [start, end)).
SELECT api_key_id, COUNT(*) AS events, COUNT(DISTINCT ip) AS sources, MAX(created_at) AS last_seen
FROM security_events
WHERE type = 'api_key_abuse' AND created_at >= ? AND created_at < ?
GROUP BY api_key_id
ORDER BY events DESC, api_key_id
LIMIT 20
