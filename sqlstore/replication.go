package sqlstore

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"time"

	"smp"
)

// Replication's state in the target region (smp.ReplicationStore,
// smp.ReplicationTx): replication_paths and replication_checkpoints.

var (
	_ smp.ReplicationStore = (*DB)(nil)
	_ smp.ReplicationTx    = (*Tx)(nil)
)

const replicationPathCols = `path, source_region, target_region, paused, reason, schema_needed, heartbeat_at, updated_by, updated_at`

type rowScanner interface{ Scan(dest ...any) error }

func scanReplicationPath(r rowScanner) (smp.ReplicationPath, error) {
	var p smp.ReplicationPath
	var paused int
	var hb, up int64
	if err := r.Scan(&p.Path, &p.Source, &p.Target, &paused, &p.Reason, &p.SchemaNeeded, &hb, &p.UpdatedBy, &up); err != nil {
		return p, err
	}
	p.Paused, p.HeartbeatAt, p.UpdatedAt = paused != 0, fromMicros(hb), fromMicros(up)
	return p, nil
}

// DeclareReplicationPath creates the path's row unless it exists.
func (db *DB) DeclareReplicationPath(ctx context.Context, p smp.ReplicationPath) error {
	if err := smp.ValidRegion(p.Source); err != nil {
		return err
	}
	if err := smp.ValidRegion(p.Target); err != nil {
		return err
	}
	if p.Source == p.Target || p.Path != smp.ReplicationPathName(p.Source, p.Target) {
		return smp.Errorf(smp.EINVALID, "replication path %q: must be <source>-to-<target> of two regions", p.Path)
	}
	hb := p.HeartbeatAt
	if hb.IsZero() {
		hb = db.now()
	}
	return db.exec(ctx, "declare replication path", db.dialect.InsertIgnore+` INTO replication_paths (`+replicationPathCols+`) VALUES (?,?,?,0,'',0,?,'',?)`,
		p.Path, p.Source, p.Target, micros(hb), micros(db.now()))
}

// FindReplicationPath returns a path's state, read from the primary.
func (db *DB) FindReplicationPath(ctx context.Context, path string) (smp.ReplicationPath, error) {
	p, err := scanReplicationPath(db.fresh().QueryRowContext(ctx, `SELECT `+replicationPathCols+` FROM replication_paths WHERE path = ?`, path))
	if errors.Is(err, sql.ErrNoRows) {
		return p, smp.Errorf(smp.ENOTFOUND, "replication path %q is not declared", path)
	}
	if err != nil {
		return p, fmt.Errorf("sqlstore: find replication path: %w", err)
	}
	return p, nil
}

// FindReplicationPaths lists the paths, read from the primary.
func (db *DB) FindReplicationPaths(ctx context.Context) ([]smp.ReplicationPath, error) {
	rows, err := db.fresh().QueryContext(ctx, `SELECT `+replicationPathCols+` FROM replication_paths ORDER BY path`)
	if err != nil {
		return nil, fmt.Errorf("sqlstore: find replication paths: %w", err)
	}
	defer rows.Close()
	out := []smp.ReplicationPath{}
	for rows.Next() {
		p, err := scanReplicationPath(rows)
		if err != nil {
			return nil, fmt.Errorf("sqlstore: find replication paths: %w", err)
		}
		out = append(out, p)
	}
	return out, rows.Err()
}

// BeatReplicationPath raises heartbeat_at.
func (db *DB) BeatReplicationPath(ctx context.Context, path string, at time.Time) error {
	if _, err := db.execWrite(ctx, `UPDATE replication_paths SET heartbeat_at = ? WHERE path = ? AND heartbeat_at < ?`, micros(at), path, micros(at)); err != nil {
		return fmt.Errorf("sqlstore: beat replication path: %w", err)
	}
	var n int
	if err := db.write.QueryRowContext(ctx, `SELECT COUNT(*) FROM replication_paths WHERE path = ?`, path).Scan(&n); err != nil {
		return fmt.Errorf("sqlstore: beat replication path: %w", err)
	}
	if n == 0 {
		return smp.Errorf(smp.ENOTFOUND, "replication path %q is not declared", path)
	}
	return nil
}

// ReplicationCheckpoints lists a path's checkpoints, read from the primary.
func (db *DB) ReplicationCheckpoints(ctx context.Context, path string) ([]smp.ReplicationCheckpoint, error) {
	rows, err := db.fresh().QueryContext(ctx, `SELECT path, topic, part, next_offset, updated_at FROM replication_checkpoints WHERE path = ? ORDER BY topic, part`, path)
	if err != nil {
		return nil, fmt.Errorf("sqlstore: replication checkpoints: %w", err)
	}
	defer rows.Close()
	out := []smp.ReplicationCheckpoint{}
	for rows.Next() {
		var c smp.ReplicationCheckpoint
		var up int64
		if err := rows.Scan(&c.Path, &c.Topic, &c.Partition, &c.Next, &up); err != nil {
			return nil, fmt.Errorf("sqlstore: replication checkpoints: %w", err)
		}
		c.UpdatedAt = fromMicros(up)
		out = append(out, c)
	}
	return out, rows.Err()
}

// SaveReplicationCheckpoint raises a checkpoint, never lowers it.
func (db *DB) SaveReplicationCheckpoint(ctx context.Context, c smp.ReplicationCheckpoint) error {
	if c.Topic == "" || c.Next < 0 || c.Partition < 0 {
		return smp.Errorf(smp.EINVALID, "replication checkpoint: topic %q partition %d offset %d", c.Topic, c.Partition, c.Next)
	}
	if err := checkSizes("replication checkpoint", chars("path", c.Path, 40), chars("topic", c.Topic, smp.MaxTopicName)); err != nil {
		return err
	}
	now := micros(db.now())
	if err := db.exec(ctx, "replication checkpoint", db.dialect.InsertIgnore+` INTO replication_checkpoints (path, topic, part, next_offset, updated_at) VALUES (?,?,?,?,?)`,
		c.Path, c.Topic, c.Partition, c.Next, now); err != nil {
		return err
	}
	return db.exec(ctx, "replication checkpoint", `UPDATE replication_checkpoints SET next_offset = ?, updated_at = ? WHERE path = ? AND topic = ? AND part = ? AND next_offset < ?`,
		c.Next, now, c.Path, c.Topic, c.Partition, c.Next)
}

// SetReplicationPathState pauses or resumes a path.
func (tx *Tx) SetReplicationPathState(ctx context.Context, path string, paused bool, reason string, schemaNeeded int, by string) (smp.ReplicationPath, error) {
	before, err := scanReplicationPath(tx.tx.QueryRowContext(ctx, `SELECT `+replicationPathCols+` FROM replication_paths WHERE path = ?`+tx.db.dialect.ForUpdate, path))
	if errors.Is(err, sql.ErrNoRows) {
		return before, smp.Errorf(smp.ENOTFOUND, "replication path %q is not declared", path)
	}
	if err != nil {
		return before, fmt.Errorf("sqlstore: replication path state: %w", err)
	}
	if err := checkSizes("replication path state", chars("reason", reason, 500), chars("updated_by", by, 128)); err != nil {
		return before, err
	}
	if !paused {
		reason, schemaNeeded = "", 0
	}
	p := 0
	if paused {
		p = 1
	}
	if _, err := tx.tx.ExecContext(ctx, `UPDATE replication_paths SET paused = ?, reason = ?, schema_needed = ?, updated_by = ?, updated_at = ? WHERE path = ?`,
		p, reason, schemaNeeded, by, micros(tx.db.now()), path); err != nil {
		return before, fmt.Errorf("sqlstore: replication path state: %w", err)
	}
	return before, nil
}

// BeatReplicationHop raises (creating) a pair's heartbeat through via.
func (db *DB) BeatReplicationHop(ctx context.Context, h smp.ReplicationHop) error {
	if err := smp.ValidRegion(h.Source); err != nil {
		return err
	}
	if err := smp.ValidRegion(h.Target); err != nil {
		return err
	}
	if h.Source == h.Target || h.Path != smp.ReplicationPathName(h.Source, h.Target) || h.Via == "" {
		return smp.Errorf(smp.EINVALID, "replication hop %q via %q: <source>-to-<target> of two regions, through others", h.Path, h.Via)
	}
	if err := checkSizes("replication hop", chars("via", h.Via, 200)); err != nil {
		return err
	}
	at, now := micros(h.HeartbeatAt), micros(db.now())
	if err := db.exec(ctx, "replication hop", db.dialect.InsertIgnore+` INTO replication_hops (path, source_region, target_region, via, heartbeat_at, updated_at) VALUES (?,?,?,?,?,?)`,
		h.Path, h.Source, h.Target, h.Via, at, now); err != nil {
		return err
	}
	return db.exec(ctx, "replication hop", `UPDATE replication_hops SET heartbeat_at = ?, updated_at = ? WHERE path = ? AND via = ? AND heartbeat_at < ?`,
		at, now, h.Path, h.Via, at)
}

// FindReplicationHops lists the pairs reached through other regions, read
// from the primary.
func (db *DB) FindReplicationHops(ctx context.Context) ([]smp.ReplicationHop, error) {
	rows, err := db.fresh().QueryContext(ctx, `SELECT path, source_region, target_region, via, heartbeat_at, updated_at FROM replication_hops ORDER BY path, via`)
	if err != nil {
		return nil, fmt.Errorf("sqlstore: replication hops: %w", err)
	}
	defer rows.Close()
	out := []smp.ReplicationHop{}
	for rows.Next() {
		var h smp.ReplicationHop
		var hb, up int64
		if err := rows.Scan(&h.Path, &h.Source, &h.Target, &h.Via, &hb, &up); err != nil {
			return nil, fmt.Errorf("sqlstore: replication hops: %w", err)
		}
		h.HeartbeatAt, h.UpdatedAt = fromMicros(hb), fromMicros(up)
		out = append(out, h)
	}
	return out, rows.Err()
}

// SaveReplicationOffsetSync keeps the first copy's target offset.
func (db *DB) SaveReplicationOffsetSync(ctx context.Context, s smp.ReplicationOffsetSync) error {
	if s.Topic == "" || s.Partition < 0 || s.Upstream < 0 || s.DownPartition < 0 || s.Downstream < 0 {
		return smp.Errorf(smp.EINVALID, "replication offset sync: topic %q partition %d offsets %d -> %d", s.Topic, s.Partition, s.Upstream, s.Downstream)
	}
	if err := checkSizes("replication offset sync", chars("path", s.Path, 40), chars("topic", s.Topic, smp.MaxTopicName)); err != nil {
		return err
	}
	return db.exec(ctx, "replication offset sync", db.dialect.InsertIgnore+` INTO replication_offset_syncs (path, topic, part, upstream_offset, downstream_part, downstream_offset) VALUES (?,?,?,?,?,?)`,
		s.Path, s.Topic, s.Partition, s.Upstream, s.DownPartition, s.Downstream)
}

// TranslateReplicationOffset: the first mirrored record at or after
// upstream (its first copy), else one past the last one before it.
func (db *DB) TranslateReplicationOffset(ctx context.Context, path, topic string, partition int32, upstream int64) (int32, int64, bool, error) {
	q := db.fresh()
	var part int32
	var off int64
	err := q.QueryRowContext(ctx, `SELECT downstream_part, downstream_offset FROM replication_offset_syncs WHERE path = ? AND topic = ? AND part = ? AND upstream_offset >= ?
		ORDER BY downstream_offset LIMIT 1`, path, topic, partition, upstream).Scan(&part, &off)
	if err == nil {
		return part, off, true, nil
	}
	if !errors.Is(err, sql.ErrNoRows) {
		return 0, 0, false, fmt.Errorf("sqlstore: translate replication offset: %w", err)
	}
	err = q.QueryRowContext(ctx, `SELECT downstream_part, downstream_offset FROM replication_offset_syncs WHERE path = ? AND topic = ? AND part = ? AND upstream_offset < ?
		ORDER BY downstream_offset DESC LIMIT 1`, path, topic, partition, upstream).Scan(&part, &off)
	if errors.Is(err, sql.ErrNoRows) {
		return 0, 0, false, nil
	}
	if err != nil {
		return 0, 0, false, fmt.Errorf("sqlstore: translate replication offset: %w", err)
	}
	return part, off + 1, true, nil
}

// SaveReplicationGroupCheckpoint keeps the newest checkpoint of a group's
// partition.
func (db *DB) SaveReplicationGroupCheckpoint(ctx context.Context, c smp.ReplicationGroupCheckpoint) error {
	if c.Group == "" || c.Topic == "" || c.DownTopic == "" || c.Partition < 0 || c.DownPartition < 0 || c.Upstream < 0 || c.Downstream < 0 {
		return smp.Errorf(smp.EINVALID, "replication group checkpoint: group %q topic %q partition %d offsets %d -> %d", c.Group, c.Topic, c.Partition, c.Upstream, c.Downstream)
	}
	if err := checkSizes("replication group checkpoint", chars("path", c.Path, 40), chars("group", c.Group, smp.MaxGroupName),
		chars("topic", c.Topic, smp.MaxTopicName), chars("downstream topic", c.DownTopic, smp.MaxTopicName)); err != nil {
		return err
	}
	now := micros(db.now())
	if err := db.exec(ctx, "replication group checkpoint", db.dialect.InsertIgnore+` INTO replication_group_checkpoints
		(path, consumer_group, topic, part, upstream_offset, downstream_topic, downstream_part, downstream_offset, updated_at) VALUES (?,?,?,?,?,?,?,?,?)`,
		c.Path, c.Group, c.Topic, c.Partition, c.Upstream, c.DownTopic, c.DownPartition, c.Downstream, now); err != nil {
		return err
	}
	return db.exec(ctx, "replication group checkpoint", `UPDATE replication_group_checkpoints SET upstream_offset = ?, downstream_topic = ?, downstream_part = ?,
		downstream_offset = ?, updated_at = ? WHERE path = ? AND consumer_group = ? AND topic = ? AND part = ?`,
		c.Upstream, c.DownTopic, c.DownPartition, c.Downstream, now, c.Path, c.Group, c.Topic, c.Partition)
}

// ReplicationGroupCheckpoints lists path's group checkpoints, read from
// the primary.
func (db *DB) ReplicationGroupCheckpoints(ctx context.Context, path, group string) ([]smp.ReplicationGroupCheckpoint, error) {
	rows, err := db.fresh().QueryContext(ctx, `SELECT path, consumer_group, topic, part, upstream_offset, downstream_topic, downstream_part, downstream_offset, updated_at
		FROM replication_group_checkpoints WHERE path = ? AND (? = '' OR consumer_group = ?) ORDER BY consumer_group, topic, part`, path, group, group)
	if err != nil {
		return nil, fmt.Errorf("sqlstore: replication group checkpoints: %w", err)
	}
	defer rows.Close()
	out := []smp.ReplicationGroupCheckpoint{}
	for rows.Next() {
		var c smp.ReplicationGroupCheckpoint
		var up int64
		if err := rows.Scan(&c.Path, &c.Group, &c.Topic, &c.Partition, &c.Upstream, &c.DownTopic, &c.DownPartition, &c.Downstream, &up); err != nil {
			return nil, fmt.Errorf("sqlstore: replication group checkpoints: %w", err)
		}
		c.UpdatedAt = fromMicros(up)
		out = append(out, c)
	}
	return out, rows.Err()
}
