// Package envtest finds the real servers and tools the tests run against
// and makes their absence visible. Each finder reads its SMP_TEST_*
// variable first ("off" turns the thing off); unset, it looks where a
// developer's machine has it: MariaDB at 127.0.0.1:3306, Redis at
// 127.0.0.1:6379, promtool, prometheus, alertmanager and chromium on PATH.
// So `go test ./...` on a machine that has them runs those tests.
//
// A test that cannot run calls Skip, which records what and why. Main
// (wrapping the package's TestMain) then prints one line per missing
// thing at the end of the package's run: on stderr, and on the terminal
// (/dev/tty) because `go test ./...` shows nothing of a passing package
// but its "ok" line. The line is printed once per `go test` run: packages
// of the same run (same parent process) share a marker in the temporary
// directory, so the first package that skips for a reason says it.
package envtest

import (
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"sort"
	"strings"
	"sync"
	"testing"
	"time"
)

// The variables, as .ci/run sets them.
const (
	EnvMySQL        = "SMP_TEST_MYSQL_DSN"
	EnvRedis        = "SMP_TEST_REDIS_ADDR"
	EnvPromtool     = "SMP_TEST_PROMTOOL"
	EnvPrometheus   = "SMP_TEST_PROMETHEUS"
	EnvAlertmanager = "SMP_TEST_ALERTMANAGER"
	EnvChromium     = "SMP_TEST_CHROMIUM"
)

// Where a developer's machine has the servers.
const (
	DefaultMySQLDSN  = "root@tcp(127.0.0.1:3306)/"
	DefaultRedisAddr = "127.0.0.1:6379"
)

var probes sync.Map // address -> bool, probed once per process

func answers(addr string) bool {
	if v, ok := probes.Load(addr); ok {
		return v.(bool)
	}
	c, err := net.DialTimeout("tcp", addr, time.Second)
	if err == nil {
		c.Close()
	}
	probes.Store(addr, err == nil)
	return err == nil
}

// server returns the variable's value, or def, if something answers at
// its address; otherwise "" and why.
func server(env, def string, addrOf func(string) string) (string, string) {
	v := os.Getenv(env)
	switch {
	case v == "off":
		return "", env + "=off"
	case v == "":
		if !answers(addrOf(def)) {
			return "", fmt.Sprintf("%s is unset and nothing answers at %s", env, addrOf(def))
		}
		return def, ""
	case !answers(addrOf(v)):
		return "", fmt.Sprintf("%s=%s but nothing answers at %s", env, v, addrOf(v))
	}
	return v, ""
}

var dsnAddr = regexp.MustCompile(`tcp\(([^)]+)\)`)

// MySQLDSN is the test MySQL/MariaDB server's DSN, or "" and why not.
func MySQLDSN() (dsn, why string) {
	return server(EnvMySQL, DefaultMySQLDSN, func(dsn string) string {
		if m := dsnAddr.FindStringSubmatch(dsn); m != nil {
			return m[1]
		}
		return "127.0.0.1:3306"
	})
}

// RedisAddr is the test Redis server's address, or "" and why not.
func RedisAddr() (addr, why string) {
	return server(EnvRedis, DefaultRedisAddr, func(a string) string { return a })
}

// Binary is the tool named by env, or the first of names on PATH; "" and
// why not.
func Binary(env string, names ...string) (path, why string) {
	if v := os.Getenv(env); v == "off" {
		return "", env + "=off"
	} else if v != "" {
		if _, err := os.Stat(v); err != nil {
			return "", fmt.Sprintf("%s=%s: %v", env, v, err)
		}
		return v, ""
	}
	for _, n := range names {
		if p, err := exec.LookPath(n); err == nil {
			return p, ""
		}
	}
	return "", fmt.Sprintf("%s is unset and %s is not on PATH", env, strings.Join(names, " / "))
}

var (
	mu      sync.Mutex
	skipped = map[string]map[string]int{} // what -> why -> tests
)

// Skip skips tb, recording that what could not run and why, for the line
// Main prints.
func Skip(tb testing.TB, what, why string) {
	tb.Helper()
	mu.Lock()
	if skipped[what] == nil {
		skipped[what] = map[string]int{}
	}
	skipped[what][why]++
	mu.Unlock()
	tb.Skipf("skipping the %s tests: %s", what, why)
}

// M is what goleak.VerifyTestMain and the like take.
type M interface{ Run() int }

type wrapped struct{ m M }

// Main wraps the package's *testing.M: Run runs the tests, then reports
// what was skipped.
func Main(m M) M { return wrapped{m} }

func (w wrapped) Run() int {
	code := w.m.Run()
	Report()
	return code
}

// Report prints what this process skipped, one line per thing, unless
// another package of the same go test run said it already.
func Report() {
	mu.Lock()
	var lines []string
	for what, whys := range skipped {
		n := 0
		var ws []string
		for why, k := range whys {
			n += k
			ws = append(ws, why)
		}
		sort.Strings(ws)
		if !firstInRun(what) {
			continue
		}
		lines = append(lines, fmt.Sprintf("smp tests: SKIPPED the %s tests: %s (%d in %s; other packages of this run skip theirs too)", what, strings.Join(ws, "; "), n, pkgName()))
	}
	mu.Unlock()
	if len(lines) == 0 {
		return
	}
	sort.Strings(lines)
	msg := strings.Join(lines, "\n") + "\n"
	fmt.Fprint(os.Stderr, msg)
	if tty, err := os.OpenFile("/dev/tty", os.O_WRONLY, 0); err == nil {
		io.WriteString(tty, msg)
		tty.Close()
	}
}

// firstInRun reports whether no other package of this go test run (the
// same parent process) has reported what.
func firstInRun(what string) bool {
	dir := filepath.Join(os.TempDir(), fmt.Sprintf("smp-test-skips-%d", os.Getppid()))
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return true
	}
	f, err := os.OpenFile(filepath.Join(dir, strings.NewReplacer("/", "_", " ", "_").Replace(what)), os.O_CREATE|os.O_EXCL|os.O_WRONLY, 0o600)
	if err != nil {
		return false
	}
	f.Close()
	return true
}

func pkgName() string {
	wd, _ := os.Getwd()
	return filepath.Base(wd)
}
