-- PRISM core tables: indexed documents, their chunks and the links between them.
-- Chunks and relationships carry no FOREIGN KEY on purpose: the indexer writes them before or
-- without their documents, which is why the guide has an orphan cleanup.
CREATE TABLE IF NOT EXISTS documents (
  id            TEXT PRIMARY KEY,
  path          TEXT NOT NULL,
  title         TEXT NOT NULL,
  language      TEXT,
  size_bytes    INTEGER NOT NULL DEFAULT 0,
  fingerprint   BLOB,                      -- raw sha256 of the source file
  created_at    TEXT NOT NULL DEFAULT (datetime('now')),
  updated_at    TEXT NOT NULL DEFAULT (datetime('now'))
);
CREATE INDEX IF NOT EXISTS idx_documents_created_at ON documents(created_at);

CREATE TABLE IF NOT EXISTS document_chunks (
  id              TEXT PRIMARY KEY,
  document_id     TEXT NOT NULL,
  chunk_index     INTEGER NOT NULL,
  content         TEXT NOT NULL,
  token_count     INTEGER NOT NULL DEFAULT 0,
  vector_id       TEXT,
  embedding_model TEXT,
  created_at      TEXT NOT NULL DEFAULT (datetime('now'))
);
CREATE INDEX IF NOT EXISTS idx_chunks_document_id ON document_chunks(document_id);

CREATE TABLE IF NOT EXISTS document_relationships (
  id                  INTEGER PRIMARY KEY AUTOINCREMENT,
  source_document_id  TEXT NOT NULL,
  target_document_id  TEXT NOT NULL,
  relationship_type   TEXT NOT NULL,
  weight              REAL NOT NULL DEFAULT 1.0,
  created_at          TEXT NOT NULL DEFAULT (datetime('now'))
);
CREATE INDEX IF NOT EXISTS idx_rel_source ON document_relationships(source_document_id);
CREATE INDEX IF NOT EXISTS idx_rel_target ON document_relationships(target_document_id);

-- Full-text search over chunk content. A virtual table: D1's native export refuses databases that have one.
CREATE VIRTUAL TABLE IF NOT EXISTS chunks_fts USING fts5(chunk_id UNINDEXED, content);
