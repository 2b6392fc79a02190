CREATE TABLE sessions (
  id TEXT PRIMARY KEY,
  owner_kind TEXT NOT NULL,
  owner_id TEXT NOT NULL,
  secret_hash TEXT NOT NULL,
  created_at INTEGER NOT NULL,
  expires_at INTEGER NOT NULL,
  ip TEXT NOT NULL DEFAULT ''
);
CREATE INDEX sessions_owner ON sessions(owner_kind, owner_id, created_at);
CREATE INDEX sessions_expiry ON sessions(expires_at);
CREATE TABLE technician_settings (
  technician_id TEXT PRIMARY KEY,
  work_start TEXT NOT NULL,
  work_end TEXT NOT NULL,
  weekly_days_off TEXT NOT NULL,
  days_off TEXT NOT NULL,
  max_radius_km REAL NOT NULL,
  updated_at INTEGER NOT NULL,
  updated_by TEXT NOT NULL
);
