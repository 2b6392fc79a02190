package connect_test

import (
	"context"
	"errors"
	"path/filepath"
	"testing"
	"time"

	"smp"
	"smp/connect"
	"smp/internal/wait"
	"smp/sqlstore"
)

// TestWatchdog: a FAILED task is restarted by itself after the backoff
// (not before), the backoff doubles, each restart is audited; after
// MaxRestarts it gives up once (audited) and leaves the task FAILED; a
// task that stays RUNNING for StableAfter starts afresh.
func TestWatchdog(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	db, err := sqlstore.Open(ctx, sqlstore.Config{Path: filepath.Join(t.TempDir(), "smp.db")})
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	p := newPlugin()
	w, err := connect.New(connect.Config{Plugins: map[string]connect.Plugin{class: p}, Offsets: db})
	if err != nil {
		t.Fatal(err)
	}
	if err := w.Start(ctx); err != nil {
		t.Fatal(err)
	}
	defer w.Stop(ctx)
	if _, _, err := w.PutConfig("c", map[string]string{"connector.class": class}); err != nil {
		t.Fatal(err)
	}
	now := time.Date(2026, 12, 1, 0, 0, 0, 0, time.UTC)
	d := connect.NewWatchdog(w, connect.WatchdogConfig{Backoff: 5 * time.Second, MaxRestarts: 2, StableAfter: time.Minute,
		Now: func() time.Time { return now },
		Audit: func(ctx context.Context, e smp.AuditEntry) error {
			return db.InTx(ctx, func(tx smp.Tx) error { return tx.AddAudit(ctx, e) })
		}})
	audits := func() []smp.AuditEntry {
		es, err := db.FindAudit(ctx, smp.AuditFilter{Limit: 100})
		if err != nil {
			t.Fatal(err)
		}
		return es
	}
	fail := func(starts int) {
		t.Helper()
		wait.Until(t, 5*time.Second, "task 1 running", func() bool { return p.startsOf(1) == starts })
		p.failTask(1, errors.New("lost connection to MySQL"))
		waitTask(t, w, "c", 1, connect.Failed)
	}
	advance := func(by time.Duration) {
		now = now.Add(by)
		d.Check(ctx)
	}

	fail(1)
	advance(0)
	advance(4 * time.Second) // within the first backoff
	if p.startsOf(1) != 1 || len(audits()) != 0 {
		t.Fatalf("restarted before the backoff: starts %d, audits %v", p.startsOf(1), audits())
	}
	advance(time.Second)
	fail(2) // restarted once: it fails again
	es := audits()
	if len(es) != 1 || es[0].Action != "connect.restart" || es[0].Actor != connect.Actor || es[0].Target != "connector:c/tasks/1" ||
		es[0].Before != "lost connection to MySQL" || es[0].After != "restart 1 of 2" {
		t.Fatalf("audit after the first restart: %+v", es)
	}
	advance(9 * time.Second) // the backoff doubled: 10 s
	if p.startsOf(1) != 2 {
		t.Fatalf("restarted within the doubled backoff")
	}
	advance(time.Second)
	fail(3)
	advance(time.Hour)
	advance(time.Hour)
	if ts, _ := w.TaskStatus("c", 1); ts.State != connect.Failed || p.startsOf(1) != 3 {
		t.Fatalf("after giving up: %+v, %d starts", ts, p.startsOf(1))
	}
	es = audits()
	if len(es) != 3 || es[0].Action != "connect.watchdog_gave_up" || es[0].After != "left FAILED after 2 restarts" {
		t.Fatalf("audits after giving up (newest first): %+v", es)
	}

	// An operator's restart; RUNNING for StableAfter: the count starts afresh.
	if err := w.RestartTask("c", 1); err != nil {
		t.Fatal(err)
	}
	wait.Until(t, 5*time.Second, "task 1 running", func() bool { return p.startsOf(1) == 4 })
	advance(2 * time.Minute)
	fail(4)
	advance(0)
	advance(5 * time.Second)
	wait.Until(t, 5*time.Second, "restarted afresh", func() bool { return p.startsOf(1) == 5 })
	if es = audits(); len(es) != 4 || es[0].After != "restart 1 of 2" {
		t.Fatalf("audits after a fresh failure: %+v", es)
	}
}
