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
	if _, err := db.write.ExecContext(ctx, `UPDATE replication_paths SET heartbeat_at = ? WHERE path = ? AND heartbeat_at < ?`, micros(at), path, micros(at)); err != nil {
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
