CREATE TABLE connect_configs (
  connector VARCHAR(128) PRIMARY KEY,
  config_json TEXT NOT NULL,
  target_state VARCHAR(16) NOT NULL,
  updated_at BIGINT NOT NULL
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4;
