-- The log: messages by topic, partition and offset; each partition's next offset.
CREATE TABLE IF NOT EXISTS bus_messages (topic VARCHAR(128) NOT NULL, part INT NOT NULL, off BIGINT NOT NULL,
	msg_key VARCHAR(255) NOT NULL, msg_value MEDIUMBLOB NOT NULL, headers TEXT NOT NULL, ts BIGINT NOT NULL,
	PRIMARY KEY (topic, part, off)) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4;
CREATE TABLE IF NOT EXISTS bus_partitions (topic VARCHAR(128) NOT NULL, part INT NOT NULL, next_off BIGINT NOT NULL,
	PRIMARY KEY (topic, part)) ENGINE=InnoDB;
-- Consumer groups: committed positions, and which member holds each partition until when.
CREATE TABLE IF NOT EXISTS bus_offsets (grp VARCHAR(128) NOT NULL, topic VARCHAR(128) NOT NULL, part INT NOT NULL,
	next_off BIGINT NOT NULL, PRIMARY KEY (grp, topic, part)) ENGINE=InnoDB;
CREATE TABLE IF NOT EXISTS bus_leases (grp VARCHAR(128) NOT NULL, topic VARCHAR(128) NOT NULL, part INT NOT NULL,
	owner VARCHAR(128) NOT NULL, expires_at BIGINT NOT NULL, PRIMARY KEY (grp, topic, part)) ENGINE=InnoDB;
