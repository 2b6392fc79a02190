CREATE TABLE process_heartbeats (
  id TEXT PRIMARY KEY,
  services TEXT NOT NULL,
  engine_up INTEGER NOT NULL,
  ws_connections INTEGER NOT NULL,
  beat_at INTEGER NOT NULL,
  expires_at INTEGER NOT NULL
);
CREATE INDEX process_heartbeats_expires ON process_heartbeats (expires_at);
