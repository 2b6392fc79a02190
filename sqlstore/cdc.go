package sqlstore

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"maps"
	"slices"
	"strings"

	"smp"
)

// The embedded change table (smp.ChangeLogStore): on SQLite the triggers
// of migration 0015 append every change of the captured tables to
// cdc_changes; the snapshot builds each row's JSON from the same column
// lists, so a snapshot row equals the change row of the same data.

var _ smp.ChangeLogStore = (*DB)(nil)

// cdcTables are the captured tables and their columns, in the order the
// triggers of migration 0015 (SQLite) write them.
var cdcTables = map[string][]string{
	"orders":            {"id", "customer_id", "city", "service", "lat", "lng", "address", "price_vnd", "stage", "payment_status", "technician_id", "created_at", "stage_changed_at", "dispatch_not_before"},
	"order_transitions": {"id", "order_id", "from_stage", "to_stage", "at", "actor", "reason"},
}

func (db *DB) changeLog() error {
	if db.dialect.Name != "sqlite" {
		return smp.Errorf(smp.EUNAVAILABLE, "no change table on %s: its binlog is the change log", db.dialect.Name)
	}
	return nil
}

// ReadChanges returns up to limit changes after seq.
func (db *DB) ReadChanges(ctx context.Context, after int64, limit int) ([]smp.Change, error) {
	if err := db.changeLog(); err != nil {
		return nil, err
	}
	if err := checkLimit(limit); err != nil {
		return nil, err
	}
	rows, err := db.fresh().QueryContext(ctx, `SELECT seq, tbl, op, row_key, COALESCE(before_json, ''), COALESCE(after_json, ''), at / 1000
		FROM cdc_changes WHERE seq > ? ORDER BY seq LIMIT ?`, after, limit)
	if err != nil {
		return nil, fmt.Errorf("sqlstore: read changes: %w", err)
	}
	defer rows.Close()
	var out []smp.Change
	for rows.Next() {
		var c smp.Change
		var key, before, after string
		if err := rows.Scan(&c.Seq, &c.Table, &c.Op, &key, &before, &after, &c.TsMs); err != nil {
			return nil, fmt.Errorf("sqlstore: read changes: %w", err)
		}
		c.Key = []byte(key)
		if before != "" {
			c.Before = []byte(before)
		}
		if after != "" {
			c.After = []byte(after)
		}
		out = append(out, c)
	}
	return out, rows.Err()
}

// ChangeLogBounds: the change table's AUTOINCREMENT never reuses a seq
// and a rolled-back insert takes none, so every seq below the lowest kept
// was written and removed.
func (db *DB) ChangeLogBounds(ctx context.Context) (purged, last int64, err error) {
	if err := db.changeLog(); err != nil {
		return 0, 0, err
	}
	var lo sql.NullInt64
	err = db.fresh().QueryRowContext(ctx, `SELECT MIN(seq), COALESCE((SELECT seq FROM sqlite_sequence WHERE name = 'cdc_changes'), 0) FROM cdc_changes`).Scan(&lo, &last)
	if err != nil {
		return 0, 0, fmt.Errorf("sqlstore: change log bounds: %w", err)
	}
	if lo.Valid {
		return lo.Int64 - 1, last, nil
	}
	return last, last, nil
}

// SnapshotTables reads the tables and the last seq in one read
// transaction (one consistent view on SQLite's WAL).
func (db *DB) SnapshotTables(ctx context.Context, fn func(table string, key, row []byte) error) (int64, error) {
	if err := db.changeLog(); err != nil {
		return 0, err
	}
	tx, err := db.fresh().BeginTx(ctx, &sql.TxOptions{ReadOnly: true})
	if err != nil {
		return 0, fmt.Errorf("sqlstore: snapshot: %w", err)
	}
	defer tx.Rollback()
	var last int64
	if err := tx.QueryRowContext(ctx, `SELECT COALESCE((SELECT seq FROM sqlite_sequence WHERE name = 'cdc_changes'), 0)`).Scan(&last); err != nil {
		return 0, fmt.Errorf("sqlstore: snapshot: %w", err)
	}
	for _, table := range slices.Sorted(maps.Keys(cdcTables)) {
		var obj []string
		for _, c := range cdcTables[table] {
			obj = append(obj, "'"+c+"', "+c)
		}
		rows, err := tx.QueryContext(ctx, `SELECT json_object('id', id), json_object(`+strings.Join(obj, ", ")+`) FROM `+table+` ORDER BY id`)
		if err != nil {
			return 0, fmt.Errorf("sqlstore: snapshot %s: %w", table, err)
		}
		for rows.Next() {
			var key, row string
			if err := rows.Scan(&key, &row); err != nil {
				rows.Close()
				return 0, fmt.Errorf("sqlstore: snapshot %s: %w", table, err)
			}
			if err := fn(table, []byte(key), []byte(row)); err != nil {
				rows.Close()
				return 0, err
			}
		}
		if err := rows.Close(); err != nil {
			return 0, err
		}
		if err := rows.Err(); err != nil {
			return 0, err
		}
	}
	return last, nil
}

// ReadCapturedRow reads one row of a captured table by id now, as
// SnapshotTables gives it; nil when there is none.
func (db *DB) ReadCapturedRow(ctx context.Context, table, id string) ([]byte, error) {
	if err := db.changeLog(); err != nil {
		return nil, err
	}
	cols, ok := cdcTables[table]
	if !ok {
		return nil, smp.Errorf(smp.EINVALID, "table %q is not captured", table)
	}
	var obj []string
	for _, c := range cols {
		obj = append(obj, "'"+c+"', "+c)
	}
	var row string
	err := db.fresh().QueryRowContext(ctx, `SELECT json_object(`+strings.Join(obj, ", ")+`) FROM `+table+` WHERE id = ?`, id).Scan(&row)
	if errors.Is(err, sql.ErrNoRows) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("sqlstore: read %s %s: %w", table, id, err)
	}
	return []byte(row), nil
}
