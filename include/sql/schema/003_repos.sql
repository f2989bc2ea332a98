-- Added later: the repositories PRISM indexes. documents.repo_id references repos, but documents
-- was created first, so a dump in creation order inserts documents before repos: restores need
-- deferred foreign keys.
CREATE TABLE IF NOT EXISTS repos (
  id          TEXT PRIMARY KEY,
  name        TEXT NOT NULL UNIQUE,
  url         TEXT,
  created_at  TEXT NOT NULL DEFAULT (datetime('now'))
);
ALTER TABLE documents ADD COLUMN repo_id TEXT REFERENCES repos(id);
