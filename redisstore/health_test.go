package redisstore_test

import (
	"context"
	"net"
	"os/exec"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"

	"smp/internal/envtest"
	"smp/internal/wait"
	"smp/redisstore"
)

// ownRedis starts a redis-server of the test's own on a spare port (its
// configuration is changed by the test, so not the shared one).
func ownRedis(t *testing.T, args ...string) string {
	t.Helper()
	bin, err := exec.LookPath("redis-server")
	if err != nil {
		envtest.Skip(t, "redis-server", "redis-server is not on PATH (Debian package redis-server)")
	}
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	port := strconv.Itoa(l.Addr().(*net.TCPAddr).Port)
	l.Close()
	cmd := exec.Command(bin, append([]string{"--bind", "127.0.0.1", "--port", port, "--save", "", "--appendonly", "no"}, args...)...)
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { cmd.Process.Kill(); cmd.Wait() })
	addr := "127.0.0.1:" + port
	wait.Until(t, 10*time.Second, "redis-server up", func() bool {
		c, err := net.Dial("tcp", addr)
		if err == nil {
			c.Close()
		}
		return err == nil
	})
	return addr
}

// TestMemoryWithoutMaxmemory (runbook INC-004): a Redis without maxmemory
// reports its use against the host's memory (not 0, which could never
// alert) and redis_maxmemory_configured 0; with a limit, against the
// limit and 1.
func TestMemoryWithoutMaxmemory(t *testing.T) {
	t.Parallel()
	addr := ownRedis(t)
	ctx := context.Background()
	s, err := redisstore.Open(ctx, redisstore.Config{Addr: addr})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	m, err := s.Memory(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if m.MaxBytes != 0 || m.SystemBytes == 0 || m.UsedPercent <= 0 || m.UsedPercent >= 100 {
		t.Fatalf("without maxmemory: %+v, want a percentage of the host's memory", m)
	}
	reg := prometheus.NewRegistry()
	reg.MustRegister(redisstore.NewCollector(s))
	want := "# HELP redis_maxmemory_configured 1 when Redis has a maxmemory limit; 0 when it has none (it grows until the host runs out: set maxmemory and the noeviction policy, docs/redis.md).\n# TYPE redis_maxmemory_configured gauge\nredis_maxmemory_configured %s\n"
	if err := testutil.GatherAndCompare(reg, strings.NewReader(strings.Replace(want, "%s", "0", 1)), "redis_maxmemory_configured"); err != nil {
		t.Fatal(err)
	}

	if err := s.Client().ConfigSet(ctx, "maxmemory", strconv.FormatInt(4*m.UsedBytes, 10)).Err(); err != nil {
		t.Fatal(err)
	}
	m, err = s.Memory(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if m.MaxBytes == 0 || m.UsedPercent < 15 || m.UsedPercent > 35 {
		t.Fatalf("with maxmemory at 4x the use: %+v, want about 25%%", m)
	}
	if err := testutil.GatherAndCompare(reg, strings.NewReader(strings.Replace(want, "%s", "1", 1)), "redis_maxmemory_configured"); err != nil {
		t.Fatal(err)
	}
}
