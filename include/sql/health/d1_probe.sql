SELECT 1 AS ok;
SELECT COUNT(*) AS tables FROM sqlite_master
WHERE type = 'table' AND substr(name, 1, 7) <> 'sqlite_' AND substr(name, 1, 4) <> '_cf_'
