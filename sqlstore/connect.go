package sqlstore

import (
	"context"
	"database/sql"
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
	upsert := db.dialect.Upsert("connect_offsets", []string{"connector", "partition_key"}, []string{"connector", "partition_key", "offset_json", "updated_at"})
	now := micros(db.now())
	return db.writeTx(ctx, func(ctx context.Context, tx *sql.Tx) error {
		for _, r := range rows {
			var err error
			if r.off == "" {
				_, err = tx.ExecContext(ctx, `DELETE FROM connect_offsets WHERE connector = ? AND partition_key = ?`, connector, r.part)
			} else {
				_, err = tx.ExecContext(ctx, upsert, connector, r.part, r.off, now)
			}
			if err != nil {
				return fmt.Errorf("sqlstore: put connect offsets: %w", err)
			}
		}
		return nil
	})
}

// DeleteConnectOffsets removes the connector's offsets.
func (db *DB) DeleteConnectOffsets(ctx context.Context, connector string) error {
	return db.exec(ctx, "delete connect offsets", `DELETE FROM connect_offsets WHERE connector = ?`, connector)
}

var _ smp.ConnectConfigStore = (*DB)(nil)

// ConnectorConfigs returns the stored connectors, read from the primary.
func (db *DB) ConnectorConfigs(ctx context.Context) ([]smp.ConnectorConfig, error) {
	rows, err := db.fresh().QueryContext(ctx, `SELECT connector, config_json, target_state FROM connect_configs ORDER BY connector`)
	if err != nil {
		return nil, fmt.Errorf("sqlstore: connector configs: %w", err)
	}
	defer rows.Close()
	var out []smp.ConnectorConfig
	for rows.Next() {
		var c smp.ConnectorConfig
		var cfg string
		if err := rows.Scan(&c.Name, &cfg, &c.Target); err != nil {
			return nil, fmt.Errorf("sqlstore: connector configs: %w", err)
		}
		if err := json.Unmarshal([]byte(cfg), &c.Config); err != nil {
			return nil, fmt.Errorf("sqlstore: connector %s's config: %w", c.Name, err)
		}
		out = append(out, c)
	}
	return out, rows.Err()
}

// PutConnectorConfig creates or replaces a connector's configuration.
func (db *DB) PutConnectorConfig(ctx context.Context, c smp.ConnectorConfig) error {
	switch {
	case c.Name == "":
		return smp.Errorf(smp.EINVALID, "put connector config: empty name")
	case c.Target != "RUNNING" && c.Target != "PAUSED" && c.Target != "STOPPED":
		return smp.Errorf(smp.EINVALID, "put connector config: target state %q: RUNNING, PAUSED or STOPPED", c.Target)
	}
	cfg, err := json.Marshal(c.Config)
	if err != nil {
		return smp.Errorf(smp.EINVALID, "put connector config: %v", err)
	}
	if err := checkSizes("put connector config", chars("connector", c.Name, 128), chars("config", string(cfg), 60000)); err != nil {
		return err
	}
	return db.exec(ctx, "put connector config", db.dialect.Upsert("connect_configs", []string{"connector"},
		[]string{"connector", "config_json", "target_state", "updated_at"}), c.Name, string(cfg), c.Target, micros(db.now()))
}

// DeleteConnectorConfig removes a connector's configuration.
func (db *DB) DeleteConnectorConfig(ctx context.Context, name string) error {
	return db.exec(ctx, "delete connector config", `DELETE FROM connect_configs WHERE connector = ?`, name)
}
