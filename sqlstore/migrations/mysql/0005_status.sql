CREATE TABLE status_components (
  component VARCHAR(32) PRIMARY KEY,
  state VARCHAR(16) NOT NULL,
  message TEXT NOT NULL,
  updated_by VARCHAR(128) NOT NULL,
  updated_at BIGINT NOT NULL
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4;
