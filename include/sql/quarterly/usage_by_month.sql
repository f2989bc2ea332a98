-- PRISM's own usage log per month (params: [first_day, day_after_last), YYYY-MM-DD).
SELECT substr(date, 1, 7) AS month, SUM(requests) AS requests, SUM(tokens_saved) AS tokens_saved,
       SUM(neurons_used) AS neurons_used, COUNT(DISTINCT date) AS days
FROM usage_log
WHERE date >= ? AND date < ?
GROUP BY substr(date, 1, 7)
ORDER BY month
