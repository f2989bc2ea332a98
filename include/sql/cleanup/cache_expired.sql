-- Cache rows that expired before the end of the run's data interval (params: [interval_end]).
DELETE FROM cache_metadata
WHERE expires_at < ?
