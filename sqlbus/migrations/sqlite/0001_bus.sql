-- The log: messages by topic, partition and offset; each partition's next offset.
CREATE TABLE IF NOT EXISTS bus_messages (topic TEXT NOT NULL, part INTEGER NOT NULL, off INTEGER NOT NULL,
	msg_key TEXT NOT NULL, msg_value BLOB NOT NULL, headers TEXT NOT NULL, ts INTEGER NOT NULL, PRIMARY KEY (topic, part, off));
CREATE TABLE IF NOT EXISTS bus_partitions (topic TEXT NOT NULL, part INTEGER NOT NULL, next_off INTEGER NOT NULL, PRIMARY KEY (topic, part));
-- Consumer groups: committed positions, and which member holds each partition until when.
CREATE TABLE IF NOT EXISTS bus_offsets (grp TEXT NOT NULL, topic TEXT NOT NULL, part INTEGER NOT NULL, next_off INTEGER NOT NULL,
	PRIMARY KEY (grp, topic, part));
CREATE TABLE IF NOT EXISTS bus_leases (grp TEXT NOT NULL, topic TEXT NOT NULL, part INTEGER NOT NULL, owner TEXT NOT NULL,
	expires_at INTEGER NOT NULL, PRIMARY KEY (grp, topic, part));
