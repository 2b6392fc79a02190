package redisstore

import (
	"context"
	"sort"
	"strings"
	"sync"
	"sync/atomic"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/redis/go-redis/v9"
)

// commandCounts is a go-redis hook counting the commands SMP sends and the
// round trips they take (a pipeline or MULTI/EXEC is one round trip of
// several commands; a script is one EVALSHA, plus an EVAL the first time
// the server lacks it). Commands are counted by lower-case name, a set
// bounded by SMP's code.
type commandCounts struct {
	byName     sync.Map // string -> *atomic.Uint64
	roundTrips atomic.Uint64
}

var _ redis.Hook = (*commandCounts)(nil)

func (c *commandCounts) add(cmd redis.Cmder) {
	name := strings.ToLower(cmd.Name())
	v, ok := c.byName.Load(name)
	if !ok {
		v, _ = c.byName.LoadOrStore(name, new(atomic.Uint64))
	}
	v.(*atomic.Uint64).Add(1)
}

func (c *commandCounts) DialHook(next redis.DialHook) redis.DialHook { return next }

func (c *commandCounts) ProcessHook(next redis.ProcessHook) redis.ProcessHook {
	return func(ctx context.Context, cmd redis.Cmder) error {
		c.add(cmd)
		c.roundTrips.Add(1)
		return next(ctx, cmd)
	}
}

func (c *commandCounts) ProcessPipelineHook(next redis.ProcessPipelineHook) redis.ProcessPipelineHook {
	return func(ctx context.Context, cmds []redis.Cmder) error {
		for _, cmd := range cmds {
			c.add(cmd)
		}
		c.roundTrips.Add(1)
		return next(ctx, cmds)
	}
}

// RedisCounts is what a Store has sent Redis so far.
type RedisCounts struct {
	Commands   uint64            // all commands
	RoundTrips uint64            // requests waited for (a pipeline is one)
	ByName     map[string]uint64 // commands by lower-case name
}

// Sub is c minus an earlier count.
func (c RedisCounts) Sub(earlier RedisCounts) RedisCounts {
	out := RedisCounts{Commands: c.Commands - earlier.Commands, RoundTrips: c.RoundTrips - earlier.RoundTrips, ByName: map[string]uint64{}}
	for k, v := range c.ByName {
		if d := v - earlier.ByName[k]; d > 0 {
			out.ByName[k] = d
		}
	}
	return out
}

// NamedCount is a command's name and count.
type NamedCount struct {
	Name string
	N    uint64
}

// Top is the n most frequent commands, most frequent first.
func (c RedisCounts) Top(n int) []NamedCount {
	var all []NamedCount
	for k, v := range c.ByName {
		all = append(all, NamedCount{k, v})
	}
	sort.Slice(all, func(i, j int) bool { return all[i].N > all[j].N || all[i].N == all[j].N && all[i].Name < all[j].Name })
	return all[:min(n, len(all))]
}

// Counts is what this Store has sent Redis so far (smp-bench divides it
// per order; /metrics has it as smp_redis_commands_total{cmd} and
// smp_redis_roundtrips_total).
func (s *Store) Counts() RedisCounts {
	out := RedisCounts{RoundTrips: s.counts.roundTrips.Load(), ByName: map[string]uint64{}}
	s.counts.byName.Range(func(k, v any) bool {
		n := v.(*atomic.Uint64).Load()
		out.ByName[k.(string)] = n
		out.Commands += n
		return true
	})
	return out
}

var (
	commandsDesc   = prometheus.NewDesc("smp_redis_commands_total", "Commands this process sent Redis, by lower-case command name (a script run is evalsha, or eval when Redis lacked it).", []string{"cmd"}, nil)
	roundTripsDesc = prometheus.NewDesc("smp_redis_roundtrips_total", "Requests this process sent Redis and waited for: a pipeline or MULTI/EXEC of several commands is one.", nil, nil)
)
