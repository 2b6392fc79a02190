CREATE TABLE process_heartbeats (
  id VARCHAR(128) PRIMARY KEY,
  services VARCHAR(200) NOT NULL,
  engine_up TINYINT NOT NULL,
  ws_connections BIGINT NOT NULL,
  beat_at BIGINT NOT NULL,
  expires_at BIGINT NOT NULL,
  KEY process_heartbeats_expires (expires_at)
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4;
