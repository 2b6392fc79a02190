CREATE TABLE connect_offsets (
  connector VARCHAR(128) NOT NULL,
  partition_key VARCHAR(512) NOT NULL,
  offset_json TEXT NOT NULL,
  updated_at BIGINT NOT NULL,
  PRIMARY KEY (connector, partition_key)
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4;
