-- Replication between regions (issue 21, runbook INC-012), MirrorMaker 2's
-- remainder, kept in the target region: the heartbeats of regions reached
-- through others (asia -> china -> us: us keeps asia's, via china), the
-- offset syncs (where each mirrored record landed on the target) and the
-- consumer groups' checkpoints (a source group's offset with its
-- translation on the target, for a consumer failing over).
CREATE TABLE replication_hops (
  path TEXT NOT NULL,
  source_region TEXT NOT NULL,
  target_region TEXT NOT NULL,
  via TEXT NOT NULL,
  heartbeat_at INTEGER NOT NULL,
  updated_at INTEGER NOT NULL,
  PRIMARY KEY (path, via)
);
CREATE TABLE replication_offset_syncs (
  path TEXT NOT NULL,
  topic TEXT NOT NULL,
  part INTEGER NOT NULL,
  upstream_offset INTEGER NOT NULL,
  downstream_part INTEGER NOT NULL,
  downstream_offset INTEGER NOT NULL,
  PRIMARY KEY (path, topic, part, upstream_offset)
);
CREATE TABLE replication_group_checkpoints (
  path TEXT NOT NULL,
  consumer_group TEXT NOT NULL,
  topic TEXT NOT NULL,
  part INTEGER NOT NULL,
  upstream_offset INTEGER NOT NULL,
  downstream_topic TEXT NOT NULL,
  downstream_part INTEGER NOT NULL,
  downstream_offset INTEGER NOT NULL,
  updated_at INTEGER NOT NULL,
  PRIMARY KEY (path, consumer_group, topic, part)
);
