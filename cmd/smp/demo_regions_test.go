package main

import (
	"strings"
	"testing"
)

// TestDemoRegionsRefusesBadLists: a bad --regions is a usage error (exit
// 2) naming what is wrong, before anything starts.
func TestDemoRegionsRefusesBadLists(t *testing.T) {
	t.Parallel()
	for list, want := range map[string]string{
		"asia":              "at least two regions",
		"asia,asia":         "asia is named twice",
		"asia,China":        `region "China"`,
		"":                  `region ""`,
		"asia,,us":          `region ""`,
		"asia,china,us,x-y": `region "x-y"`,
	} {
		out, errOut, err := smpRun("demo", "--regions", list, "--data-dir", t.TempDir())
		if exitCode(err) != 2 || out != "" || !strings.Contains(errOut, want) {
			t.Errorf("--regions %q: exit %d, stdout %q, stderr %q; want exit 2 naming %q", list, exitCode(err), out, errOut, want)
		}
	}
	_, errOut, err := smpRun("demo", "--regions", "asia,us", "--master-region", "china", "--data-dir", t.TempDir())
	if exitCode(err) != 2 || !strings.Contains(errOut, "--master-region china is not one of --regions") {
		t.Errorf("--master-region outside --regions: exit %d, %q", exitCode(err), errOut)
	}
}
