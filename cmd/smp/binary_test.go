package main

import (
	"debug/buildinfo"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

// TestProductionBinaryLinksNoBenchmarks builds smp as it ships and reads
// its build info (go version -m): the benchmarks' references (kfake, the
// fake Kafka cluster) are in smp-bench, not in smp.
func TestProductionBinaryLinksNoBenchmarks(t *testing.T) {
	t.Parallel()
	bin := filepath.Join(t.TempDir(), "smp")
	if out, err := exec.Command("go", "build", "-o", bin, ".").CombinedOutput(); err != nil {
		t.Fatalf("go build: %v\n%s", err, out)
	}
	info, err := buildinfo.ReadFile(bin)
	must(t, err)
	if info.Path != "smp/cmd/smp" || len(info.Deps) == 0 {
		t.Fatalf("build info of %s: path %q, %d deps", bin, info.Path, len(info.Deps))
	}
	for _, d := range info.Deps {
		if strings.Contains(d.Path, "kfake") {
			t.Errorf("smp links %s %s: the benchmarks belong in smp-bench", d.Path, d.Version)
		}
	}
}
