CREATE TABLE status_components (
  component TEXT PRIMARY KEY,
  state TEXT NOT NULL,
  message TEXT NOT NULL,
  updated_by TEXT NOT NULL,
  updated_at INTEGER NOT NULL
);
