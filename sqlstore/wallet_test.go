package sqlstore_test

import (
	"context"
	"database/sql"
	"strings"
	"testing"
	"time"

	"smp"
	"smp/sqlstore"
)

// testWalletAppendOnly: partner_wallet_transactions refuses UPDATE and
// DELETE from any client (a trigger on both backends), not only from
// sqlstore's code, which has neither.
func testWalletAppendOnly(t *testing.T, open func(*testing.T) sqlstore.Config) {
	cfg := open(t)
	db := mustOpen(t, cfg)
	ctx := context.Background()
	must(t, db.UpsertPartner(ctx, &smp.Partner{ID: "P1", Name: "P"}))
	must(t, db.InTx(ctx, func(tx smp.Tx) error {
		_, _, err := tx.PostWallet(ctx, smp.Posting{ID: "vnpay:T1", Type: smp.WalletTopup, PartnerID: "P1", AmountVND: 1000,
			Gateway: "vnpay", GatewayRef: "T1", Actor: "a", At: time.Now()})
		return err
	}))
	driver, dsn := "sqlite", cfg.Path
	if cfg.MySQLDSN != "" {
		driver, dsn = "mysql", cfg.MySQLDSN
	}
	raw, err := sql.Open(driver, dsn)
	must(t, err)
	defer raw.Close()
	for _, q := range []string{`UPDATE partner_wallet_transactions SET amount_vnd = 1 WHERE id = 'vnpay:T1'`,
		`DELETE FROM partner_wallet_transactions WHERE id = 'vnpay:T1'`} {
		if _, err := raw.ExecContext(ctx, q); err == nil || !strings.Contains(err.Error(), "append-only") {
			t.Fatalf("%s: error %v, want the append-only trigger's", q, err)
		}
	}
	if e, err := db.FindWalletEntry(ctx, "vnpay:T1"); err != nil || e.AmountVND != 1000 {
		t.Fatalf("entry after refused changes: %+v %v", e, err)
	}
}
