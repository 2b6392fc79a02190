//go:build slow

package main

import (
	"regexp"
	"strconv"
	"strings"
	"testing"
)

// TestDemoRegions runs smp demo --regions asia,china,us in process for 30
// seconds (slow: three whole platforms; CI runs -tags slow): each region
// prints its own port; the simulator's changes in asia (the master) arrive
// in china and in us (a rate's line names both, the summary counts them);
// china's customer is found nowhere else, and the record smuggling their
// phone out was refused at the border into asia.
func TestDemoRegions(t *testing.T) {
	t.Parallel()
	out, errOut, err := smpRun("demo", "--regions", "asia,china,us", "--duration", "30s", "--masterdata-every", "1s",
		"--data-dir", t.TempDir(), "--addr", "127.0.0.1:0", "--partitions", "1")
	if err != nil {
		t.Fatalf("demo: %v\nstdout:\n%s\nstderr:\n%s", err, out, errOut)
	}
	for _, r := range []string{"asia", "china", "us"} {
		if !regexp.MustCompile(`(?m)^  ` + r + ` +http://127\.0\.0\.1:\d+ `).MatchString(out) {
			t.Errorf("no URL printed for %s:\n%s", r, out)
		}
	}
	m := regexp.MustCompile(`master data: (\d+) changes made in asia; arrived: china (\d+)/\d+, us (\d+)/\d+`).FindStringSubmatch(out)
	if m == nil {
		t.Fatalf("no summary of master data:\n%s", out)
	}
	made, _ := strconv.Atoi(m[1])
	china, _ := strconv.Atoi(m[2])
	us, _ := strconv.Atoi(m[3])
	if made < 3 || china < 1 || us < 1 {
		t.Errorf("changes made %s, arrived in china %s, in us %s:\n%s\nstderr:\n%s", m[1], m[2], m[3], out, errOut)
	}
	if !regexp.MustCompile(`asia: currency_rates USD/VND/\S+ = "\S+" \(v\d+\) → china \+\S+s, us \+\S+s`).MatchString(out) {
		t.Errorf("no line of a rate arriving in china and us:\n%s", out)
	}
	if !strings.Contains(out, "china's personal data: customer CUST-CHINA-0001 is in china only") ||
		!regexp.MustCompile(`border into asia: (pii_field|unclassified_field) \d`).MatchString(out) {
		t.Errorf("china's personal data not shown staying in china, or the smuggling record not refused:\n%s", out)
	}
}
