package deploy

import (
	"regexp"
	"strconv"
	"testing"

	"smp"
)

// TestHotDataLagThreshold: RegionReplicationLagHotData fires above the
// same lag at which prices and invoices say which rate date they use
// (smp.HotDataMaxLag, package pricing).
func TestHotDataLagThreshold(t *testing.T) {
	t.Parallel()
	m := regexp.MustCompile(`alert: RegionReplicationLagHotData\s+expr: [^\n]*region_replication_lag_seconds\) > (\d+)\n`).FindSubmatch(alertsYAML)
	if m == nil {
		t.Fatal("RegionReplicationLagHotData: no expr `... region_replication_lag_seconds) > N` in prometheus/alerts.yml")
	}
	if n, _ := strconv.Atoi(string(m[1])); n != int(smp.HotDataMaxLag.Seconds()) {
		t.Errorf("RegionReplicationLagHotData fires above %d s, prices turn stale above smp.HotDataMaxLag %v: keep them equal", n, smp.HotDataMaxLag)
	}
}
