CREATE TABLE sessions (
  id VARCHAR(32) PRIMARY KEY,
  owner_kind VARCHAR(16) NOT NULL,
  owner_id VARCHAR(64) NOT NULL,
  secret_hash CHAR(64) NOT NULL,
  created_at BIGINT NOT NULL,
  expires_at BIGINT NOT NULL,
  ip VARCHAR(64) NOT NULL DEFAULT '',
  KEY sessions_owner (owner_kind, owner_id, created_at),
  KEY sessions_expiry (expires_at)
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4;
CREATE TABLE technician_settings (
  technician_id VARCHAR(64) PRIMARY KEY,
  work_start VARCHAR(5) NOT NULL,
  work_end VARCHAR(5) NOT NULL,
  weekly_days_off VARCHAR(32) NOT NULL,
  days_off TEXT NOT NULL,
  max_radius_km DOUBLE NOT NULL,
  updated_at BIGINT NOT NULL,
  updated_by VARCHAR(200) NOT NULL
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4;
