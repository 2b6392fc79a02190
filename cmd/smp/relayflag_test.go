package main

import (
	"strings"
	"testing"
)

// TestRelayMaxInFlight: --relay-max-in-flight (SMP_RELAY_MAX_IN_FLIGHT)
// reaches the configuration, 4 by default; a value under 1, from the flag
// or the environment, is a usage error (exit 2) that names the flag.
func TestRelayMaxInFlight(t *testing.T) {
	var cfg Config
	fs := newFlagSet("smp serve", &cfg)
	must(t, fs.Parse(nil))
	must(t, cfg.Validate())
	if cfg.RelayMaxInFlight != 4 {
		t.Fatalf("default %d, want 4", cfg.RelayMaxInFlight)
	}
	cfg = Config{}
	fs = newFlagSet("smp serve", &cfg)
	must(t, fs.Parse([]string{"--relay-max-in-flight", "8"}))
	must(t, cfg.Validate())
	if cfg.RelayMaxInFlight != 8 {
		t.Fatalf("--relay-max-in-flight 8 gave %d", cfg.RelayMaxInFlight)
	}

	_, errOut, code := smpExec(t, "", "serve", "--relay-max-in-flight", "0", "--data-dir", t.TempDir())
	if code != 2 || !strings.Contains(errOut, "--relay-max-in-flight must be at least 1") {
		t.Fatalf("smp serve --relay-max-in-flight 0: exit %d, stderr %q", code, errOut)
	}
	t.Setenv("SMP_RELAY_MAX_IN_FLIGHT", "-3")
	_, errOut, err := smpRun("serve", "--data-dir", t.TempDir())
	if exitCode(err) != 2 || !strings.Contains(errOut, "--relay-max-in-flight must be at least 1") {
		t.Fatalf("SMP_RELAY_MAX_IN_FLIGHT=-3: %v (exit %d), stderr %q", err, exitCode(err), errOut)
	}
}
