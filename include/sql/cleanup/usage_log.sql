-- Usage logs older than the retention (params: [oldest_date_kept, YYYY-MM-DD]).
DELETE FROM usage_log
WHERE date < ?
