package sqlstore

import (
	"context"
	"encoding/json"
	"fmt"

	"smp"
)

// The Kafka Connect worker's source offsets (smp.ConnectOffsetStore): one
// row per connector and partition, the partition's canonical JSON (sorted
// keys) as the key.

var _ smp.ConnectOffsetStore = (*DB)(nil)

// ConnectOffsets returns the connector's offsets, read from the primary (a
// task resumes from them).
func (db *DB) ConnectOffsets(ctx context.Context, connector string) ([]smp.ConnectOffset, error) {
	rows, err := db.fresh().QueryContext(ctx, `SELECT partition_key, offset_json FROM connect_offsets WHERE connector = ? ORDER BY partition_key`, connector)
	if err != nil {
		return nil, fmt.Errorf("sqlstore: connect offsets: %w", err)
	}
	defer rows.Close()
	out := []smp.ConnectOffset{}
	for rows.Next() {
		var part, off string
		if err := rows.Scan(&part, &off); err != nil {
			return nil, fmt.Errorf("sqlstore: connect offsets: %w", err)
		}
		var o smp.ConnectOffset
		if err := json.Unmarshal([]byte(part), &o.Partition); err != nil {
			return nil, fmt.Errorf("sqlstore: connect offsets: partition %s: %w", part, err)
		}
		if err := json.Unmarshal([]byte(off), &o.Offset); err != nil {
			return nil, fmt.Errorf("sqlstore: connect offsets: offset of %s: %w", part, err)
		}
		out = append(out, o)
	}
	return out, rows.Err()
}

// PutConnectOffsets writes offsets in one transaction.
func (db *DB) PutConnectOffsets(ctx context.Context, connector string, offsets []smp.ConnectOffset) error {
	type row struct{ part, off string }
	rows := make([]row, 0, len(offsets))
	for _, o := range offsets {
		if len(o.Partition) == 0 {
			return smp.Errorf(smp.EINVALID, "put connect offsets: empty partition")
		}
		part, err := json.Marshal(o.Partition)
		if err != nil {
			return smp.Errorf(smp.EINVALID, "put connect offsets: partition: %v", err)
		}
		var off []byte
		if o.Offset != nil {
			if off, err = json.Marshal(o.Offset); err != nil {
				return smp.Errorf(smp.EINVALID, "put connect offsets: offset: %v", err)
			}
		}
		if err := checkSizes("put connect offsets", chars("connector", connector, 128), chars("partition", string(part), 512), chars("offset", string(off), 60000)); err != nil {
			return err
		}
		rows = append(rows, row{string(part), string(off)})
	}
	tx, err := db.write.BeginTx(ctx, nil)
	if err != nil {
		return fmt.Errorf("sqlstore: begin: %w", err)
	}
	defer tx.Rollback()
	upsert := db.dialect.Upsert("connect_offsets", []string{"connector", "partition_key"}, []string{"connector", "partition_key", "offset_json", "updated_at"})
	now := micros(db.now())
	for _, r := range rows {
		if r.off == "" {
			_, err = tx.ExecContext(ctx, `DELETE FROM connect_offsets WHERE connector = ? AND partition_key = ?`, connector, r.part)
		} else {
			_, err = tx.ExecContext(ctx, upsert, connector, r.part, r.off, now)
		}
		if err != nil {
			return fmt.Errorf("sqlstore: put connect offsets: %w", err)
		}
	}
	if err := tx.Commit(); err != nil {
		return fmt.Errorf("sqlstore: commit: %w", err)
	}
	return nil
}

// DeleteConnectOffsets removes the connector's offsets.
func (db *DB) DeleteConnectOffsets(ctx context.Context, connector string) error {
	return db.exec(ctx, "delete connect offsets", `DELETE FROM connect_offsets WHERE connector = ?`, connector)
}
