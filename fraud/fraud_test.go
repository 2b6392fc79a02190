package fraud_test

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"smp"
	"smp/fraud"
	"smp/inmem"
	"smp/internal/wait"
	"smp/sqlstore"
	"smp/wallet"
)

var ctx = context.Background()

var t0 = time.Date(2026, 5, 28, 3, 0, 0, 0, time.UTC)

// geoMap is a GeoIP of fixed answers (the MaxMind reader has its own
// test with a real database written by mmdbwriter).
type geoMap map[string]string

func (g geoMap) Country(ip string) (string, error) { return g[ip], nil }

type fixture struct {
	store *sqlstore.DB
	det   *fraud.Detector
	n     int
}

func openStore(t testing.TB) *sqlstore.DB {
	t.Helper()
	s, err := sqlstore.Open(ctx, sqlstore.Config{Path: filepath.Join(t.TempDir(), "smp.db")})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	for _, p := range []smp.Partner{{ID: "P001", Name: "A", Country: "VN"}, {ID: "P002", Name: "B", Country: "VN"}, {ID: "P003", Name: "C", Country: "VN"}} {
		if err := s.UpsertPartner(ctx, &p); err != nil {
			t.Fatal(err)
		}
	}
	return s
}

func newFixture(t testing.TB, cfg fraud.Config) *fixture {
	t.Helper()
	s := openStore(t)
	if cfg.Windows == nil {
		cfg.Windows = inmem.NewFraudWindows()
	}
	d, err := fraud.New(s, cfg)
	if err != nil {
		t.Fatal(err)
	}
	return &fixture{store: s, det: d}
}

// topup is one top-up request's event.
type topup struct {
	partner string
	vnd     int64
	ip      string
	at      time.Duration // after t0
}

func event(id string, tu topup) smp.Event {
	data, _ := json.Marshal(map[string]any{"topup_id": "tu_" + id, "partner_id": tu.partner, "gateway": "vnpay", "txn_ref": "W" + id,
		"amount_vnd": tu.vnd, "client_ip": tu.ip, "user_agent": "okhttp/4.12", "device_id": "dev-" + tu.partner})
	return smp.Event{ID: "topup-" + id, Type: wallet.EventTopupRequested, SchemaVersion: 1, AggregateID: tu.partner,
		OccurredAt: t0.Add(tu.at), Data: data}
}

// run evaluates the top-ups in order and returns the last decision.
func (f *fixture) run(t testing.TB, tus ...topup) *smp.FraudDecision {
	t.Helper()
	var d *smp.FraudDecision
	for _, tu := range tus {
		f.n++
		var err error
		if d, err = f.det.EvaluateEvent(ctx, event(fmt.Sprint(f.n), tu)); err != nil {
			t.Fatal(err)
		}
	}
	return d
}

func result(d *smp.FraudDecision, rule string) smp.FraudRuleResult {
	for _, r := range d.Rules {
		if r.Rule == rule {
			return r
		}
	}
	return smp.FraudRuleResult{}
}

func repeat(n int, tu topup, step time.Duration) []topup {
	var out []topup
	for i := range n {
		x := tu
		x.at += time.Duration(i) * step
		out = append(out, x)
	}
	return out
}

// TestRulesAtThreshold: each of the runbook's four rules fires at its
// threshold and stays silent just below it.
func TestRulesAtThreshold(t *testing.T) {
	t.Parallel()
	const ip = "203.0.113.7"
	hv := int64(50_000_000)
	small := topup{partner: "P001", vnd: 100_000, ip: "198.51.100.1"}
	for _, tc := range []struct {
		name   string
		rule   string
		geo    fraud.GeoIP
		topups []topup
		want   string
	}{
		// Velocity: more than 5 top-ups within 10 minutes from one partner.
		{"velocity/6 in 10m", "velocity", nil, repeat(6, small, time.Minute), smp.RuleHit},
		{"velocity/5 in 10m", "velocity", nil, repeat(5, small, time.Minute), smp.RuleMiss},
		{"velocity/6 in exactly 10m", "velocity", nil, repeat(6, small, 2*time.Minute), smp.RuleMiss},
		// Several high-value top-ups from one IP across several partners.
		{"ip/3 high from 2 partners", "ip_multi_partner_high_value", nil,
			[]topup{{"P001", hv, ip, 0}, {"P002", hv, ip, time.Minute}, {"P001", hv, ip, 2 * time.Minute}}, smp.RuleHit},
		{"ip/2 high from 2 partners", "ip_multi_partner_high_value", nil,
			[]topup{{"P001", hv, ip, 0}, {"P002", hv, ip, time.Minute}}, smp.RuleMiss},
		{"ip/3 high from 1 partner", "ip_multi_partner_high_value", nil,
			[]topup{{"P001", hv, ip, 0}, {"P001", hv, ip, time.Minute}, {"P001", hv, ip, 2 * time.Minute}}, smp.RuleMiss},
		{"ip/one just below high", "ip_multi_partner_high_value", nil,
			[]topup{{"P001", hv, ip, 0}, {"P002", hv - 1, ip, time.Minute}, {"P001", hv, ip, 2 * time.Minute}}, smp.RuleMiss},
		{"ip/3 high from 2 partners over 1h", "ip_multi_partner_high_value", nil,
			[]topup{{"P001", hv, ip, 0}, {"P002", hv, ip, 30 * time.Minute}, {"P001", hv, ip, time.Hour}}, smp.RuleMiss},
		// Geography: the IP's country differs from the registered one.
		{"geography/SG IP, VN partner", "geography", geoMap{ip: "SG"}, []topup{{"P001", 100_000, ip, 0}}, smp.RuleHit},
		{"geography/VN IP, VN partner", "geography", geoMap{ip: "VN"}, []topup{{"P001", 100_000, ip, 0}}, smp.RuleMiss},
		{"geography/IP not in the database", "geography", geoMap{}, []topup{{"P001", 100_000, ip, 0}}, smp.RuleUnknown},
		{"geography/no database", "geography", nil, []topup{{"P001", 100_000, ip, 0}}, smp.RuleUnknown},
		// Amount: above 10× the partner's average, the first such.
		{"amount/10x+1", "amount_spike", nil, []topup{{"P001", 100_000, "", 0}, {"P001", 300_000, "", time.Hour}, {"P001", 2_000_001, "", 2 * time.Hour}}, smp.RuleHit},
		{"amount/10x", "amount_spike", nil, []topup{{"P001", 100_000, "", 0}, {"P001", 300_000, "", time.Hour}, {"P001", 2_000_000, "", 2 * time.Hour}}, smp.RuleMiss},
		{"amount/first top-up", "amount_spike", nil, []topup{{"P001", 400_000_000, "", 0}}, smp.RuleMiss},
		{"amount/second such", "amount_spike", nil, []topup{{"P001", 100_000, "", 0}, {"P001", 1_000_001, "", time.Hour},
			{"P001", 5_500_001, "", 2 * time.Hour}}, smp.RuleMiss},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			f := newFixture(t, fraud.Config{Geo: tc.geo, Now: func() time.Time { return t0 }})
			d := f.run(t, tc.topups...)
			r := result(d, tc.rule)
			if r.Result != tc.want {
				t.Fatalf("%s: %s, want %s (values %v, reason %q)", tc.rule, r.Result, tc.want, r.Values, r.Reason)
			}
			if hit := slices.Contains(d.Signals, tc.rule); hit != (tc.want == smp.RuleHit) {
				t.Fatalf("signals %v", d.Signals)
			}
		})
	}
}

// TestDecisionExplained: a decision carries each rule's verdict with the
// values it saw, the score, the strongest outcome, the highest severity
// and the evidence.
func TestDecisionExplained(t *testing.T) {
	t.Parallel()
	const ip = "203.0.113.7"
	f := newFixture(t, fraud.Config{Geo: geoMap{ip: "SG"}, Now: func() time.Time { return t0 }})
	hv := int64(50_000_000)
	d := f.run(t, topup{"P001", hv, ip, 0}, topup{"P002", hv, ip, time.Minute}, topup{"P001", hv, ip, 2 * time.Minute})
	// ip (60, freeze, high) + geography (20, review, medium); amount_spike
	// misses (50M is not above 10× an average of 50M).
	if d.Score != 80 || d.Outcome != smp.FraudFreeze || d.Severity != smp.SeverityHigh ||
		!slices.Equal(d.Signals, []string{"ip_multi_partner_high_value", "geography"}) {
		t.Fatalf("decision %+v", d)
	}
	r := result(d, "ip_multi_partner_high_value")
	if r.Values["IPTopups(50000000, 1h0m0s)"] != 3 || r.Values["IPPartners(50000000, 1h0m0s)"] != 2 || r.Values["Topup.AmountVND"] != hv {
		t.Fatalf("values seen: %v", r.Values)
	}
	if v := result(d, "velocity").Values["PartnerTopups(10m0s)"]; v != 2 {
		t.Fatalf("velocity saw %v", v)
	}
	ev := d.Evidence
	if !slices.Equal(ev.TxnIDs, []string{"W3", "W1", "W2"}) || !slices.Equal(ev.IPs, []string{ip}) || ev.Country != "SG" ||
		ev.UserAgent != "okhttp/4.12" || ev.DeviceID != "dev-P001" {
		t.Fatalf("evidence %+v", ev)
	}
	if d.PartnerID != "P001" || d.TxnID != "W3" || d.ID != "fd-topup-3" || d.RulesVersion == "" {
		t.Fatalf("decision ids %+v", d)
	}
}

func writeRules(t testing.TB, path, content string) {
	t.Helper()
	if err := os.WriteFile(path, []byte(content), 0o644); err != nil {
		t.Fatal(err)
	}
}

// TestFalsePositiveTuned: the velocity rule fires; raised in the file and
// reloaded, the same top-ups no longer fire it.
func TestFalsePositiveTuned(t *testing.T) {
	t.Parallel()
	path := filepath.Join(t.TempDir(), "rules_engine.yaml")
	writeRules(t, path, string(fraud.DefaultRules))
	f := newFixture(t, fraud.Config{RulesPath: path, Poll: -1, Now: func() time.Time { return t0 }})
	burst := repeat(6, topup{partner: "P001", vnd: 100_000, ip: "198.51.100.1"}, time.Minute)
	if d := f.run(t, burst...); !slices.Contains(d.Signals, "velocity") {
		t.Fatalf("velocity did not fire: %+v", d.Signals)
	}
	writeRules(t, path, strings.Replace(string(fraud.DefaultRules), `PartnerTopups(duration("10m")) > 5`, `PartnerTopups(duration("10m")) > 10`, 1))
	changed, err := f.det.Reload()
	if err != nil || !changed {
		t.Fatalf("reload: %v %v", changed, err)
	}
	g := newFixtureOn(t, f, path)
	if d := g.run(t, burst...); slices.Contains(d.Signals, "velocity") {
		t.Fatalf("velocity still fires after tuning: %+v", result(d, "velocity"))
	}
	if d := f.run(t, repeat(6, topup{partner: "P002", vnd: 100_000, ip: "198.51.100.2"}, time.Minute)...); slices.Contains(d.Signals, "velocity") {
		t.Fatalf("the reloaded detector still fires: %+v", result(d, "velocity"))
	}
}

// newFixtureOn is another detector on the same file (a fresh window).
func newFixtureOn(t testing.TB, f *fixture, path string) *fixture {
	t.Helper()
	d, err := fraud.New(f.store, fraud.Config{Windows: inmem.NewFraudWindows(), RulesPath: path, Poll: -1, Now: func() time.Time { return t0 }})
	if err != nil {
		t.Fatal(err)
	}
	return &fixture{store: f.store, det: d, n: 1000}
}

// TestBadRulesRefused: a file with an error is refused with the rule, the
// line and the reason, and the running rules keep deciding.
func TestBadRulesRefused(t *testing.T) {
	t.Parallel()
	path := filepath.Join(t.TempDir(), "rules_engine.yaml")
	writeRules(t, path, string(fraud.DefaultRules))
	f := newFixture(t, fraud.Config{RulesPath: path, Poll: -1, Now: func() time.Time { return t0 }})
	before := f.det.Rules().Version
	bad := strings.Replace(string(fraud.DefaultRules), `PartnerTopups(duration("10m")) > 5`, `PartnerTopupz(duration("10m")) > 5`, 1)
	writeRules(t, path, bad)
	_, err := f.det.Reload()
	want := fmt.Sprintf(`rules_engine.yaml:%d: rule "velocity": when: unknown name PartnerTopupz`, lineOf(bad, `when: PartnerTopupz`))
	if err == nil || !strings.Contains(err.Error(), want) {
		t.Fatalf("reload error %v, want it to contain %q", err, want)
	}
	if f.det.Rules().Version != before {
		t.Fatal("the refused file replaced the running rules")
	}
	if d := f.run(t, repeat(6, topup{partner: "P001", vnd: 100_000}, time.Minute)...); !slices.Contains(d.Signals, "velocity") {
		t.Fatalf("the running rules stopped deciding: %+v", d.Signals)
	}
	for name, tc := range map[string]struct{ file, want string }{
		"not a boolean": {strings.Replace(string(fraud.DefaultRules), `PartnerTopups(duration("10m")) > 5`, `PartnerTopups(duration("10m"))`, 1),
			`rule "velocity": when: expected bool`},
		"outcome":  {strings.Replace(string(fraud.DefaultRules), "outcome: soft_block", "outcome: shred", 1), `rule "velocity": outcome "shred"`},
		"category": {strings.Replace(string(fraud.DefaultRules), "category: fraud", "category: dispatch", 1), `category is "dispatch"`},
		"field":    {strings.Replace(string(fraud.DefaultRules), "    score: 30\n", "    score: 30\n    treshold: 5\n", 1), `rule "velocity": unknown field "treshold"`},
		"yaml":     {"category: fraud\nrules: [\n", "rules_engine.yaml:2: "},
	} {
		_, err := fraud.Parse("rules_engine.yaml", []byte(tc.file))
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%s: %v, want %q", name, err, tc.want)
		}
	}
}

func lineOf(s, sub string) int {
	i := strings.Index(s, sub)
	return strings.Count(s[:i], "\n") + 1
}

// TestReloadOnChange: the running detector notices a changed file by
// itself (Poll) and runs the new rules.
func TestReloadOnChange(t *testing.T) {
	t.Parallel()
	path := filepath.Join(t.TempDir(), "rules_engine.yaml")
	writeRules(t, path, string(fraud.DefaultRules))
	f := newFixture(t, fraud.Config{RulesPath: path, Poll: 10 * time.Millisecond, Now: func() time.Time { return t0 }})
	if err := f.det.Start(ctx); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { f.det.Stop(ctx) })
	before := f.det.Rules().Version
	writeRules(t, path, strings.Replace(string(fraud.DefaultRules), `PartnerTopups(duration("10m")) > 5`, `PartnerTopups(duration("10m")) > 10`, 1))
	wait.Until(t, 5*time.Second, "the changed file loaded", func() bool { return f.det.Rules().Version != before })
	if d := f.run(t, repeat(6, topup{partner: "P001", vnd: 100_000}, time.Minute)...); slices.Contains(d.Signals, "velocity") {
		t.Fatalf("velocity still at 5: %+v", result(d, "velocity"))
	}
}

// TestWindowsRebuiltAfterRestart: on the embedded default the windows
// live in the process. Three top-ups, a restart (a new detector on new,
// empty in-process windows over the same store), three more within ten
// minutes: the sixth fires the velocity rule, because Start rebuilt the
// windows from the stored top-ups; and the amount rule compares with the
// average of all six. Without the rebuild the sixth is the third seen.
func TestWindowsRebuiltAfterRestart(t *testing.T) {
	t.Parallel()
	store := openStore(t)
	start := func() *fraud.Detector {
		d, err := fraud.New(store, fraud.Config{Windows: inmem.NewFraudWindows(), Rebuild: true, Now: func() time.Time { return t0 }})
		if err != nil {
			t.Fatal(err)
		}
		if err := d.Start(ctx); err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { d.Stop(ctx) })
		return d
	}
	n := 0
	request := func(d *fraud.Detector, tu topup) []string {
		t.Helper()
		n++
		id := fmt.Sprint(n)
		// What wallet.CreateTopupFrom commits: the top-up and its event.
		if err := store.InTx(ctx, func(tx smp.Tx) error {
			return tx.InsertTopup(ctx, &smp.Topup{ID: "tu_" + id, PartnerID: tu.partner, Gateway: smp.GatewayVNPay, TxnRef: "W" + id,
				AmountVND: tu.vnd, Status: smp.TopupPending, ClientIP: tu.ip, CreatedAt: t0.Add(tu.at), UpdatedAt: t0.Add(tu.at)})
		}); err != nil {
			t.Fatal(err)
		}
		dec, err := d.EvaluateEvent(ctx, event(id, tu))
		if err != nil {
			t.Fatal(err)
		}
		return dec.Signals
	}
	one := start()
	for i := range 3 {
		if s := request(one, topup{"P001", 100_000, "198.51.100.1", time.Duration(i) * time.Minute}); len(s) != 0 {
			t.Fatalf("top-up %d flagged %v", i+1, s)
		}
	}
	one.Stop(ctx)
	two := start() // the restart
	for i := 3; i < 6; i++ {
		s := request(two, topup{"P001", 100_000, "198.51.100.1", time.Duration(i) * time.Minute})
		if i < 5 && len(s) != 0 {
			t.Fatalf("top-up %d flagged %v", i+1, s)
		}
		if i == 5 && !slices.Equal(s, []string{"velocity"}) {
			t.Fatalf("sixth top-up in ten minutes, split 3+3 across a restart: signals %v", s)
		}
	}
	// An event delivered again after the restart (it was replayed from the
	// store) is not counted twice: a third process sees six, not seven.
	three := start()
	if _, err := three.EvaluateEvent(ctx, event("6", topup{"P001", 100_000, "198.51.100.1", 5 * time.Minute})); err != nil {
		t.Fatal(err)
	}
	// The average over the six is 100,000: 1,000,001 is the first above 10×.
	if s := request(three, topup{"P001", 1_000_001, "", time.Hour}); !slices.Equal(s, []string{"amount_spike"}) {
		t.Fatalf("amount above 10× the average rebuilt after restarts: %v", s)
	}
}
