package main

import (
	"bytes"
	"context"
	"encoding/csv"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"smp"
	"smp/app"
	"smp/internal/wait"
	"smp/wallet"
)

// TestCtlFraudExport: a running platform's detector flags a partner; smp
// ctl fraud export writes its evidence bundle (bundle.json and the CSVs of
// decisions, top-ups, postings and audit entries) through the admin API;
// a missing --partner is a usage error.
func TestCtlFraudExport(t *testing.T) {
	cfg := app.DefaultConfig()
	cfg.DataDir, cfg.Addr, cfg.AdminToken = t.TempDir(), "127.0.0.1:0", "adm"
	a := &app.App{Cfg: cfg}
	ctx := context.Background()
	if err := a.Open(ctx); err != nil {
		t.Fatal(err)
	}
	defer a.Close()
	if err := a.Store.UpsertPartner(ctx, &smp.Partner{ID: "P001", Name: "A", Country: "VN"}); err != nil {
		t.Fatal(err)
	}
	now := time.Now().UTC()
	for i := range 6 {
		data, _ := json.Marshal(map[string]any{"topup_id": fmt.Sprint("tu_", i), "partner_id": "P001", "txn_ref": fmt.Sprint("W", i),
			"amount_vnd": 100_000, "client_ip": "198.51.100.1", "user_agent": "okhttp/4.12", "device_id": "dev-7"})
		ev := smp.Event{ID: fmt.Sprint("topup-", i), Type: wallet.EventTopupRequested, SchemaVersion: 1, AggregateID: "P001", OccurredAt: now, Data: data}
		if err := a.Store.InTx(ctx, func(tx smp.Tx) error { return tx.AddEvent(ctx, ev) }); err != nil {
			t.Fatal(err)
		}
	}
	wait.Until(t, 20*time.Second, "six decisions", func() bool {
		ds, _ := a.Store.FindFraudDecisions(ctx, smp.FraudDecisionFilter{PartnerID: "P001"})
		return len(ds) == 6
	})
	t.Setenv("SMP_ADMIN_TOKEN", "adm")
	dir := filepath.Join(t.TempDir(), "evidence")
	var out, errb bytes.Buffer
	err := run(ctx, []string{"ctl", "fraud", "export", "--partner", "P001", "--from", now.Add(-time.Hour).Format(time.RFC3339),
		"--out", dir, "--server", a.HTTP.URL()}, &out, &errb)
	if err != nil || !strings.Contains(out.String(), "6 decisions") {
		t.Fatalf("export: %v %q %q", err, out.String(), errb.String())
	}
	var b struct {
		PartnerID string               `json:"partner_id"`
		Decisions []*smp.FraudDecision `json:"decisions"`
	}
	raw, err := os.ReadFile(filepath.Join(dir, "bundle.json"))
	if err != nil || json.Unmarshal(raw, &b) != nil || b.PartnerID != "P001" || len(b.Decisions) != 6 {
		t.Fatalf("bundle.json: %v %s", err, raw)
	}
	f, err := os.Open(filepath.Join(dir, "decisions.csv"))
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	rows, err := csv.NewReader(f).ReadAll()
	if err != nil || len(rows) != 7 || rows[0][0] != "decision_id" {
		t.Fatalf("decisions.csv: %v %v", err, rows)
	}
	var flagged int
	for _, r := range rows[1:] {
		if r[7] == "velocity" && r[9] == "198.51.100.1" && r[11] == "okhttp/4.12" && r[12] == "dev-7" {
			flagged++
		}
	}
	if flagged != 1 {
		t.Fatalf("decisions.csv has %d velocity rows with the IP, user agent and device: %v", flagged, rows)
	}
	for _, name := range []string{"topups.csv", "postings.csv", "audit.csv"} {
		if _, err := os.Stat(filepath.Join(dir, name)); err != nil {
			t.Errorf("%s: %v", name, err)
		}
	}
	err = run(ctx, []string{"ctl", "fraud", "export", "--server", a.HTTP.URL()}, &out, &errb)
	if _, ok := err.(usageError); !ok {
		t.Fatalf("without --partner: %v", err)
	}
}
