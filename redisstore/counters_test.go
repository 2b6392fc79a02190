package redisstore_test

import (
	"context"
	"testing"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"
	"github.com/redis/go-redis/v9"

	"smp/redisstore"
)

// TestCommandCounts: every command is counted by name, a pipeline as one
// round trip of its commands, and /metrics has both.
func TestCommandCounts(t *testing.T) {
	t.Parallel()
	s := open(t)
	ctx := context.Background()
	before := s.Counts()
	rdb := s.Client()
	must(t, rdb.Set(ctx, s.Prefix()+"a", "1", 0).Err())
	must(t, rdb.Get(ctx, s.Prefix()+"a").Err())
	_, err := rdb.Pipelined(ctx, func(p redis.Pipeliner) error {
		p.Incr(ctx, s.Prefix()+"b")
		p.Incr(ctx, s.Prefix()+"b")
		p.Get(ctx, s.Prefix()+"a")
		return nil
	})
	must(t, err)
	got := s.Counts().Sub(before)
	// A new connection's handshake (hello, client setinfo) counts too.
	handshake := got.ByName["hello"] + got.ByName["client"]
	if got.Commands != 5+handshake || got.ByName["incr"] != 2 || got.ByName["get"] != 2 || got.ByName["set"] != 1 || got.RoundTrips < 3 || got.RoundTrips > 3+handshake {
		t.Fatalf("counted %+v, want 5 commands (set 1, get 2, incr 2) in 3 round trips, besides handshakes", got)
	}
	delete(got.ByName, "hello")
	delete(got.ByName, "client")
	if top := got.Top(1); len(top) != 1 || top[0] != (redisstore.NamedCount{Name: "get", N: 2}) {
		t.Fatalf("Top(1) = %v", top)
	}

	reg := prometheus.NewRegistry()
	reg.MustRegister(redisstore.NewCollector(s))
	if n, err := testutil.GatherAndCount(reg, "smp_redis_roundtrips_total"); err != nil || n != 1 {
		t.Fatalf("smp_redis_roundtrips_total: %d series, %v", n, err)
	}
	mfs, err := reg.Gather()
	must(t, err)
	for _, mf := range mfs {
		if mf.GetName() != "smp_redis_commands_total" {
			continue
		}
		for _, m := range mf.GetMetric() {
			if m.GetLabel()[0].GetValue() == "incr" && m.GetCounter().GetValue() != 2 {
				t.Fatalf("smp_redis_commands_total{cmd=incr} = %v", m.GetCounter().GetValue())
			}
		}
		return
	}
	t.Fatal("no smp_redis_commands_total")
}
