package smp

import (
	"strings"
	"testing"
)

func TestMasterTableCheck(t *testing.T) {
	t.Parallel()
	rates, err := FindMasterTable(MasterCurrencyRates)
	if err != nil {
		t.Fatal(err)
	}
	ok := func() map[string]string {
		return map[string]string{"from_currency": "USD", "to_currency": "VND", "rate_date": "2026-12-01", "rate": "25410.5"}
	}
	if key, err := rates.Check(ok()); err != nil || key != "USD/VND/2026-12-01" {
		t.Fatalf("Check = %q, %v", key, err)
	}
	for _, c := range []struct{ field, value string }{
		{"rate", "2.5e4"}, {"rate", "-1"}, {"rate", "0"}, {"rate", "01.5"}, {"rate", "1.50"}, {"rate", "1."}, {"rate", "NaN"},
		{"rate", "1.1234567890123"}, {"rate_date", "2026-02-30"}, {"rate_date", "2026-1-01"}, {"from_currency", "usd"},
		{"to_currency", "VNDX"}, {"phone", "+84901234567"},
	} {
		f := ok()
		f[c.field] = c.value
		if _, err := rates.Check(f); ErrorCode(err) != EINVALID {
			t.Errorf("%s=%q: %v, want EINVALID", c.field, c.value, err)
		}
	}
	f := ok()
	delete(f, "rate")
	if _, err := rates.Check(f); ErrorCode(err) != EINVALID {
		t.Errorf("missing rate: %v", err)
	}
	for _, v := range []string{"0.0000412", "24350", "1.5"} {
		f := ok()
		f["rate"] = v
		if _, err := rates.Check(f); err != nil {
			t.Errorf("rate %q: %v", v, err)
		}
	}
	tr, _ := FindMasterTable(MasterTranslations)
	long := map[string]string{"locale": "vi", "msg_key": "k", "text": strings.Repeat("ă", 2001)}
	if _, err := tr.Check(long); ErrorCode(err) != EINVALID {
		t.Errorf("2001 characters: %v", err)
	}
	if _, err := FindMasterTable("customers"); ErrorCode(err) != EINVALID {
		t.Errorf("customers is not master data: %v", err)
	}
	if _, err := rates.SplitKey("USD/VND"); ErrorCode(err) != EINVALID {
		t.Errorf("short key: %v", err)
	}
	e := Event{Type: rates.EventType()}
	if e.Topic() != "masterdata.currency_rates" || rates.Topic() != e.Topic() {
		t.Errorf("topic %q", e.Topic())
	}
	for _, r := range []string{"", "Asia", "1us", "global-eu", strings.Repeat("a", 17)} {
		if ValidRegion(r) == nil {
			t.Errorf("region %q accepted", r)
		}
	}
}

// TestMasterDataIsNotPII: every column of a master-data table is
// classified not_pii, so the tables may cross regions.
func TestMasterDataIsNotPII(t *testing.T) {
	t.Parallel()
	for _, mt := range MasterTables {
		for _, c := range append([]string{"version", "region", "updated_at"}, func() (n []string) {
			for _, f := range mt.Fields {
				n = append(n, f.Name)
			}
			return n
		}()...) {
			if cl, ok := ColumnClass(mt.Name, c); !ok || cl != NotPII {
				t.Errorf("%s.%s: %q", mt.Name, c, cl)
			}
		}
	}
}
