package e2e

import (
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"smp/fraud"
	"smp/internal/wait"
)

// TestFraudRulesSIGHUP: smp serve runs --fraud-rules; a broken file sent
// with SIGHUP is refused (the process keeps serving on the old rules) and
// a tuned one is loaded, as smp_fraud_rules_reloads_total shows.
func TestFraudRulesSIGHUP(t *testing.T) {
	if testing.Short() {
		t.Skip("process-level test")
	}
	t.Parallel()
	dataDir := t.TempDir()
	rules := filepath.Join(dataDir, "rules_engine.yaml")
	must(t, os.WriteFile(rules, fraud.DefaultRules, 0o644))
	addr := freeAddr(t)
	srv := startServer(t, dataDir, addr, "--fraud-rules", rules, "--fraud-rules-poll", "1h")
	defer func() {
		srv.cmd.Process.Signal(syscall.SIGTERM)
		<-srv.done
	}()
	metric := func(outcome string) bool {
		resp, err := http.Get("http://" + addr + "/metrics")
		if err != nil {
			return false
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return strings.Contains(string(b), `smp_fraud_rules_reloads_total{outcome="`+outcome+`"} 1`)
	}
	bad := strings.Replace(string(fraud.DefaultRules), "outcome: soft_block", "outcome: shred", 1)
	must(t, os.WriteFile(rules, []byte(bad), 0o644))
	must(t, srv.cmd.Process.Signal(syscall.SIGHUP))
	wait.Until(t, 10*time.Second, "the broken file refused", func() bool { return metric("refused") })
	tuned := strings.Replace(string(fraud.DefaultRules), `PartnerTopups(duration("10m")) > 5`, `PartnerTopups(duration("10m")) > 8`, 1)
	must(t, os.WriteFile(rules, []byte(tuned), 0o644))
	must(t, srv.cmd.Process.Signal(syscall.SIGHUP))
	wait.Until(t, 10*time.Second, "the tuned file loaded", func() bool { return metric("loaded") })
	resp, err := http.Get("http://" + addr + "/health")
	must(t, err)
	resp.Body.Close()
	if resp.StatusCode != 200 {
		t.Fatalf("/health %d after the reloads", resp.StatusCode)
	}
}
