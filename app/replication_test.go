package app

import (
	"context"
	"io"
	"net/http"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"smp"
	"smp/internal/wait"
)

// TestReplicationModule: two regions' platforms in one process, each with
// its database and embedded log; china's runs the replication-agent module
// with --replicate-from global=file:<global's log>. A rate put in global
// (the master region) is applied in china, and china's /metrics has the
// path's region_replication_lag_seconds; ReplicateOnly (smp replicate)
// runs the agent without the order services.
func TestReplicationModule(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	global := &App{Cfg: testConfig(t)}
	if err := global.Open(ctx); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { global.Close() })
	cfg := testConfig(t)
	cfg.Region, cfg.ReplicateOnly, cfg.ReplicationLeaseTTL = "china", true, time.Second
	cfg.ReplicateFrom = "global=file:" + filepath.Join(global.Cfg.DataDir, "smp.db") // the embedded log is in smp.db
	china := &App{Cfg: cfg}
	if err := china.Open(ctx); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { china.Close() })
	if mods := china.Modules(); !slices.Contains(mods, ModuleReplication) || slices.Contains(mods, ServiceOrders) {
		t.Errorf("smp replicate runs %v", mods)
	}
	if _, err := global.MasterData.Put(ctx, smp.Principal{Name: "fiona", Role: smp.RoleFinance}, smp.MasterCurrencyRates,
		map[string]string{"from_currency": "USD", "to_currency": "VND", "rate_date": "2026-12-01", "rate": "25410.5"}, "daily rates"); err != nil {
		t.Fatal(err)
	}
	wait.Until(t, 60*time.Second, "the rate in china", func() bool {
		r, err := china.Store.FindMasterRecord(ctx, smp.MasterCurrencyRates, "USD/VND/2026-12-01")
		return err == nil && r.Version == 1 && r.Fields["rate"] == "25410.5"
	})
	resp, err := http.Get(china.HTTP.URL() + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if !strings.Contains(string(body), `region_replication_lag_seconds{region="global-to-china"}`) {
		t.Errorf("/metrics has no lag of global-to-china")
	}
}
