// Package sqlitedsn builds the one SQLite configuration SMP uses for every
// database file: WAL, fsync on every commit (what was acknowledged is
// durable), a busy timeout, and write transactions that take the write
// lock at BEGIN (no deadlock upgrading a read lock).
package sqlitedsn

import (
	"net/url"
	"path/filepath"
)

// For returns the modernc.org/sqlite DSN of the file at path.
func For(path string, foreignKeys bool) (string, error) {
	abs, err := filepath.Abs(path)
	if err != nil {
		return "", err
	}
	q := url.Values{}
	q.Add("_pragma", "busy_timeout(10000)")
	q.Add("_pragma", "journal_mode(WAL)")
	q.Add("_pragma", "synchronous(FULL)")
	if foreignKeys {
		q.Add("_pragma", "foreign_keys(ON)")
	}
	q.Set("_txlock", "immediate")
	return "file:" + abs + "?" + q.Encode(), nil
}
