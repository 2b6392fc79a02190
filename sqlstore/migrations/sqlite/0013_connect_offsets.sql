CREATE TABLE connect_offsets (
  connector TEXT NOT NULL,
  partition_key TEXT NOT NULL,
  offset_json TEXT NOT NULL,
  updated_at INTEGER NOT NULL,
  PRIMARY KEY (connector, partition_key)
);
