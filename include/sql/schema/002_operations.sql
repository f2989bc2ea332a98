-- Operational tables the Worker writes: cache bookkeeping, usage, security events, query timings.
CREATE TABLE IF NOT EXISTS cache_metadata (
  key              TEXT PRIMARY KEY,
  type             TEXT NOT NULL,            -- query | embedding | search
  hit_count        INTEGER NOT NULL DEFAULT 0,
  size_bytes       INTEGER NOT NULL DEFAULT 0,
  created_at       TEXT NOT NULL DEFAULT (datetime('now')),
  last_accessed_at TEXT,
  expires_at       TEXT
);
CREATE INDEX IF NOT EXISTS idx_cache_expires ON cache_metadata(expires_at);

CREATE TABLE IF NOT EXISTS usage_log (
  id            INTEGER PRIMARY KEY AUTOINCREMENT,
  date          TEXT NOT NULL,               -- YYYY-MM-DD
  endpoint      TEXT NOT NULL,
  requests      INTEGER NOT NULL DEFAULT 0,
  tokens_saved  INTEGER NOT NULL DEFAULT 0,
  neurons_used  INTEGER NOT NULL DEFAULT 0
);
CREATE INDEX IF NOT EXISTS idx_usage_date ON usage_log(date);

CREATE TABLE IF NOT EXISTS security_events (
  id           INTEGER PRIMARY KEY AUTOINCREMENT,
  type         TEXT NOT NULL,                -- failed_login | api_key_abuse | unauthorized | forbidden | rate_limited
  ip           TEXT,
  api_key_id   TEXT,
  status_code  INTEGER,
  details      TEXT,
  created_at   TEXT NOT NULL DEFAULT (datetime('now'))
);
CREATE INDEX IF NOT EXISTS idx_security_type_time ON security_events(type, created_at);

CREATE TABLE IF NOT EXISTS query_log (
  id           INTEGER PRIMARY KEY AUTOINCREMENT,
  query        TEXT NOT NULL,
  duration_ms  REAL NOT NULL,
  rows         INTEGER NOT NULL DEFAULT 0,
  timestamp    TEXT NOT NULL DEFAULT (datetime('now'))
);
CREATE INDEX IF NOT EXISTS idx_query_log_time ON query_log(timestamp);
