package sqlbus

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"

	"smp"
)

// importMarker records, in bus_schema_migrations, that a former log file
// was moved into the shared database (in the transaction that moved it):
// a crash before the file was renamed does not import it twice.
const importMarker = "import:"

// ImportFile moves the log kept in the SQLite file at path (events.db,
// where the embedded log lived before it shared the store's database)
// into the shared database: its messages, partition ends and consumer
// groups' committed offsets, in one transaction (ATTACH DATABASE and
// INSERT … SELECT), so the groups resume exactly where they were. Then it
// renames the file, its -wal and -shm to <path>.migrated-<UTC time>.
// A crash before the commit leaves the file in place and nothing of it
// in the shared database; after it, the next call only renames (unless
// the file holds messages that were not moved: ECONFLICT). No file:
// nothing to do. Leases are not moved (members take them again). Open
// calls it with Config.Import. Shared databases only (EINVALID).
func (l *Bus) ImportFile(ctx context.Context, path string) error {
	if !l.shared {
		return smp.Errorf(smp.EINVALID, "sqlbus: import needs a shared database")
	}
	if _, err := os.Stat(path); errors.Is(err, fs.ErrNotExist) {
		return nil
	} else if err != nil {
		return fmt.Errorf("sqlbus: import %s: %w", path, err)
	}
	abs, err := filepath.Abs(path)
	if err != nil {
		return fmt.Errorf("sqlbus: import %s: %w", path, err)
	}
	if err := l.importFile(ctx, abs); err != nil {
		return fmt.Errorf("sqlbus: import %s: %w", path, err)
	}
	suffix := ".migrated-" + l.cfg.Now().UTC().Format("20060102T150405.000000Z")
	// The database file last: while it is there, the next open renames again.
	for _, ext := range []string{"-wal", "-shm", ""} {
		if err := os.Rename(abs+ext, abs+suffix+ext); err != nil && !errors.Is(err, fs.ErrNotExist) {
			return fmt.Errorf("sqlbus: import %s: rename: %w", path, err)
		}
	}
	l.cfg.Logger.Info("sqlbus: moved the former event log into the shared database", "from", path, "renamed_to", abs+suffix)
	return nil
}

func (l *Bus) importFile(ctx context.Context, abs string) (err error) {
	conn, err := l.write.Conn(ctx)
	if err != nil {
		return err
	}
	defer conn.Close()
	if _, err := conn.ExecContext(ctx, `ATTACH DATABASE ? AS old_log`, abs); err != nil {
		return fmt.Errorf("attach: %w", err)
	}
	defer func() {
		if _, derr := conn.ExecContext(context.WithoutCancel(ctx), `DETACH DATABASE old_log`); derr != nil && err == nil {
			err = fmt.Errorf("detach: %w", derr)
		}
	}()
	marker := importMarker + filepath.Base(abs)
	tx, err := conn.BeginTx(ctx, nil)
	if err != nil {
		return err
	}
	defer tx.Rollback()
	var done, tables int
	if err := tx.QueryRowContext(ctx, `SELECT COUNT(*) FROM bus_schema_migrations WHERE version = ?`, marker).Scan(&done); err != nil {
		return err
	}
	if done > 0 {
		// Moved before a crash kept the file from being renamed, unless
		// this is another file: one an older smp wrote after the move
		// (its log starts again at offset 0). Its messages would be lost
		// by a rename, and mixing two logs' offsets is no better: refuse.
		var foreign int
		if err := tx.QueryRowContext(ctx, `SELECT COUNT(*) FROM old_log.bus_messages o WHERE NOT EXISTS (SELECT 1 FROM main.bus_messages m
			WHERE m.topic = o.topic AND m.part = o.part AND m.off = o.off AND m.ts = o.ts AND m.msg_key = o.msg_key)`).Scan(&foreign); err != nil {
			return err
		}
		if foreign > 0 {
			return smp.Errorf(smp.ECONFLICT, "%s holds %d messages that are not the ones moved into the shared database before (written by an older smp after the move?); it was left where it is: read it with an older smp ctl bus, then move it away", abs, foreign)
		}
		return nil
	}
	if err := tx.QueryRowContext(ctx, `SELECT COUNT(*) FROM old_log.sqlite_master WHERE type = 'table' AND name IN ('bus_messages', 'bus_partitions', 'bus_offsets')`).Scan(&tables); err != nil {
		return err
	}
	if tables == 3 {
		for _, q := range []string{
			`INSERT INTO main.bus_partitions (topic, part, next_off) SELECT topic, part, next_off FROM old_log.bus_partitions`,
			`INSERT INTO main.bus_messages (topic, part, off, msg_key, msg_value, headers, ts) SELECT topic, part, off, msg_key, msg_value, headers, ts FROM old_log.bus_messages`,
			`INSERT INTO main.bus_offsets (grp, topic, part, next_off) SELECT grp, topic, part, next_off FROM old_log.bus_offsets`,
		} {
			// A row already there (a log written in the shared database
			// before the import) fails the import rather than mixing two
			// logs' offsets.
			if _, err := tx.ExecContext(ctx, q); err != nil {
				return err
			}
		}
	}
	if _, err := tx.ExecContext(ctx, `INSERT INTO bus_schema_migrations (version, applied_at) VALUES (?, ?)`, marker, l.cfg.Now().UnixMicro()); err != nil {
		return err
	}
	return tx.Commit()
}
