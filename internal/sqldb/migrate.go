package sqldb

import (
	"context"
	"database/sql"
	"fmt"
	"io/fs"
	"sort"
	"strings"
	"time"
)

// Migrations is a set of embedded per-dialect migration folders:
// <Dir>/<dialect>/NNNN_name.sql, applied in name order, each recorded in
// Table by its name without ".sql".
type Migrations struct {
	FS  fs.FS
	Dir string
	// Table records applied versions (several packages sharing one
	// database keep separate tables).
	Table string
	// Lock names the MySQL advisory lock that keeps several processes from
	// migrating at once.
	Lock string
	Now  func() time.Time
}

// Migrate applies the pending migrations of d on db. MySQL commits DDL
// statement by statement; SQLite runs each migration in one transaction.
// Statements in a file are separated by ";\n".
func (m Migrations) Migrate(ctx context.Context, db *sql.DB, d Dialect) error {
	if m.Now == nil {
		m.Now = time.Now
	}
	conn, err := db.Conn(ctx)
	if err != nil {
		return fmt.Errorf("migrate: %w", err)
	}
	defer conn.Close()
	if d.Name == MySQL.Name {
		var got sql.NullInt64
		if err := conn.QueryRowContext(ctx, `SELECT GET_LOCK(?, 60)`, m.Lock).Scan(&got); err != nil || got.Int64 != 1 {
			return fmt.Errorf("migration lock: %v", err)
		}
		defer conn.ExecContext(context.WithoutCancel(ctx), `SELECT RELEASE_LOCK(?)`, m.Lock)
	}
	if _, err := conn.ExecContext(ctx, `CREATE TABLE IF NOT EXISTS `+m.Table+` (version VARCHAR(64) PRIMARY KEY, applied_at BIGINT NOT NULL)`); err != nil {
		return fmt.Errorf("migrations table: %w", err)
	}
	dir := m.Dir + "/" + d.Name
	entries, err := fs.ReadDir(m.FS, dir)
	if err != nil {
		return fmt.Errorf("read migrations: %w", err)
	}
	sort.Slice(entries, func(i, j int) bool { return entries[i].Name() < entries[j].Name() })
	for _, e := range entries {
		version := strings.TrimSuffix(e.Name(), ".sql")
		var n int
		if err := conn.QueryRowContext(ctx, `SELECT COUNT(*) FROM `+m.Table+` WHERE version = ?`, version).Scan(&n); err != nil {
			return fmt.Errorf("check migration %s: %w", version, err)
		}
		if n > 0 {
			continue
		}
		body, err := fs.ReadFile(m.FS, dir+"/"+e.Name())
		if err != nil {
			return err
		}
		tx, err := conn.BeginTx(ctx, nil)
		if err != nil {
			return err
		}
		for _, stmt := range strings.Split(string(body), ";\n") {
			if strings.TrimSpace(stmt) == "" {
				continue
			}
			if _, err := tx.ExecContext(ctx, stmt); err != nil {
				tx.Rollback()
				return fmt.Errorf("migration %s: %w", version, err)
			}
		}
		if _, err := tx.ExecContext(ctx, `INSERT INTO `+m.Table+` (version, applied_at) VALUES (?, ?)`, version, m.Now().UnixMicro()); err != nil {
			tx.Rollback()
			return err
		}
		if err := tx.Commit(); err != nil {
			return fmt.Errorf("commit migration %s: %w", version, err)
		}
	}
	return nil
}
