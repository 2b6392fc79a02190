package wallet_test

import (
	"encoding/json"
	"net/http/httptest"
	"net/url"
	"testing"
	"time"

	"smp"
	"smp/sim"
	"smp/vnpay"
	"smp/wallet"
)

const tmn = "SMPTEST1"

var (
	vnpSecret = []byte("merchant-secret-2026")
	oldSecret = []byte("merchant-secret-2025")
)

// vnpFixture is a wallet service configured for VNPay and the gateway's
// simulator.
type vnpFixture struct {
	*fixture
	gw *sim.VNPay
}

func newVNPay(t testing.TB) *vnpFixture {
	t.Helper()
	f := newFixture(t)
	n := 0
	svc, err := wallet.New(f.store, wallet.Config{VNPay: wallet.VNPay{TmnCode: tmn, Secrets: [][]byte{vnpSecret, oldSecret},
		PayURL: "https://vnpay.test/paymentv2/vpcpay.html", ReturnURL: "https://smp.test/return"},
		NewRef: func() string { n++; return "W" + time.Duration(n).String() }, Now: func() time.Time { return t0 }})
	if err != nil {
		t.Fatal(err)
	}
	f.svc = svc
	return &vnpFixture{fixture: f, gw: &sim.VNPay{TmnCode: tmn, Secret: vnpSecret, Now: func() time.Time { return t0 }, Seed: 1}}
}

func (f *vnpFixture) topup(t testing.TB, partner string, vnd int64) *wallet.TopupCreated {
	t.Helper()
	c, err := f.svc.CreateTopup(ctx, partner, vnd, "203.0.113.7")
	if err != nil {
		t.Fatal(err)
	}
	return c
}

func (f *vnpFixture) ipn(t testing.TB, params url.Values) string {
	t.Helper()
	ans, err := f.svc.HandleIPN(ctx, params)
	if err != nil {
		t.Fatalf("HandleIPN: %v", err)
	}
	if ans.Message != vnpay.RspMessages[ans.RspCode] {
		t.Fatalf("answer %+v", ans)
	}
	return ans.RspCode
}

func (f *vnpFixture) balance(t testing.TB, partner string) int64 {
	t.Helper()
	w, err := f.svc.FindWallet(ctx, partner)
	if err != nil {
		t.Fatal(err)
	}
	return w.BalanceVND
}

// TestTopupThroughVNPay: a top-up's payment URL is paid at the gateway
// (the simulator checks its hash and amount), its IPN answered 00 and the
// wallet credited once with an entry for (vnpay, txn ref); the same IPN
// again is 02 and credits nothing; the IPN was stored in event_log
// (processed) before the answer.
func TestTopupThroughVNPay(t *testing.T) {
	t.Parallel()
	f := newVNPay(t)
	c := f.topup(t, "P001", 200_000)
	if c.TopupID == "" || c.TxnRef == "" {
		t.Fatalf("created %+v", c)
	}
	if _, err := f.gw.Pay(c.PaymentURL, true); err != nil {
		t.Fatal(err)
	}
	ipns := f.gw.Pending()
	if len(ipns) != 1 {
		t.Fatalf("%d IPNs queued", len(ipns))
	}
	if code := f.ipn(t, ipns[0]); code != vnpay.RspConfirmed {
		t.Fatalf("first IPN answered %s", code)
	}
	if code := f.ipn(t, ipns[0]); code != vnpay.RspAlreadyConfirmed {
		t.Fatalf("duplicate IPN answered %s", code)
	}
	if b := f.balance(t, "P001"); b != 200_000 {
		t.Fatalf("balance %d, want 200000", b)
	}
	e, err := f.store.FindWalletEntry(ctx, "vnpay:"+c.TxnRef)
	if err != nil || e.Type != smp.WalletTopup || e.GatewayRef != c.TxnRef {
		t.Fatalf("entry %+v %v", e, err)
	}
	tp, _ := f.store.FindTopup(ctx, smp.GatewayVNPay, c.TxnRef)
	if tp.Status != smp.TopupConfirmed || tp.PostingID != e.ID || tp.TransactionNo == "" {
		t.Fatalf("topup %+v", tp)
	}
	evs, err := f.store.FindInboxEvents(ctx, smp.InboxFilter{OrderID: c.TxnRef})
	if err != nil || len(evs) != 1 || evs[0].Provider != "vnpay" || evs[0].Status != smp.InboxProcessed {
		t.Fatalf("event_log %+v %v", evs, err)
	}
	if v, _ := f.svc.Verify(ctx); !v.OK {
		t.Fatalf("ledger: %v", v.Problems)
	}
}

// TestIPNAnswers: each of the protocol's answers, and that only 00 of a
// success moves money.
func TestIPNAnswers(t *testing.T) {
	t.Parallel()
	f := newVNPay(t)
	resign := func(v url.Values, key []byte) url.Values {
		v.Del(vnpay.ParamSecureHash)
		v.Set(vnpay.ParamSecureHash, vnpay.SignParams(key, v))
		return v
	}
	paid := func(vnd int64, success bool) url.Values {
		c := f.topup(t, "P002", vnd)
		if _, err := f.gw.Pay(c.PaymentURL, success); err != nil {
			t.Fatal(err)
		}
		return f.gw.Pending()[0]
	}
	// 97: a changed amount without the secret; nothing stored.
	v := paid(100_000, true)
	v.Set("vnp_Amount", "1000000000")
	if code := f.ipn(t, v); code != vnpay.RspInvalidChecksum {
		t.Fatalf("tampered: %s", code)
	}
	if evs, _ := f.store.FindInboxEvents(ctx, smp.InboxFilter{OrderID: v.Get("vnp_TxnRef")}); len(evs) != 0 {
		t.Fatalf("a 97 was stored: %+v", evs)
	}
	// 04: a signed IPN whose amount differs from the top-up's; dlq.
	v = resign(v, vnpSecret)
	if code := f.ipn(t, v); code != vnpay.RspInvalidAmount {
		t.Fatalf("amount mismatch: %s", code)
	}
	if evs, _ := f.store.FindInboxEvents(ctx, smp.InboxFilter{OrderID: v.Get("vnp_TxnRef")}); len(evs) != 1 || evs[0].Status != smp.InboxDLQ {
		t.Fatalf("the 04 in event_log: %+v", evs)
	}
	// 01: an unknown txn ref; and another merchant's code.
	v = paid(100_000, true)
	v.Set("vnp_TxnRef", "WUNKNOWN")
	if code := f.ipn(t, resign(v, vnpSecret)); code != vnpay.RspOrderNotFound {
		t.Fatalf("unknown ref: %s", code)
	}
	v = paid(100_000, true)
	v.Set("vnp_TmnCode", "OTHER001")
	if code := f.ipn(t, resign(v, vnpSecret)); code != vnpay.RspOrderNotFound {
		t.Fatalf("other merchant: %s", code)
	}
	// 00 signed with the previous secret (rotation).
	if code := f.ipn(t, resign(paid(300_000, true), oldSecret)); code != vnpay.RspConfirmed {
		t.Fatalf("old secret: %s", code)
	}
	// 00 for a cancelled payment: the top-up fails, no money moves; then 02.
	v = paid(50_000, false)
	if code := f.ipn(t, v); code != vnpay.RspConfirmed {
		t.Fatalf("cancelled: %s", code)
	}
	if tp, _ := f.store.FindTopup(ctx, smp.GatewayVNPay, v.Get("vnp_TxnRef")); tp.Status != smp.TopupFailed {
		t.Fatalf("cancelled topup %+v", tp)
	}
	if code := f.ipn(t, v); code != vnpay.RspAlreadyConfirmed {
		t.Fatalf("cancelled again: %s", code)
	}
	// 99: unreadable (a signed IPN without an amount).
	v = paid(100_000, true)
	v.Del("vnp_Amount")
	if code := f.ipn(t, resign(v, vnpSecret)); code != vnpay.RspUnknownError {
		t.Fatalf("unreadable: %s", code)
	}
	// Only the 300,000 VND success was credited (the 100,000 ones were
	// refused or never delivered).
	if b := f.balance(t, "P002"); b != 300_000 {
		t.Fatalf("balance %d, want 300000", b)
	}
}

// TestCreateTopupRefuses: amounts out of range, an unknown partner, no
// VNPay configuration; nothing written.
func TestCreateTopupRefuses(t *testing.T) {
	t.Parallel()
	f := newVNPay(t)
	for _, tc := range []struct {
		partner string
		vnd     int64
		code    string
	}{{"P001", wallet.MinTopupVND - 1, smp.EINVALID}, {"P001", wallet.MaxTopupVND + 1, smp.EINVALID}, {"P001", -5, smp.EINVALID},
		{"P404", 100_000, smp.ENOTFOUND}} {
		if _, err := f.svc.CreateTopup(ctx, tc.partner, tc.vnd, ""); smp.ErrorCode(err) != tc.code {
			t.Errorf("CreateTopup(%s, %d) = %v, want %s", tc.partner, tc.vnd, err, tc.code)
		}
	}
	if ts, _ := f.store.FindTopups(ctx, smp.TopupFilter{}); len(ts) != 0 {
		t.Fatalf("refused top-ups were written: %+v", ts)
	}
	if _, err := newFixture(t).svc.CreateTopup(ctx, "P001", 100_000, ""); smp.ErrorCode(err) != smp.EUNAVAILABLE {
		t.Fatalf("without VNPay: %v, want EUNAVAILABLE", err)
	}
}

// TestReplayGateway: runbook INC-010 scenario 1. A paid top-up whose IPN
// was dropped is found with querydr and applied; a second replay finds it
// present; a top-up never paid is "not paid"; with the query API down it
// is failed, never applied twice.
func TestReplayGateway(t *testing.T) {
	t.Parallel()
	f := newVNPay(t)
	srv := httptest.NewServer(f.gw)
	t.Cleanup(srv.Close)
	svc, err := wallet.New(f.store, wallet.Config{VNPay: wallet.VNPay{TmnCode: tmn, Secrets: [][]byte{vnpSecret}, PayURL: "https://vnpay.test/pay",
		APIURL: srv.URL + "/merchant_webapi/api/transaction"}, Now: func() time.Time { return t0 }})
	if err != nil {
		t.Fatal(err)
	}
	f.gw.SetFaults(sim.VNPayFaults{DropRate: 1})
	paid := f.topup(t, "P001", 120_000)
	if _, err := f.gw.Pay(paid.PaymentURL, true); err != nil {
		t.Fatal(err)
	}
	f.topup(t, "P002", 80_000) // never paid
	if len(f.gw.Pending()) != 0 || len(f.gw.Dropped()) != 1 {
		t.Fatal("the IPN was not dropped")
	}
	from, to := t0.Add(-time.Hour), t0.Add(time.Hour)
	f.gw.SetFaults(sim.VNPayFaults{QueryDown: true})
	res, err := svc.ReplayGateway(ctx, "vnpay", from, to, "ops:test")
	if err != nil || res.Failed != 2 || res.Applied != 0 {
		t.Fatalf("with querydr down: %+v %v", res, err)
	}
	f.gw.SetFaults(sim.VNPayFaults{})
	res, err = svc.ReplayGateway(ctx, "vnpay", from, to, "ops:test")
	if err != nil || res.Applied != 1 || res.NotPaid != 1 || res.Failed != 0 {
		t.Fatalf("replay: %+v %v", res, err)
	}
	if b := f.balance(t, "P001"); b != 120_000 {
		t.Fatalf("balance %d after the replay", b)
	}
	res, err = svc.ReplayGateway(ctx, "vnpay", from, to, "ops:test")
	if err != nil || res.Applied != 0 || res.AlreadyPresent != 1 || res.NotPaid != 1 {
		t.Fatalf("second replay: %+v %v", res, err)
	}
	// The dropped IPN arriving after all is 02 and moves nothing.
	if code := f.ipn(t, f.gw.Dropped()[0]); code != vnpay.RspAlreadyConfirmed {
		t.Fatalf("the late IPN answered %s", code)
	}
	if b := f.balance(t, "P001"); b != 120_000 {
		t.Fatalf("balance %d after the late IPN", b)
	}
	if _, err := svc.ReplayGateway(ctx, "momo", from, to, "x"); smp.ErrorCode(err) != smp.EINVALID {
		t.Fatalf("another gateway: %v", err)
	}
}

// TestTopupRecordsClient: the request's address, user agent and device id
// are kept with the top-up and carried by payment.wallet_topup_requested
// (the fraud detector's evidence).
func TestTopupRecordsClient(t *testing.T) {
	t.Parallel()
	f := newVNPay(t)
	c, err := f.svc.CreateTopupFrom(ctx, "P001", 200_000, wallet.Client{IP: "198.51.100.4", UserAgent: "okhttp/4.12", DeviceID: "dev-9"})
	if err != nil {
		t.Fatal(err)
	}
	tp, err := f.store.FindTopup(ctx, smp.GatewayVNPay, c.TxnRef)
	if err != nil {
		t.Fatal(err)
	}
	if tp.ClientIP != "198.51.100.4" || tp.UserAgent != "okhttp/4.12" || tp.DeviceID != "dev-9" {
		t.Fatalf("top-up %+v", tp)
	}
	evs := f.outbox(t)
	var found bool
	for _, ev := range evs {
		if ev.Type != wallet.EventTopupRequested {
			continue
		}
		var d map[string]any
		if err := json.Unmarshal(ev.Data, &d); err != nil {
			t.Fatal(err)
		}
		found = d["client_ip"] == "198.51.100.4" && d["user_agent"] == "okhttp/4.12" && d["device_id"] == "dev-9"
	}
	if !found {
		t.Fatalf("no %s event with the client in %d outbox events", wallet.EventTopupRequested, len(evs))
	}
}
