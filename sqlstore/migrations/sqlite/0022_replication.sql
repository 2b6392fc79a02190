-- Replication between regions (issue 21, runbook INC-012), kept in the
-- target region: each path's state (paused by an operator or by a newer
-- schema than the target knows; the source time of its newest heartbeat,
-- from which its lag is measured) and its checkpoints (the next source
-- offset of each source partition), so a restart resumes where it stopped.
CREATE TABLE replication_paths (
  path TEXT NOT NULL PRIMARY KEY,
  source_region TEXT NOT NULL,
  target_region TEXT NOT NULL,
  paused INTEGER NOT NULL,
  reason TEXT NOT NULL,
  schema_needed INTEGER NOT NULL,
  heartbeat_at INTEGER NOT NULL,
  updated_by TEXT NOT NULL,
  updated_at INTEGER NOT NULL
);
CREATE TABLE replication_checkpoints (
  path TEXT NOT NULL,
  topic TEXT NOT NULL,
  part INTEGER NOT NULL,
  next_offset INTEGER NOT NULL,
  updated_at INTEGER NOT NULL,
  PRIMARY KEY (path, topic, part)
);
