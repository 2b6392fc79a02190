package sqlbus_test

import (
	"context"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"sync"
	"testing"
	"time"

	"smp"
	"smp/sqlbus"
	"smp/sqlstore"
)

// fillFormerLog writes what a data dir held before the log moved into
// smp.db: events.db with 30 messages on 3 partitions, group g having
// consumed some of each partition, and returns g's offsets there.
func fillFormerLog(t *testing.T, path string) []smp.PartitionOffsets {
	t.Helper()
	ctx := context.Background()
	old, err := sqlbus.Open(sqlbus.Config{Path: path, Partitions: 3})
	if err != nil {
		t.Fatal(err)
	}
	defer old.Close()
	for i := 0; i < 30; i++ {
		if err := old.Publish(ctx, smp.Message{Topic: smp.TopicOrders, Key: fmt.Sprintf("O%d", i%7), Value: []byte(fmt.Sprintf(`{"n":%d}`, i)),
			Headers: map[string]string{"event_id": fmt.Sprintf("e%02d", i)}}); err != nil {
			t.Fatal(err)
		}
	}
	offs, err := old.Offsets(ctx, "g", []string{smp.TopicOrders})
	if err != nil {
		t.Fatal(err)
	}
	for _, o := range offs {
		if err := old.ResetOffset(ctx, "g", o.Topic, o.Partition, o.End/2); err != nil { // consumed half of each
			t.Fatal(err)
		}
	}
	if offs, err = old.Offsets(ctx, "g", []string{smp.TopicOrders}); err != nil {
		t.Fatal(err)
	}
	return offs
}

func openShared(t *testing.T, store *sqlstore.DB, former string) (*sqlbus.Bus, error) {
	t.Helper()
	shared, err := store.Shared()
	if err != nil {
		t.Fatal(err)
	}
	return sqlbus.Open(sqlbus.Config{Shared: &shared, Import: former, Partitions: 3, PollInterval: 10 * time.Millisecond})
}

func copyFile(t *testing.T, from, to string) {
	t.Helper()
	in, err := os.Open(from)
	if err != nil {
		t.Fatal(err)
	}
	defer in.Close()
	out, err := os.Create(to)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := io.Copy(out, in); err != nil {
		t.Fatal(err)
	}
	if err := out.Close(); err != nil {
		t.Fatal(err)
	}
}

// TestImportFormerLog: opening the log on smp.db moves events.db in;
// the group resumes exactly where it was (nothing lost or doubled), the
// file is renamed, a second open changes nothing, and an open after a
// crash that left the file unrenamed does not import it twice.
func TestImportFormerLog(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	dir := t.TempDir()
	former := filepath.Join(dir, "events.db")
	before := fillFormerLog(t, former)
	// A copy of the file as it was: put back later as if the rename had not happened.
	copyFile(t, former, filepath.Join(dir, "copy.db"))

	store, err := sqlstore.Open(ctx, sqlstore.Config{Path: filepath.Join(dir, "smp.db")})
	if err != nil {
		t.Fatal(err)
	}
	defer store.Close()
	log, err := openShared(t, store, former)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(former); !os.IsNotExist(err) {
		t.Fatalf("events.db is still there after the import (%v)", err)
	}
	renamed, _ := filepath.Glob(filepath.Join(dir, "events.db.migrated-*"))
	if len(renamed) == 0 {
		t.Fatal("events.db was not renamed to events.db.migrated-<time>")
	}
	after, err := log.Offsets(ctx, "g", []string{smp.TopicOrders})
	if err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(after, before) {
		t.Fatalf("offsets after the import:\n%+v\nbefore:\n%+v", after, before)
	}

	// The group resumes where it committed: exactly the unconsumed half.
	want := map[string]bool{}
	all, err := log.Read(ctx, smp.TopicOrders, 100)
	if err != nil || len(all) != 30 {
		t.Fatalf("read %d messages (%v), want 30", len(all), err)
	}
	for _, m := range all {
		if m.Offset >= before[m.Partition].Committed {
			want[m.Headers["event_id"]] = true
		}
	}
	// A message published now takes the next offset of its partition.
	if err := log.Publish(ctx, smp.Message{Topic: smp.TopicOrders, Key: "O1", Value: []byte(`{"n":30}`), Headers: map[string]string{"event_id": "e30"}}); err != nil {
		t.Fatal(err)
	}
	want["e30"] = true
	var mu sync.Mutex
	got := map[string]int{}
	sctx, cancel := context.WithCancel(ctx)
	done := make(chan error, 1)
	arrived := make(chan struct{}, 100)
	go func() {
		done <- log.Subscribe(sctx, "g", []string{smp.TopicOrders}, func(ctx context.Context, m smp.Message) error {
			mu.Lock()
			got[m.Headers["event_id"]]++
			mu.Unlock()
			arrived <- struct{}{}
			return nil
		})
	}()
	for i := 0; i < len(want); i++ {
		select {
		case <-arrived:
		case <-time.After(10 * time.Second):
			cancel()
			<-done
			t.Fatalf("%d of %d unconsumed messages arrived after the import", i, len(want))
		}
	}
	cancel()
	<-done
	mu.Lock()
	defer mu.Unlock()
	for id := range want {
		if got[id] != 1 {
			t.Fatalf("message %s delivered %d times, want once (got %v)", id, got[id], got)
		}
	}
	if len(got) != len(want) {
		t.Fatalf("delivered %v, want exactly the unconsumed %v", got, want)
	}
	committed, err := log.Offsets(ctx, "g", []string{smp.TopicOrders})
	if err != nil {
		t.Fatal(err)
	}
	log.Close()

	// A second open: nothing to import, nothing changes.
	if log, err = openShared(t, store, former); err != nil {
		t.Fatal(err)
	}
	again, err := log.Offsets(ctx, "g", []string{smp.TopicOrders})
	if err != nil || !reflect.DeepEqual(again, committed) {
		t.Fatalf("offsets after a second open: %+v (%v), want %+v", again, err, committed)
	}
	log.Close()

	// A crash after the import's commit, before the rename: the file is
	// still there at the next open, which renames it without importing it again.
	if err := os.Rename(filepath.Join(dir, "copy.db"), former); err != nil {
		t.Fatal(err)
	}
	if log, err = openShared(t, store, former); err != nil {
		t.Fatal(err)
	}
	defer log.Close()
	if _, err := os.Stat(former); !os.IsNotExist(err) {
		t.Fatalf("events.db is still there (%v)", err)
	}
	again, err = log.Offsets(ctx, "g", []string{smp.TopicOrders})
	if err != nil || !reflect.DeepEqual(again, committed) {
		t.Fatalf("offsets after reopening over an unrenamed events.db: %+v (%v), want %+v", again, err, committed)
	}
	if all, err := log.Read(ctx, smp.TopicOrders, 100); err != nil || len(all) != 31 {
		t.Fatalf("%d messages after reopening over an unrenamed events.db (%v), want 31", len(all), err)
	}
}

// TestImportFormerLogFailsWhole: an import that fails half-way (here a
// row already in smp.db collides with one of the file's messages) keeps
// nothing of it in smp.db and leaves events.db where it was.
func TestImportFormerLogFailsWhole(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	dir := t.TempDir()
	former := filepath.Join(dir, "events.db")
	fillFormerLog(t, former)

	// smp.db already has a message at an offset the file also has, but no
	// partition rows: the partitions' INSERT succeeds, the messages' fails.
	blocker, err := sqlbus.Open(sqlbus.Config{Path: filepath.Join(dir, "smp.db"), Partitions: 3})
	if err != nil {
		t.Fatal(err)
	}
	for i := 0; i < 7; i++ {
		if err := blocker.Publish(ctx, smp.Message{Topic: smp.TopicOrders, Key: fmt.Sprintf("O%d", i), Value: []byte(`{}`)}); err != nil {
			t.Fatal(err)
		}
	}
	blocker.Close()
	store, err := sqlstore.Open(ctx, sqlstore.Config{Path: filepath.Join(dir, "smp.db")})
	if err != nil {
		t.Fatal(err)
	}
	defer store.Close()
	// Remove the partition rows only: the import's first INSERT then succeeds.
	shared, _ := store.Shared()
	if _, err := shared.Write.ExecContext(ctx, `DELETE FROM bus_partitions`); err != nil {
		t.Fatal(err)
	}
	if log, err := openShared(t, store, former); err == nil {
		log.Close()
		t.Fatal("the import succeeded over colliding rows")
	} else if !strings.Contains(err.Error(), "import") {
		t.Fatalf("open = %v, want the import's error", err)
	}
	if _, err := os.Stat(former); err != nil {
		t.Fatalf("events.db is gone after a failed import: %v", err)
	}
	var parts, marks int
	if err := shared.Read.QueryRowContext(ctx, `SELECT COUNT(*) FROM bus_partitions`).Scan(&parts); err != nil {
		t.Fatal(err)
	}
	if err := shared.Read.QueryRowContext(ctx, `SELECT COUNT(*) FROM bus_schema_migrations WHERE version LIKE 'import:%'`).Scan(&marks); err != nil {
		t.Fatal(err)
	}
	if parts != 0 || marks != 0 {
		t.Fatalf("a failed import left %d partition rows and %d markers in smp.db, want none", parts, marks)
	}
}

// TestImportRefusesALogWrittenAfterTheMove: an events.db that reappears
// after the move (an older smp run on the data dir wrote a new log, from
// offset 0) is not renamed away unread: the open fails with ECONFLICT and
// the file stays where it is.
func TestImportRefusesALogWrittenAfterTheMove(t *testing.T) {
	dir := t.TempDir()
	former := filepath.Join(dir, "events.db")
	fillFormerLog(t, former)
	store, err := sqlstore.Open(context.Background(), sqlstore.Config{Path: filepath.Join(dir, "smp.db")})
	if err != nil {
		t.Fatal(err)
	}
	defer store.Close()
	log, err := openShared(t, store, former)
	if err != nil {
		t.Fatal(err)
	}
	log.Close()
	if _, err := os.Stat(former); !os.IsNotExist(err) {
		t.Fatalf("events.db is still there after the move (%v)", err)
	}

	// An older smp writes a new events.db.
	older, err := sqlbus.Open(sqlbus.Config{Path: former, Partitions: 3})
	if err != nil {
		t.Fatal(err)
	}
	if err := older.Publish(context.Background(), smp.Message{Topic: smp.TopicOrders, Key: "O99", Value: []byte(`{"n":99}`)}); err != nil {
		t.Fatal(err)
	}
	older.Close()

	if log, err = openShared(t, store, former); err == nil {
		log.Close()
		t.Fatal("opened over an events.db written after the move, want ECONFLICT")
	} else if smp.ErrorCode(err) != smp.ECONFLICT || !strings.Contains(err.Error(), "older smp") {
		t.Fatalf("open over an events.db written after the move: %v, want ECONFLICT naming it", err)
	}
	if _, err := os.Stat(former); err != nil {
		t.Fatalf("events.db written after the move was moved away unread: %v", err)
	}
}
