-- Troubleshooting, resource exhaustion: PRISM's rate-limit hits in the window (params: [start, end)).
SELECT COUNT(*) AS events, COUNT(DISTINCT ip) AS sources, COUNT(DISTINCT api_key_id) AS api_keys, MAX(created_at) AS last_seen
FROM security_events
WHERE type = 'rate_limited' AND created_at >= ? AND created_at < ?
