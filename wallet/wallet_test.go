package wallet_test

import (
	"context"
	"database/sql"
	"encoding/json"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"go.uber.org/goleak"

	"smp"
	"smp/sqlstore"
	"smp/wallet"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

var (
	ctx = context.Background()
	t0  = time.Date(2026, 11, 23, 10, 0, 0, 0, time.UTC)
)

type fixture struct {
	store *sqlstore.DB
	svc   *wallet.Service
	reg   *prometheus.Registry
	path  string
}

func newFixture(t testing.TB) *fixture {
	t.Helper()
	path := filepath.Join(t.TempDir(), "smp.db")
	store, err := sqlstore.Open(ctx, sqlstore.Config{Path: path})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { store.Close() })
	for _, id := range []string{"P001", "P002"} {
		if err := store.UpsertPartner(ctx, &smp.Partner{ID: id, Name: "Partner " + id}); err != nil {
			t.Fatal(err)
		}
	}
	reg := prometheus.NewRegistry()
	svc, err := wallet.New(store, wallet.Config{Now: func() time.Time { return t0 }, Registerer: reg})
	if err != nil {
		t.Fatal(err)
	}
	return &fixture{store: store, svc: svc, reg: reg, path: path}
}

func topup(ref, partner string, vnd int64) smp.Posting {
	return smp.Posting{ID: smp.GatewayPostingID(smp.GatewayVNPay, ref), Type: smp.WalletTopup, PartnerID: partner, AmountVND: vnd,
		Gateway: smp.GatewayVNPay, GatewayRef: ref, Actor: "system:vnpay-ipn"}
}

func (f *fixture) post(t testing.TB, p smp.Posting) wallet.Posted {
	t.Helper()
	out, err := f.svc.Post(ctx, p, "")
	if err != nil {
		t.Fatalf("post %s: %v", p.ID, err)
	}
	return out
}

func (f *fixture) outbox(t testing.TB) []smp.Event {
	t.Helper()
	recs, err := f.store.FetchOutbox(ctx, 1000)
	if err != nil {
		t.Fatal(err)
	}
	var out []smp.Event
	for _, r := range recs {
		out = append(out, r.Event)
	}
	return out
}

// TestPostCommitsItsEvent: every new entry commits with its outbox event,
// a topup on payments.events and a commission or adjustment on
// partners.events, carrying the entry; a duplicate adds none.
func TestPostCommitsItsEvent(t *testing.T) {
	t.Parallel()
	f := newFixture(t)
	f.post(t, topup("TXN1", "P001", 500_000))
	if _, err := f.svc.Post(ctx, topup("TXN1", "P001", 500_000), "10.0.0.1"); err != nil {
		t.Fatal(err)
	}
	f.post(t, smp.Posting{ID: "commission:o1", Type: smp.WalletCommission, PartnerID: "P001", AmountVND: -35_000, OrderID: "o1", Actor: "system:wallet"})
	f.post(t, smp.Posting{ID: "adj", Type: smp.WalletAdjustment, PartnerID: "P002", AmountVND: 9, Reason: "r", Actor: "finance:lan"})
	evs := f.outbox(t)
	if len(evs) != 3 {
		t.Fatalf("%d outbox events, want 3 (none for the duplicate): %+v", len(evs), evs)
	}
	wantTopics := []string{smp.TopicPayments, smp.TopicPartners, smp.TopicPartners}
	wantTypes := []string{smp.EventWalletTopup, smp.EventWalletCommission, smp.EventWalletAdjustment}
	for i, e := range evs {
		if e.Topic() != wantTopics[i] || e.Type != wantTypes[i] || e.ID == "" {
			t.Errorf("event %d: %s on %s, want %s on %s", i, e.Type, e.Topic(), wantTypes[i], wantTopics[i])
		}
	}
	var d smp.WalletEventData
	if err := json.Unmarshal(evs[1].Data, &d); err != nil {
		t.Fatal(err)
	}
	if d.PostingID != "commission:o1" || d.AmountVND != -35_000 || d.BalanceAfterVND != 465_000 || d.OrderID != "o1" || d.Seq != 2 {
		t.Fatalf("commission event data %+v", d)
	}
}

// TestPostConflictIsCountedAlarm: the same id with another body is
// ECONFLICT and counted in smp_wallet_idempotency_conflicts_total; the
// ledger is unchanged.
func TestPostConflictIsCountedAlarm(t *testing.T) {
	t.Parallel()
	f := newFixture(t)
	f.post(t, topup("TXN1", "P001", 500_000))
	_, err := f.svc.Post(ctx, topup("TXN1", "P001", 600_000), "")
	if smp.ErrorCode(err) != smp.ECONFLICT {
		t.Fatalf("Post(same ref, other amount) = %v, want ECONFLICT", err)
	}
	if got := metric(t, f.reg, "smp_wallet_idempotency_conflicts_total"); got != 1 {
		t.Fatalf("smp_wallet_idempotency_conflicts_total = %v, want 1", got)
	}
	if w, _ := f.svc.FindWallet(ctx, "P001"); w.BalanceVND != 500_000 {
		t.Fatalf("balance %d after a conflict, want 500000", w.BalanceVND)
	}
}

func TestFindWallet(t *testing.T) {
	t.Parallel()
	f := newFixture(t)
	w, err := f.svc.FindWallet(ctx, "P002")
	if err != nil || w.BalanceVND != 0 || w.State != smp.WalletActive || w.PartnerID != "P002" {
		t.Fatalf("untouched wallet %+v, %v", w, err)
	}
}

// TestVerify: a ledger written through the service verifies; changing an
// entry's amount, removing one, or moving a balance outside the ledger
// (all below the store, the append-only triggers dropped) is found.
func TestVerify(t *testing.T) {
	t.Parallel()
	for name, tamper := range map[string]struct {
		sql  []string
		want []string
	}{
		"OK": {},
		"AmountChanged": {[]string{`UPDATE partner_wallet_transactions SET amount_vnd = 1 WHERE seq = 2`},
			[]string{"entry 2 (commission:o1): hash", "account partner:P001: balance", "entry 2 (commission:o1): balance_after"}},
		"EntryRemoved": {[]string{`DELETE FROM partner_wallet_transactions WHERE seq = 2`},
			[]string{"entry adj: seq 3 where 2 was expected", "prev_hash", "account platform:commission: balance 35000 VND, its entries sum to 0"}},
		"BalanceMoved": {[]string{`UPDATE wallet_accounts SET balance_vnd = balance_vnd + 100000 WHERE id = 'partner:P002'`},
			[]string{"account partner:P002: balance", "the balances sum to 100000 VND"}},
		"ChainRewritten": {[]string{`UPDATE partner_wallet_transactions SET prev_hash = '` + strings.Repeat("1", 64) + `' WHERE seq = 3`},
			[]string{"entry 3 (adj): prev_hash", "entry 3 (adj): hash"}},
	} {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			f := newFixture(t)
			f.post(t, topup("TXN1", "P001", 500_000))
			f.post(t, smp.Posting{ID: "commission:o1", Type: smp.WalletCommission, PartnerID: "P001", AmountVND: -35_000, OrderID: "o1", Actor: "system:wallet"})
			f.post(t, smp.Posting{ID: "adj", Type: smp.WalletAdjustment, PartnerID: "P002", AmountVND: 9, Reason: "r", Actor: "finance:lan"})
			if len(tamper.sql) > 0 {
				raw, err := sql.Open("sqlite", f.path)
				if err != nil {
					t.Fatal(err)
				}
				for _, q := range append([]string{`DROP TRIGGER pwt_no_update`, `DROP TRIGGER pwt_no_delete`}, tamper.sql...) {
					if _, err := raw.Exec(q); err != nil {
						t.Fatalf("%s: %v", q, err)
					}
				}
				raw.Close()
			}
			v, err := f.svc.Verify(ctx)
			if err != nil {
				t.Fatal(err)
			}
			if v.Entries < 2 || v.Accounts != 5 {
				t.Fatalf("verification read %d entries, %d accounts", v.Entries, v.Accounts)
			}
			if len(tamper.want) == 0 {
				if !v.OK || len(v.Problems) != 0 || v.HeadSeq != 3 {
					t.Fatalf("untouched ledger: %+v", v)
				}
				return
			}
			if v.OK {
				t.Fatalf("tampered ledger verified: %+v", v)
			}
			all := strings.Join(v.Problems, "\n")
			for _, w := range tamper.want {
				if !strings.Contains(all, w) {
					t.Errorf("problems lack %q:\n%s", w, all)
				}
			}
		})
	}
}

// metric sums every series of a metric family in reg.
func metric(t testing.TB, reg *prometheus.Registry, name string) float64 {
	t.Helper()
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	var sum float64
	for _, mf := range mfs {
		if mf.GetName() != name {
			continue
		}
		for _, m := range mf.GetMetric() {
			sum += m.GetCounter().GetValue() + m.GetGauge().GetValue()
		}
	}
	return sum
}
