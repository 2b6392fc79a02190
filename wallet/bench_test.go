package wallet_test

import (
	"database/sql"
	"fmt"
	"net/url"
	"testing"

	"smp/vnpay"
)

// BenchmarkIPN measures VNPay IPNs verified and posted per second (the
// hash checked against two secrets, the IPN stored in event_log, the
// top-up locked and settled, the ledger posting with its chain head and
// balances, the outbox event: one transaction each), beside
// BenchmarkRawInsert, the same SQLite store's rate of one-row
// transactions, in the same run:
//
//	go test ./wallet -run '^$' -bench 'IPN|RawInsert' -benchtime 2000x
func BenchmarkIPN(b *testing.B) {
	f := newVNPay(b)
	ipns := make([]url.Values, b.N)
	for i := range ipns {
		c := f.topup(b, "P001", 100_000)
		if _, err := f.gw.Pay(c.PaymentURL, true); err != nil {
			b.Fatal(err)
		}
		ipns[i] = f.gw.Pending()[0]
	}
	b.ResetTimer()
	for i := range b.N {
		ans, err := f.svc.HandleIPN(ctx, ipns[i])
		if err != nil || ans.RspCode != vnpay.RspConfirmed {
			b.Fatalf("IPN %d: %+v %v", i, ans, err)
		}
	}
	b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "ipn/s")
}

// BenchmarkRawInsert is the store's raw rate: one INSERT per transaction
// on the same kind of database (SQLite, WAL, synchronous=FULL).
func BenchmarkRawInsert(b *testing.B) {
	f := newFixture(b)
	raw, err := sql.Open("sqlite", f.path+"?_pragma=journal_mode(WAL)&_pragma=synchronous(FULL)&_pragma=busy_timeout(10000)")
	if err != nil {
		b.Fatal(err)
	}
	defer raw.Close()
	raw.SetMaxOpenConns(1)
	if _, err := raw.Exec(`CREATE TABLE bench_raw (id INTEGER PRIMARY KEY, v TEXT NOT NULL)`); err != nil {
		b.Fatal(err)
	}
	b.ResetTimer()
	for i := range b.N {
		tx, err := raw.Begin()
		if err != nil {
			b.Fatal(err)
		}
		if _, err := tx.Exec(`INSERT INTO bench_raw (v) VALUES (?)`, fmt.Sprint("row ", i)); err != nil {
			b.Fatal(err)
		}
		if err := tx.Commit(); err != nil {
			b.Fatal(err)
		}
	}
	b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "tx/s")
}
