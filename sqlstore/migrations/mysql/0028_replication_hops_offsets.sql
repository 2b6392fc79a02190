-- Replication between regions (issue 21, runbook INC-012), MirrorMaker 2's
-- remainder, kept in the target region: the heartbeats of regions reached
-- through others (asia -> china -> us: us keeps asia's, via china), the
-- offset syncs (where each mirrored record landed on the target) and the
-- consumer groups' checkpoints (a source group's offset with its
-- translation on the target, for a consumer failing over).
CREATE TABLE replication_hops (
  path VARCHAR(40) NOT NULL,
  source_region VARCHAR(16) NOT NULL,
  target_region VARCHAR(16) NOT NULL,
  via VARCHAR(200) NOT NULL,
  heartbeat_at BIGINT NOT NULL,
  updated_at BIGINT NOT NULL,
  PRIMARY KEY (path, via)
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4;
CREATE TABLE replication_offset_syncs (
  path VARCHAR(40) NOT NULL,
  topic VARCHAR(128) NOT NULL,
  part INT NOT NULL,
  upstream_offset BIGINT NOT NULL,
  downstream_part INT NOT NULL,
  downstream_offset BIGINT NOT NULL,
  PRIMARY KEY (path, topic, part, upstream_offset)
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4;
CREATE TABLE replication_group_checkpoints (
  path VARCHAR(40) NOT NULL,
  consumer_group VARCHAR(128) NOT NULL,
  topic VARCHAR(128) NOT NULL,
  part INT NOT NULL,
  upstream_offset BIGINT NOT NULL,
  downstream_topic VARCHAR(128) NOT NULL,
  downstream_part INT NOT NULL,
  downstream_offset BIGINT NOT NULL,
  updated_at BIGINT NOT NULL,
  PRIMARY KEY (path, consumer_group, topic, part)
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4;
