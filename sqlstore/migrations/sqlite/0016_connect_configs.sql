CREATE TABLE connect_configs (
  connector TEXT PRIMARY KEY,
  config_json TEXT NOT NULL,
  target_state TEXT NOT NULL,
  updated_at INTEGER NOT NULL
);
