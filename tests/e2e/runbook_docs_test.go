package e2e

import (
	"os"
	"os/exec"
	"regexp"
	"strings"
	"testing"
)

// TestRunbookRedisCommandsWork: every redis-cli command docs/runbook.md
// gives runs with the redis-cli installed (7) against a real Redis: no
// option it does not know (redis-cli 7 has no --scan --count). The Redis
// is the test's own (--bigkeys fails on keys other tests delete under it).
func TestRunbookRedisCommandsWork(t *testing.T) {
	redisAddr(t) // CI gate, as the other Redis tests
	t.Parallel()
	addr := startOOMRedis(t)
	if _, err := exec.LookPath("redis-cli"); err != nil {
		t.Skip("redis-cli is not on PATH (package redis-tools)")
	}
	host, port, _ := strings.Cut(addr, ":")
	doc, err := os.ReadFile("../../docs/runbook.md")
	must(t, err)
	var cmds []string // at the start of a line (a sh block) or of inline code
	for _, m := range regexp.MustCompile("(?m)(?:^|`)(redis-cli [^`\n]*)").FindAllStringSubmatch(string(doc), -1) {
		cmds = append(cmds, m[1])
	}
	if len(cmds) < 5 {
		t.Fatalf("%d redis-cli commands in docs/runbook.md", len(cmds))
	}
	for _, c := range cmds {
		run := strings.Replace(c, "-h prod-redis.smp.local", "-h "+host+" -p "+port, 1)
		if run == c {
			run = strings.Replace(c, "redis-cli ", "redis-cli -h "+host+" -p "+port+" ", 1)
		}
		out, err := exec.Command("bash", "-o", "pipefail", "-c", run).CombinedOutput()
		if err != nil || strings.Contains(string(out), "Unrecognized option") || strings.Contains(string(out), "ERR") {
			t.Errorf("%s\n(run as %s): %v\n%s", c, run, err, out)
		}
	}
}
