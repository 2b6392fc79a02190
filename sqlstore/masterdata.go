package sqlstore

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"strings"

	"smp"
)

// Master data (smp.MasterDataStore, smp.MasterDataTx): one table per
// smp.MasterTables entry (migration 0014_masterdata), its fields as
// columns, then version, region and updated_at. The SQL is built from the
// root's table definitions, whose names are constants.

var _ smp.MasterDataStore = (*DB)(nil)
var _ smp.MasterDataTx = (*Tx)(nil)

// masterMeta are the columns every master-data table has after its fields.
var masterMeta = []string{"version", "region", "updated_at"}

func masterColumns(t smp.MasterTable) []string {
	cols := make([]string, 0, len(t.Fields)+len(masterMeta))
	for _, f := range t.Fields {
		cols = append(cols, f.Name)
	}
	return append(cols, masterMeta...)
}

// scanMaster reads a row selected with masterColumns(t).
func scanMaster(t smp.MasterTable, s scanner) (smp.MasterRecord, error) {
	vals := make([]string, len(t.Fields))
	dest := make([]any, 0, len(t.Fields)+len(masterMeta))
	for i := range vals {
		dest = append(dest, &vals[i])
	}
	r := smp.MasterRecord{Table: t.Name, Fields: make(map[string]string, len(t.Fields))}
	var at int64
	dest = append(dest, &r.Version, &r.Region, &at)
	if err := s.Scan(dest...); err != nil {
		return r, err
	}
	for i, f := range t.Fields {
		r.Fields[f.Name] = vals[i]
	}
	r.UpdatedAt = fromMicros(at)
	key := make([]string, len(t.Key))
	for i, k := range t.Key {
		key[i] = r.Fields[k]
	}
	r.Key = strings.Join(key, smp.KeySeparator)
	return r, nil
}

func keyWhere(t smp.MasterTable, key map[string]string) (string, []any) {
	conds := make([]string, len(t.Key))
	args := make([]any, len(t.Key))
	for i, k := range t.Key {
		conds[i] = k + " = ?"
		args[i] = key[k]
	}
	return strings.Join(conds, " AND "), args
}

// FindMasterRecord returns a row. EINVALID for an unknown table or a
// malformed key; ENOTFOUND for a key with no row.
func (db *DB) FindMasterRecord(ctx context.Context, table, key string) (smp.MasterRecord, error) {
	t, err := smp.FindMasterTable(table)
	if err != nil {
		return smp.MasterRecord{}, err
	}
	parts, err := t.SplitKey(key)
	if err != nil {
		return smp.MasterRecord{}, err
	}
	where, args := keyWhere(t, parts)
	r, err := scanMaster(t, db.fresh().QueryRowContext(ctx,
		`SELECT `+strings.Join(masterColumns(t), ", ")+` FROM `+t.Name+` WHERE `+where, args...))
	if errors.Is(err, sql.ErrNoRows) {
		return r, smp.Errorf(smp.ENOTFOUND, "%s %s not found", table, key)
	}
	if err != nil {
		return r, fmt.Errorf("sqlstore: find %s: %w", table, err)
	}
	return r, nil
}

// FindMasterRecords lists a table's rows in key order, after f.After.
func (db *DB) FindMasterRecords(ctx context.Context, f smp.MasterDataFilter) ([]smp.MasterRecord, error) {
	t, err := smp.FindMasterTable(f.Table)
	if err != nil {
		return nil, err
	}
	if f.Limit == 0 {
		f.Limit = 100
	}
	if f.Limit < 1 || f.Limit > 1000 {
		return nil, smp.Errorf(smp.EINVALID, "limit %d: from 1 to 1000", f.Limit)
	}
	q := `SELECT ` + strings.Join(masterColumns(t), ", ") + ` FROM ` + t.Name
	var args []any
	if f.After != "" {
		after, err := t.SplitKey(f.After)
		if err != nil {
			return nil, err
		}
		marks := strings.TrimSuffix(strings.Repeat("?, ", len(t.Key)), ", ")
		q += ` WHERE (` + strings.Join(t.Key, ", ") + `) > (` + marks + `)`
		for _, k := range t.Key {
			args = append(args, after[k])
		}
	}
	q += ` ORDER BY ` + strings.Join(t.Key, ", ") + ` LIMIT ?`
	args = append(args, f.Limit)
	rows, err := db.fresh().QueryContext(ctx, q, args...)
	if err != nil {
		return nil, fmt.Errorf("sqlstore: find %s: %w", t.Name, err)
	}
	defer rows.Close()
	var out []smp.MasterRecord
	for rows.Next() {
		r, err := scanMaster(t, rows)
		if err != nil {
			return nil, fmt.Errorf("sqlstore: find %s: %w", t.Name, err)
		}
		out = append(out, r)
	}
	return out, rows.Err()
}

// PutMasterRecord writes r unless its version is already stored or older
// (the row is locked for the transaction while it decides).
func (tx *Tx) PutMasterRecord(ctx context.Context, r smp.MasterRecord) (smp.MasterRecord, bool, error) {
	t, err := smp.FindMasterTable(r.Table)
	if err != nil {
		return smp.MasterRecord{}, false, err
	}
	key, err := t.Check(r.Fields)
	if err != nil {
		return smp.MasterRecord{}, false, err
	}
	if key != r.Key {
		return smp.MasterRecord{}, false, smp.Errorf(smp.EINVALID, "%s: key %q is not its fields' (%q)", t.Name, r.Key, key)
	}
	if r.Version < 1 {
		return smp.MasterRecord{}, false, smp.Errorf(smp.EINVALID, "%s %s: version %d: must be at least 1", t.Name, key, r.Version)
	}
	if err := checkMasterSizes(r); err != nil {
		return smp.MasterRecord{}, false, err
	}
	parts, _ := t.SplitKey(key)
	where, args := keyWhere(t, parts)
	cols := masterColumns(t)
	before, err := scanMaster(t, tx.tx.QueryRowContext(ctx, `SELECT `+strings.Join(cols, ", ")+` FROM `+t.Name+` WHERE `+where+tx.db.dialect.ForUpdate, args...))
	switch {
	case errors.Is(err, sql.ErrNoRows):
		before = smp.MasterRecord{Table: t.Name, Key: key}
	case err != nil:
		return before, false, fmt.Errorf("sqlstore: read %s: %w", t.Name, err)
	case before.Version >= r.Version:
		return before, false, nil
	}
	vals := make([]any, 0, len(cols))
	for _, f := range t.Fields {
		vals = append(vals, r.Fields[f.Name])
	}
	vals = append(vals, r.Version, r.Region, micros(r.UpdatedAt))
	if _, err := tx.tx.ExecContext(ctx, tx.db.dialect.Upsert(t.Name, t.Key, cols), vals...); err != nil {
		return before, false, fmt.Errorf("sqlstore: put %s: %w", t.Name, err)
	}
	return before, true, nil
}
