package sqlbus

import (
	"context"
	"database/sql"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"smp/internal/wait"
)

// TestOffsetCommitsShareAnFsync: on SQLite the partition consumers' offset
// commits go through the group committer, so twelve commits queued behind a
// running batch are written in one transaction (one fsync), each still
// fenced by its lease: the partition another member holds is not moved.
// Before, each commit was a transaction of its own on the writer: twelve
// commits, eleven fsyncs.
func TestOffsetCommitsShareAnFsync(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	l := openTest(t, filepath.Join(t.TempDir(), "events.db"), "m1", Config{Partitions: 12})
	if l.gc == nil {
		t.Fatal("no group committer on SQLite")
	}
	for p := 0; p < 12; p++ {
		owner := "m1"
		if p == 11 {
			owner = "m2"
		}
		if _, err := l.write.ExecContext(ctx, `INSERT INTO bus_leases (grp, topic, part, owner, expires_at) VALUES (?,?,?,?,?)`,
			"g", "t", p, owner, time.Now().Add(time.Minute).UnixMilli()); err != nil {
			t.Fatal(err)
		}
	}
	started, release := make(chan struct{}), make(chan struct{})
	var releaseOnce sync.Once
	free := func() { releaseOnce.Do(func() { close(release) }) }
	t.Cleanup(free) // before Close: a failed wait must not leave the batch running
	blocker := make(chan error, 1)
	go func() {
		blocker <- l.gc.Run(ctx, func(context.Context, *sql.Tx) error { close(started); <-release; return nil })
	}()
	<-started
	before := l.SQLCounts()
	held := make([]bool, 12)
	errs := make([]error, 12)
	var wg sync.WaitGroup
	for p := range 12 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			held[p], errs[p] = l.commit(ctx, "g", tp{topic: "t", partition: int32(p)}, 5)
		}()
	}
	wait.Until(t, 10*time.Second, "12 offset commits queued behind the running batch", func() bool { return l.gc.Waiting() == 12 })
	free()
	wg.Wait()
	if err := <-blocker; err != nil {
		t.Fatal(err)
	}
	after := l.SQLCounts()
	for p := range 12 {
		if errs[p] != nil {
			t.Fatalf("commit %d: %v", p, errs[p])
		}
		if want := p != 11; held[p] != want {
			t.Errorf("commit of partition %d held = %v, want %v", p, held[p], want)
		}
		next, err := l.committed(ctx, "g", tp{topic: "t", partition: int32(p)})
		if err != nil {
			t.Fatal(err)
		}
		if want := map[bool]int64{true: 5, false: 0}[p != 11]; next != want {
			t.Errorf("partition %d committed at %d, want %d", p, next, want)
		}
	}
	if n := after.WriteCommits - before.WriteCommits; n != 1 {
		t.Errorf("12 offset commits cost %d write commits (fsyncs), want 1", n)
	}
}
