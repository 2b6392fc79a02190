package storetest

import (
	"errors"
	"fmt"
	"strings"
	"testing"

	"smp"
)

var masterDataTests = []Test{
	{"MasterData/PutMasterRecord/OK", testPutMasterRecord},
	{"MasterData/PutMasterRecord/OnceByVersion", testPutMasterRecordOnce},
	{"MasterData/PutMasterRecord/ErrInvalid", testPutMasterRecordInvalid},
	{"MasterData/PutMasterRecord/Rollback", testPutMasterRecordRollback},
	{"MasterData/FindMasterRecord/ErrNotFound", testFindMasterRecordNotFound},
	{"MasterData/FindMasterRecords", testFindMasterRecords},
}

func rate(from, to, date, value string, version int64) smp.MasterRecord {
	return smp.MasterRecord{Table: smp.MasterCurrencyRates, Key: from + "/" + to + "/" + date, Version: version, Region: "global", UpdatedAt: T0,
		Fields: map[string]string{"from_currency": from, "to_currency": to, "rate_date": date, "rate": value}}
}

func putMaster(t *testing.T, s Store, r smp.MasterRecord) (before smp.MasterRecord, applied bool, err error) {
	t.Helper()
	err = s.InTx(ctx, func(tx smp.Tx) error {
		before, applied, err = tx.PutMasterRecord(ctx, r)
		return err
	})
	return before, applied, err
}

func testPutMasterRecord(t *testing.T, s Store) {
	r := rate("USD", "VND", "2026-12-01", "25410.5", 1)
	before, applied, err := putMaster(t, s, r)
	must(t, err)
	if !applied || before.Version != 0 {
		t.Fatalf("first put: applied %v, before %+v", applied, before)
	}
	got, err := s.FindMasterRecord(ctx, smp.MasterCurrencyRates, r.Key)
	must(t, err)
	if fmt.Sprint(got) != fmt.Sprint(r) {
		t.Errorf("FindMasterRecord = %+v, want %+v", got, r)
	}
	// Every table round-trips its fields, ints and texts included.
	for _, m := range []smp.MasterRecord{
		{Table: smp.MasterCountries, Key: "VN", Fields: map[string]string{"code": "VN", "name": "Việt Nam"}},
		{Table: smp.MasterCurrencies, Key: "VND", Fields: map[string]string{"code": "VND", "name": "Đồng", "minor_units": "0"}},
		{Table: smp.MasterTaxConfigs, Key: "VN/vat", Fields: map[string]string{"country": "VN", "tax_code": "vat", "rate_bp": "1000", "name": "VAT 10%"}},
		{Table: smp.MasterTranslations, Key: "zh-CN/order.created", Fields: map[string]string{"locale": "zh-CN", "msg_key": "order.created", "text": "订单已创建"}},
	} {
		m.Version, m.Region, m.UpdatedAt = 3, "asia", T0
		_, applied, err := putMaster(t, s, m)
		must(t, err)
		got, err := s.FindMasterRecord(ctx, m.Table, m.Key)
		must(t, err)
		if !applied || fmt.Sprint(got) != fmt.Sprint(m) {
			t.Errorf("%s: applied %v, read %+v, want %+v", m.Table, applied, got, m)
		}
	}
}

// testPutMasterRecordOnce: a version applies once; an older one never
// overwrites a newer.
func testPutMasterRecordOnce(t *testing.T, s Store) {
	_, _, err := putMaster(t, s, rate("USD", "VND", "2026-12-01", "25410.5", 2))
	must(t, err)
	for _, r := range []smp.MasterRecord{rate("USD", "VND", "2026-12-01", "1", 2), rate("USD", "VND", "2026-12-01", "2", 1)} {
		before, applied, err := putMaster(t, s, r)
		must(t, err)
		if applied || before.Version != 2 || before.Fields["rate"] != "25410.5" {
			t.Errorf("version %d over 2: applied %v, before %+v", r.Version, applied, before)
		}
	}
	before, applied, err := putMaster(t, s, rate("USD", "VND", "2026-12-01", "25411", 3))
	must(t, err)
	if !applied || before.Fields["rate"] != "25410.5" {
		t.Errorf("version 3: applied %v, before %+v", applied, before)
	}
	got, err := s.FindMasterRecord(ctx, smp.MasterCurrencyRates, "USD/VND/2026-12-01")
	must(t, err)
	if got.Version != 3 || got.Fields["rate"] != "25411" {
		t.Errorf("stored %+v, want version 3 at 25411", got)
	}
}

func testPutMasterRecordInvalid(t *testing.T, s Store) {
	long := rate("USD", "VND", "2026-12-01", "1", 1)
	long.Region = strings.Repeat("r", 17)
	for name, r := range map[string]smp.MasterRecord{
		"unknown table": {Table: "customers", Key: "C0001", Version: 1},
		"float rate":    rate("USD", "VND", "2026-12-01", "2.5e4", 1),
		"bad date":      rate("USD", "VND", "2026-13-01", "1", 1),
		"wrong key": func() smp.MasterRecord {
			r := rate("USD", "VND", "2026-12-01", "1", 1)
			r.Key = "EUR/VND/2026-12-01"
			return r
		}(),
		"version 0": rate("USD", "VND", "2026-12-01", "1", 0),
		"extra field": func() smp.MasterRecord {
			r := rate("USD", "VND", "2026-12-01", "1", 1)
			r.Fields["phone"] = "x"
			return r
		}(),
		"long region": long,
	} {
		if _, _, err := putMaster(t, s, r); smp.ErrorCode(err) != smp.EINVALID {
			t.Errorf("%s: %v, want EINVALID", name, err)
		}
	}
	if rows, err := s.FindMasterRecords(ctx, smp.MasterDataFilter{Table: smp.MasterCurrencyRates}); err != nil || len(rows) != 0 {
		t.Errorf("after invalid puts: %d rows, %v", len(rows), err)
	}
}

func testPutMasterRecordRollback(t *testing.T, s Store) {
	boom := errors.New("boom")
	err := s.InTx(ctx, func(tx smp.Tx) error {
		if _, _, err := tx.PutMasterRecord(ctx, rate("USD", "VND", "2026-12-01", "1", 1)); err != nil {
			return err
		}
		return boom
	})
	if !errors.Is(err, boom) {
		t.Fatalf("InTx = %v", err)
	}
	if _, err := s.FindMasterRecord(ctx, smp.MasterCurrencyRates, "USD/VND/2026-12-01"); smp.ErrorCode(err) != smp.ENOTFOUND {
		t.Errorf("after rollback: %v, want ENOTFOUND", err)
	}
}

func testFindMasterRecordNotFound(t *testing.T, s Store) {
	if _, err := s.FindMasterRecord(ctx, smp.MasterCountries, "VN"); smp.ErrorCode(err) != smp.ENOTFOUND {
		t.Errorf("missing row: %v, want ENOTFOUND", err)
	}
	for table, key := range map[string]string{"orders": "O1", smp.MasterCountries: "VNM", smp.MasterCurrencyRates: "USD/VND"} {
		if _, err := s.FindMasterRecord(ctx, table, key); smp.ErrorCode(err) != smp.EINVALID {
			t.Errorf("%s %s: %v, want EINVALID", table, key, err)
		}
	}
}

func testFindMasterRecords(t *testing.T, s Store) {
	for _, r := range []smp.MasterRecord{
		rate("USD", "VND", "2026-12-02", "2", 1), rate("EUR", "VND", "2026-12-01", "3", 1),
		rate("USD", "VND", "2026-12-01", "1", 1), rate("USD", "CNY", "2026-12-01", "7.1", 1),
	} {
		_, _, err := putMaster(t, s, r)
		must(t, err)
	}
	var keys []string
	after := ""
	for {
		page, err := s.FindMasterRecords(ctx, smp.MasterDataFilter{Table: smp.MasterCurrencyRates, After: after, Limit: 3})
		must(t, err)
		for _, r := range page {
			keys = append(keys, r.Key)
		}
		if len(page) < 3 {
			break
		}
		after = page[len(page)-1].Key
	}
	want := "[EUR/VND/2026-12-01 USD/CNY/2026-12-01 USD/VND/2026-12-01 USD/VND/2026-12-02]"
	if fmt.Sprint(keys) != want {
		t.Errorf("keys = %v, want %s", keys, want)
	}
	for _, f := range []smp.MasterDataFilter{{Table: "x"}, {Table: smp.MasterCountries, Limit: 1001}, {Table: smp.MasterCountries, After: "VNM"}} {
		if _, err := s.FindMasterRecords(ctx, f); smp.ErrorCode(err) != smp.EINVALID {
			t.Errorf("%+v: %v, want EINVALID", f, err)
		}
	}
}
