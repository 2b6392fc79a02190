package flags_test

import (
	"context"
	"path/filepath"
	"testing"
	"time"

	"go.uber.org/goleak"

	"smp"
	"smp/flags"
	"smp/internal/wait"
	"smp/sqlstore"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

// TestRefresherSeesAnotherProcessesChange: a started service re-reads the
// flags (another process changed one in the shared store), fires its
// change callback, and Stop joins its loop (goleak); Stop is safe twice.
func TestRefresherSeesAnotherProcessesChange(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	db, err := sqlstore.Open(ctx, sqlstore.Config{Path: filepath.Join(t.TempDir(), "smp.db")})
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	here, err := flags.New(ctx, db, nil)
	if err != nil {
		t.Fatal(err)
	}
	there, err := flags.New(ctx, db, nil)
	if err != nil {
		t.Fatal(err)
	}
	changed := make(chan bool, 1)
	here.OnChange(func(name string, v bool) {
		if name == smp.FlagEnableAutoDispatch {
			changed <- v
		}
	})
	before := here.Enabled(smp.FlagEnableAutoDispatch)
	here.RefreshEvery = 10 * time.Millisecond
	if err := here.Start(ctx); err != nil {
		t.Fatal(err)
	}
	<-here.Started()
	if _, err := there.Set(ctx, smp.FlagEnableAutoDispatch, !before, smp.Principal{Name: "olga", Role: smp.RoleOps}, "test"); err != nil {
		t.Fatal(err)
	}
	select {
	case v := <-changed:
		if v == before {
			t.Fatalf("callback with %v, want %v", v, !before)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("the refresher did not see the change")
	}
	wait.Until(t, 10*time.Second, "flag refreshed", func() bool { return here.Enabled(smp.FlagEnableAutoDispatch) == !before })
	for range 2 {
		if err := here.Stop(ctx); err != nil {
			t.Fatal(err)
		}
	}
}
