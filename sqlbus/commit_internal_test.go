package sqlbus

import (
	"context"
	"database/sql"
	"errors"
	"path/filepath"
	"slices"
	"sync"
	"testing"
	"time"

	"smp"
	"smp/internal/sqldb"
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

// fxFinish is a batch finish that inserts upTo into table fx in the bus's
// transaction and registers an after-commit hook counting into ran; cutAt
// makes its first run cut the batch there.
func fxFinish(t *testing.T, l *Bus, cutAt int, calls *[]int, ran *int) smp.BatchFinish {
	t.Helper()
	if _, err := l.write.Exec(`CREATE TABLE fx (up_to INTEGER)`); err != nil {
		t.Fatal(err)
	}
	return func(ctx context.Context, upTo int) error {
		*calls = append(*calls, upTo)
		tx, ok := sqldb.TxFrom(ctx, l.write)
		if !ok {
			return errors.New("no borrowed transaction")
		}
		if _, err := tx.ExecContext(ctx, `INSERT INTO fx (up_to) VALUES (?)`, upTo); err != nil {
			return err
		}
		smp.AfterCommit(ctx, func() { *ran++ })
		if len(*calls) == 1 && cutAt >= 0 {
			return &smp.BatchCut{At: cutAt, Err: errors.New("effect failed")}
		}
		return nil
	}
}

func fxRows(t *testing.T, l *Bus) []int {
	t.Helper()
	rows, err := l.write.Query(`SELECT up_to FROM fx`)
	if err != nil {
		t.Fatal(err)
	}
	defer rows.Close()
	var out []int
	for rows.Next() {
		var v int
		if err := rows.Scan(&v); err != nil {
			t.Fatal(err)
		}
		out = append(out, v)
	}
	return out
}

// TestCommitBatchWithoutLeaseRow: a batch commit that finds no lease row
// at all counts as a lost lease (held false, no error, the offset not
// moved) and its finish's writes still commit, as the handler would have
// written them itself (40846e6: it returned an error, and the records
// were rolled back).
func TestCommitBatchWithoutLeaseRow(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	l := openTest(t, filepath.Join(t.TempDir(), "events.db"), "m1", Config{Partitions: 1})
	var calls []int
	ran := 0
	finish := fxFinish(t, l, -1, &calls, &ran)
	k := tp{topic: "t", partition: 0}
	msgs := []smp.Message{{Offset: 0}, {Offset: 1}}
	held, done, cut, err := l.commitBatch(ctx, "g", k, msgs, 2, finish)
	if err != nil || held || done != 2 || cut != nil {
		t.Fatalf("commit without a lease row: held %v, done %d, cut %v, err %v; want not held, 2, nil, nil", held, done, cut, err)
	}
	if got := fxRows(t, l); !slices.Equal(got, []int{2}) || ran != 1 {
		t.Errorf("the finish's writes: %v, hooks run %d; want [2], 1", got, ran)
	}
	if next, err := l.committed(ctx, "g", k); err != nil || next != 0 {
		t.Errorf("offset %d, %v; want 0 (not moved)", next, err)
	}
}

// TestCommitBatchCut: a finish that cuts the batch at message 1 (its
// effect failed) is rolled back, with its hooks, and run again up to it:
// the offset moves after message 0 only, and the cut's error comes back.
func TestCommitBatchCut(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	l := openTest(t, filepath.Join(t.TempDir(), "events.db"), "m1", Config{Partitions: 1})
	if _, err := l.write.ExecContext(ctx, `INSERT INTO bus_leases (grp, topic, part, owner, expires_at) VALUES (?,?,?,?,?)`,
		"g", "t", 0, "m1", time.Now().Add(time.Minute).UnixMilli()); err != nil {
		t.Fatal(err)
	}
	var calls []int
	ran := 0
	finish := fxFinish(t, l, 1, &calls, &ran)
	k := tp{topic: "t", partition: 0}
	msgs := []smp.Message{{Offset: 10}, {Offset: 11}, {Offset: 12}}
	held, done, cut, err := l.commitBatch(ctx, "g", k, msgs, 3, finish)
	if err != nil || !held || done != 1 || cut == nil {
		t.Fatalf("cut commit: held %v, done %d, cut %v, err %v; want held, 1, the effect's error, nil", held, done, cut, err)
	}
	if !slices.Equal(calls, []int{3, 1}) {
		t.Errorf("finish ran up to %v, want [3 1]", calls)
	}
	if got := fxRows(t, l); !slices.Equal(got, []int{1}) || ran != 1 {
		t.Errorf("the finish's writes: %v, hooks run %d; want [1] (the first run's rolled back), 1", got, ran)
	}
	if next, err := l.committed(ctx, "g", k); err != nil || next != 11 {
		t.Errorf("offset %d, %v; want 11 (after message 0)", next, err)
	}
}
