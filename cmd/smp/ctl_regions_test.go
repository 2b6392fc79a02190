package main

import (
	"bytes"
	"context"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"smp"
	"smp/app"
	"smp/internal/wait"
)

// TestCtlRegions: two regions' platforms, china replicating from global.
// smp ctl regions status shows the path running with its lag; pause stops
// it (audited) and a change waits; resume carries it; verify --sample 10
// compares global's rows with china's by hash, and fails on a row china
// lacks; bad input exits non-zero and changes nothing.
func TestCtlRegions(t *testing.T) {
	ctx := context.Background()
	open := func(cfg app.Config) *app.App {
		cfg.Addr, cfg.AdminToken, cfg.Partitions = "127.0.0.1:0", "adm", 2
		a := &app.App{Cfg: cfg}
		if err := a.Open(ctx); err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { a.Close() })
		return a
	}
	gcfg := app.DefaultConfig()
	gcfg.DataDir = t.TempDir()
	global := open(gcfg)
	ccfg := app.DefaultConfig()
	ccfg.DataDir, ccfg.Region, ccfg.ReplicationLeaseTTL = t.TempDir(), "china", time.Second
	ccfg.ReplicateFrom = "global=file:" + filepath.Join(gcfg.DataDir, "smp.db") // the embedded log is in smp.db
	ccfg.ReplicateGroups = "billing"
	china := open(ccfg)
	t.Setenv("SMP_ADMIN_TOKEN", "adm")
	ctl := func(server string, args ...string) (string, error) {
		var out, errb bytes.Buffer
		err := run(ctx, append(append([]string{"ctl"}, args...), "--server", server), &out, &errb)
		return out.String(), err
	}
	fiona := smp.Principal{Name: "fiona", Role: smp.RoleFinance}
	put := func(rate string) {
		t.Helper()
		if _, err := global.MasterData.Put(ctx, fiona, smp.MasterCurrencyRates,
			map[string]string{"from_currency": "USD", "to_currency": "VND", "rate_date": "2026-12-01", "rate": rate}, "daily rates"); err != nil {
			t.Fatal(err)
		}
	}
	inChina := func(version int64) {
		t.Helper()
		wait.Until(t, 60*time.Second, "the rate in china", func() bool {
			r, err := china.Store.FindMasterRecord(ctx, smp.MasterCurrencyRates, "USD/VND/2026-12-01")
			return err == nil && r.Version == version
		})
	}
	put("25410.5")
	inChina(1)
	if out, err := ctl(china.HTTP.URL(), "regions", "status"); err != nil || !strings.Contains(out, "global-to-china") || !strings.Contains(out, "running") {
		t.Fatalf("status: %v\n%s", err, out)
	}
	// billing (--replicate-groups) read the rate in global: its checkpoint
	// in china translates the offset after it (1, the rate being china's
	// first record there too).
	admin := global.Bus.(smp.BusAdmin)
	ms, err := admin.Read(ctx, "masterdata.currency_rates", 10)
	if err != nil || len(ms) != 1 {
		t.Fatalf("global's rates: %d %v", len(ms), err)
	}
	if err := admin.ResetOffset(ctx, "billing", "masterdata.currency_rates", ms[0].Partition, ms[0].Offset+1); err != nil {
		t.Fatal(err)
	}
	var status string
	wait.Until(t, 60*time.Second, "billing's checkpoint in status", func() bool {
		status, _ = ctl(china.HTTP.URL(), "regions", "status")
		return strings.Contains(status, "billing")
	})
	if !strings.Contains(status, "global.masterdata.currency_rates") || !strings.Contains(status, "TARGET_OFFSET") {
		t.Errorf("status without billing's translated offset:\n%s", status)
	}
	if out, err := ctl(china.HTTP.URL(), "regions", "pause", "--path", "global-to-china"); err == nil {
		t.Errorf("pause without a reason: %s", out)
	}
	if _, err := ctl(china.HTTP.URL(), "regions", "pause", "--path", "asia-to-china", "--reason", "drill"); err == nil || !strings.Contains(err.Error(), "404") {
		t.Errorf("pause of an unknown path: %v", err)
	}
	if out, err := ctl(china.HTTP.URL(), "regions", "pause", "--path", "global-to-china", "--reason", "scenario 3 drill"); err != nil || !strings.Contains(out, "paused") {
		t.Fatalf("pause: %v\n%s", err, out)
	}
	if es, _ := china.Store.FindAudit(ctx, smp.AuditFilter{Action: "replication.pause"}); len(es) != 1 || es[0].Target != "global-to-china" || es[0].Reason != "scenario 3 drill" {
		t.Errorf("audit of the pause: %+v", es)
	}
	wait.Until(t, 30*time.Second, "the agent stopped", func() bool { return len(china.Replication[0].Units()) == 0 })
	put("25411")
	if out, err := ctl(global.HTTP.URL(), "regions", "verify", "--sample", "10", "--peers", "china="+china.HTTP.URL()); err == nil || !strings.Contains(out, "differs") {
		t.Errorf("verify while paused and behind: %v\n%s", err, out)
	}
	if out, err := ctl(china.HTTP.URL(), "regions", "resume", "--path", "global-to-china", "--reason", "drill over"); err != nil || !strings.Contains(out, "running") {
		t.Fatalf("resume: %v\n%s", err, out)
	}
	inChina(2)
	if out, err := ctl(global.HTTP.URL(), "regions", "verify", "--sample", "10", "--peers", "china="+china.HTTP.URL()); err != nil || !strings.Contains(out, "match") {
		t.Errorf("verify after resume: %v\n%s", err, out)
	}
}
