package sqldb

import (
	"context"
	"database/sql"
	"fmt"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	dto "github.com/prometheus/client_model/go"
)

const testPage = 4096 // SQLite's default page size

// openCheckpointFixture opens write and read pools on a new file with a
// table of blobs.
func openCheckpointFixture(t *testing.T, opts ...Option) (path string, write, read *sql.DB) {
	t.Helper()
	path = filepath.Join(t.TempDir(), "c.db")
	write, read, err := OpenSQLitePools(path, false, opts...)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { write.Close(); read.Close() })
	if _, err := write.Exec("CREATE TABLE blobs (id INTEGER PRIMARY KEY, b BLOB NOT NULL)"); err != nil {
		t.Fatal(err)
	}
	return path, write, read
}

// writeRows commits n rows of about a page each, 25 to a transaction.
func writeRows(t *testing.T, write *sql.DB, n int) {
	t.Helper()
	ctx := context.Background()
	for done := 0; done < n; {
		tx, err := write.BeginTx(ctx, nil)
		if err != nil {
			t.Fatal(err)
		}
		for i := 0; i < 25 && done < n; i++ {
			if _, err := tx.Exec("INSERT INTO blobs (b) VALUES (zeroblob(4000))"); err != nil {
				t.Fatal(err)
			}
			done++
		}
		if err := tx.Commit(); err != nil {
			t.Fatal(err)
		}
	}
}

func fileSize(t *testing.T, path string) int64 {
	t.Helper()
	fi, err := os.Stat(path)
	if err != nil {
		t.Fatal(err)
	}
	return fi.Size()
}

// TestWriterDoesNotCheckpointInItsCommits: the writer's COMMIT no longer
// runs SQLite's checkpoint at 1,000 pages of WAL (with the background
// checkpointer off, 1,200 pages stay in the WAL and the database file
// keeps its first pages). Before, the commit that took the WAL past 1,000
// pages copied them into the database file and fsynced it while every
// queued writer waited.
func TestWriterDoesNotCheckpointInItsCommits(t *testing.T) {
	t.Parallel()
	path, write, _ := openCheckpointFixture(t, WithCheckpoint(CheckpointConfig{Off: true}))
	dbBefore := fileSize(t, path)
	writeRows(t, write, 1200)
	if wal := fileSize(t, path+"-wal"); wal < 1200*testPage {
		t.Fatalf("WAL is %d pages after 1,200 pages written: the writer checkpointed in a commit", wal/testPage)
	}
	if db := fileSize(t, path); db != dbBefore {
		t.Fatalf("the database file grew from %d to %d bytes: the writer copied pages into it in a commit", dbBefore, db)
	}
}

// TestBackgroundCheckpointCopiesTheWAL: the pages the writer commits
// reach the database file through the background checkpointer (counted in
// smp_sql_checkpoint_seconds), not the writer (whose backstop, 10,000
// pages, is far).
func TestBackgroundCheckpointCopiesTheWAL(t *testing.T) {
	t.Parallel()
	c := NewCounters("store")
	path, write, _ := openCheckpointFixture(t, WithCounters(c), WithCheckpoint(CheckpointConfig{Frames: 200}))
	writeRows(t, write, 600)
	deadline := time.Now().Add(20 * time.Second)
	for fileSize(t, path) < 400*testPage {
		if time.Now().After(deadline) {
			t.Fatalf("database file %d pages 20 s after 600 pages were committed; %d background checkpoints", fileSize(t, path)/testPage, checkpoints(t, c))
		}
		time.Sleep(10 * time.Millisecond) // polling the file the checkpointer writes
	}
	if n := checkpoints(t, c); n < 1 {
		t.Fatalf("smp_sql_checkpoint_seconds counted %d checkpoints", n)
	}
	if f := metricValue(t, c, "smp_sql_checkpoint_failures_total"); f != 0 {
		t.Fatalf("%v failed checkpoints", f)
	}
}

// TestWALBoundedWhenCheckpointsFallBehind: without the background
// checkpoints the writer still checkpoints once the WAL reaches
// WriterFrames pages, so the WAL stays bounded.
func TestWALBoundedWhenCheckpointsFallBehind(t *testing.T) {
	t.Parallel()
	path, write, _ := openCheckpointFixture(t, WithCheckpoint(CheckpointConfig{Off: true, WriterFrames: 200}))
	writeRows(t, write, 1000)
	// At most the backstop's 200 pages plus a transaction's (25 rows of a
	// page or two each) before the WAL is reused.
	if wal := fileSize(t, path+"-wal"); wal > 300*testPage {
		t.Fatalf("WAL is %d pages with WriterFrames 200: unbounded", wal/testPage)
	}
}

func checkpoints(t *testing.T, c *Counters) uint64 {
	t.Helper()
	for _, m := range gather(t, c, "smp_sql_checkpoint_seconds") {
		return m.GetHistogram().GetSampleCount()
	}
	return 0
}

func metricValue(t *testing.T, c *Counters, name string) float64 {
	t.Helper()
	for _, m := range gather(t, c, name) {
		return m.GetCounter().GetValue()
	}
	return 0
}

func gather(t *testing.T, c *Counters, name string) []*dto.Metric {
	t.Helper()
	reg := prometheus.NewRegistry()
	reg.MustRegister(c)
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, mf := range mfs {
		if mf.GetName() == name {
			return mf.Metric
		}
	}
	return nil
}

// TestGroupCommitDurationsObserved: each group commit's COMMIT is timed in
// smp_sql_group_commit_seconds, the histogram that tells a slow fsync
// (or a checkpoint in a commit) in the first-offer tail.
func TestGroupCommitDurationsObserved(t *testing.T) {
	t.Parallel()
	f := newGCFixture(t)
	for i := range 3 {
		if err := f.g.Run(context.Background(), insertKV(fmt.Sprint("d", i))); err != nil {
			t.Fatal(err)
		}
	}
	var n uint64
	for _, m := range gather(t, f.counters, "smp_sql_group_commit_seconds") {
		n = m.GetHistogram().GetSampleCount()
	}
	if n != 3 {
		t.Fatalf("smp_sql_group_commit_seconds counted %d commits, want 3", n)
	}
}
