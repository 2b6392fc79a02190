-- Replication between regions (issue 21, runbook INC-012), kept in the
-- target region: each path's state (paused by an operator or by a newer
-- schema than the target knows; the source time of its newest heartbeat,
-- from which its lag is measured) and its checkpoints (the next source
-- offset of each source partition), so a restart resumes where it stopped.
CREATE TABLE replication_paths (
  path VARCHAR(40) NOT NULL PRIMARY KEY,
  source_region VARCHAR(16) NOT NULL,
  target_region VARCHAR(16) NOT NULL,
  paused TINYINT NOT NULL,
  reason VARCHAR(500) NOT NULL,
  schema_needed INT NOT NULL,
  heartbeat_at BIGINT NOT NULL,
  updated_by VARCHAR(128) NOT NULL,
  updated_at BIGINT NOT NULL
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4;
CREATE TABLE replication_checkpoints (
  path VARCHAR(40) NOT NULL,
  topic VARCHAR(128) NOT NULL,
  part INT NOT NULL,
  next_offset BIGINT NOT NULL,
  updated_at BIGINT NOT NULL,
  PRIMARY KEY (path, topic, part)
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4;
