package fraud_test

import (
	"net"
	"os"
	"path/filepath"
	"slices"
	"testing"
	"time"

	"github.com/maxmind/mmdbwriter"
	"github.com/maxmind/mmdbwriter/mmdbtype"

	"smp"
	"smp/fraud"
)

// writeGeoDB writes a small MaxMind country database: each network to its
// country (registered_country only for the "reg:" ones).
func writeGeoDB(t *testing.T, nets map[string]string) string {
	t.Helper()
	tree, err := mmdbwriter.New(mmdbwriter.Options{DatabaseType: "GeoLite2-Country", RecordSize: 24, IncludeReservedNetworks: true})
	if err != nil {
		t.Fatal(err)
	}
	for cidr, cc := range nets {
		_, n, err := net.ParseCIDR(cidr)
		if err != nil {
			t.Fatal(err)
		}
		key := "country"
		if len(cc) > 4 && cc[:4] == "reg:" {
			key, cc = "registered_country", cc[4:]
		}
		if err := tree.Insert(n, mmdbtype.Map{mmdbtype.String(key): mmdbtype.Map{"iso_code": mmdbtype.String(cc)}}); err != nil {
			t.Fatal(err)
		}
	}
	path := filepath.Join(t.TempDir(), "GeoLite2-Country.mmdb")
	f, err := os.Create(path)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := tree.WriteTo(f); err != nil {
		t.Fatal(err)
	}
	if err := f.Close(); err != nil {
		t.Fatal(err)
	}
	return path
}

// TestGeoIPDatabase: countries read from a MaxMind database written by
// mmdbwriter (IPv4, IPv6, registered country only, an address it does not
// hold), and the geography rule on them: a Singapore address for a
// Vietnamese partner fires, a Vietnamese one does not, an unknown one is
// unknown.
func TestGeoIPDatabase(t *testing.T) {
	t.Parallel()
	path := writeGeoDB(t, map[string]string{"203.0.113.0/24": "SG", "198.51.100.0/24": "VN", "2001:db8::/32": "JP", "192.0.2.0/24": "reg:US"})
	g, err := fraud.OpenGeoIP(path)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { g.Stop(ctx) })
	for ip, want := range map[string]string{"203.0.113.7": "SG", "198.51.100.1": "VN", "2001:db8::1": "JP", "192.0.2.9": "US", "10.1.2.3": "",
		"::ffff:203.0.113.8": "SG"} {
		if got, err := g.Country(ip); err != nil || got != want {
			t.Errorf("Country(%s) = %q, %v; want %q", ip, got, err, want)
		}
	}
	if _, err := g.Country("not-an-ip"); err == nil {
		t.Error("a malformed address is an error")
	}
	if _, err := fraud.OpenGeoIP(filepath.Join(t.TempDir(), "missing.mmdb")); err == nil {
		t.Error("a missing database opened")
	}
	f := newFixture(t, fraud.Config{Geo: g, Now: func() time.Time { return t0 }})
	for ip, want := range map[string]string{"203.0.113.7": smp.RuleHit, "198.51.100.1": smp.RuleMiss, "10.1.2.3": smp.RuleUnknown} {
		d := f.run(t, topup{partner: "P001", vnd: 100_000, ip: ip})
		if r := result(d, "geography"); r.Result != want || (want == smp.RuleHit) != slices.Contains(d.Signals, "geography") {
			t.Errorf("geography for %s: %s (%v), want %s", ip, r.Result, r.Values, want)
		}
	}
}
