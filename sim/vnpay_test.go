package sim_test

import (
	"bytes"
	"context"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"sync"
	"testing"
	"time"

	"smp/sim"
	"smp/vnpay"
)

var gwSecret = []byte("sim-secret")

func payURL(ref string, vnd int64, at time.Time) string {
	return vnpay.PaymentURL("http://vnpay/paymentv2/vpcpay.html", gwSecret, vnpay.PaymentRequest{TmnCode: "SIMTMN01", AmountVND: vnd, TxnRef: ref,
		OrderInfo: "topup " + ref, IPAddr: "1.2.3.4", Created: at})
}

func query(g *sim.VNPay, id, ref string, secret []byte) vnpay.QueryResponse {
	q := vnpay.QueryRequest{RequestID: id, Version: vnpay.Version, Command: "querydr", TmnCode: "SIMTMN01", TxnRef: ref, OrderInfo: "q",
		TransactionDate: "20261123170000", CreateDate: "20261123180000", IPAddr: "1.2.3.4"}
	q.SecureHash = vnpay.Sign(secret, q.HashData())
	return g.QueryDR(q)
}

// TestVNPaySimQueryDR: querydr's codes 00, 91, 94, 97 and 99, each
// response signed over its "|"-joined fields.
func TestVNPaySimQueryDR(t *testing.T) {
	at := time.Date(2026, 11, 23, 10, 0, 0, 0, time.UTC)
	g := &sim.VNPay{TmnCode: "SIMTMN01", Secret: gwSecret, Now: func() time.Time { return at }}
	if _, err := g.Pay(payURL("W1", 150_000, at), true); err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		id, ref string
		secret  []byte
		code    string
	}{{"q1", "W1", gwSecret, "00"}, {"q1", "W1", gwSecret, "94"}, {"q2", "W404", gwSecret, "91"}, {"q3", "W1", []byte("bad"), "97"}} {
		r := query(g, tc.id, tc.ref, tc.secret)
		if r.ResponseCode != tc.code || vnpay.VerifyHash(r.SecureHash, r.HashData(), [][]byte{gwSecret}) != nil {
			t.Errorf("query %s %s: %+v, want code %s, signed", tc.id, tc.ref, r, tc.code)
		}
		if tc.code == "00" && (r.Amount != "15000000" || r.TransactionStatus != "00" || r.TransactionNo == "") {
			t.Errorf("query result %+v", r)
		}
	}
	g.SetFaults(sim.VNPayFaults{QueryDown: true})
	if r := query(g, "q4", "W1", gwSecret); r.ResponseCode != "99" {
		t.Errorf("query with the API down: %s", r.ResponseCode)
	}
	if _, err := g.Pay(strings.Replace(payURL("W2", 1000, at), "vnp_Amount=100000", "vnp_Amount=900000", 1), true); err == nil {
		t.Error("a payment URL with a changed amount was paid")
	}
}

// TestVNPaySimDailyFile: day T is Asia/Ho_Chi_Minh's: a payment at
// 23:30 UTC belongs to the next day.
func TestVNPaySimDailyFile(t *testing.T) {
	var at time.Time
	g := &sim.VNPay{TmnCode: "SIMTMN01", Secret: gwSecret, Now: func() time.Time { return at }}
	at = time.Date(2026, 11, 23, 10, 0, 0, 0, time.UTC)
	g.Pay(payURL("WA", 100_000, at), true)
	at = time.Date(2026, 11, 23, 23, 30, 0, 0, time.UTC) // 06:30 on the 24th in HCMC
	g.Pay(payURL("WB", 200_000, at), false)
	var b bytes.Buffer
	if err := g.DailyFile(&b, "2026-11-24"); err != nil {
		t.Fatal(err)
	}
	want := "txn_ref,transaction_no,amount_vnd,response_code,transaction_status,bank_code,pay_date,currency,amount\nWB,14000002,200000,24,02,NCB,20261124063000,VND,200000\n"
	if b.String() != want {
		t.Fatalf("daily file\n%s\nwant\n%s", b.String(), want)
	}
}

// TestVNPaySimDelivery: IPNs delivered over HTTP to the merchant, with the
// drop, duplicate, reorder and wrong-hash knobs.
func TestVNPaySimDelivery(t *testing.T) {
	at := time.Date(2026, 11, 23, 10, 0, 0, 0, time.UTC)
	var mu sync.Mutex
	var got []url.Values
	merchant := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		q := r.URL.Query()
		mu.Lock()
		got = append(got, q)
		mu.Unlock()
		code := vnpay.RspConfirmed
		if vnpay.VerifyParams(q, [][]byte{gwSecret}) != nil {
			code = vnpay.RspInvalidChecksum
		}
		json.NewEncoder(w).Encode(vnpay.Answer(code))
	}))
	defer merchant.Close()
	g := &sim.VNPay{TmnCode: "SIMTMN01", Secret: gwSecret, IPNURL: merchant.URL, Now: func() time.Time { return at }, Seed: 3}
	g.SetFaults(sim.VNPayFaults{DuplicateRate: 1, Reorder: true})
	for _, ref := range []string{"W1", "W2", "W3"} {
		g.Pay(payURL(ref, 10_000, at), true)
	}
	answers, err := g.Deliver(context.Background())
	if err != nil || len(answers) != 6 || len(got) != 6 {
		t.Fatalf("duplicated delivery: %d answers, %d received, %v", len(answers), len(got), err)
	}
	g.SetFaults(sim.VNPayFaults{DropRate: 1})
	g.Pay(payURL("W4", 10_000, at), true)
	if answers, _ := g.Deliver(context.Background()); len(answers) != 0 || len(g.Dropped()) != 1 {
		t.Fatalf("dropped: %d answers, %d dropped", len(answers), len(g.Dropped()))
	}
	g.SetFaults(sim.VNPayFaults{WrongHash: true})
	g.Pay(payURL("W5", 10_000, at), true)
	if answers, _ := g.Deliver(context.Background()); len(answers) != 1 || answers[0].RspCode != vnpay.RspInvalidChecksum {
		t.Fatalf("wrong hash: %+v", answers)
	}
}
