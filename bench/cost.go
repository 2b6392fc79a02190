package bench

import (
	"fmt"
	"math"
	"strings"
	"time"

	"smp/app"
	"smp/internal/sqldb"
	"smp/redisstore"
	"smp/sqlbus"
)

// Cost is what a measured stretch asked of the databases and the CPU, per
// order: SQL statements and commits of the store and of the embedded event
// log (sqldb.Counters), Redis commands (a go-redis hook), and the CPU time
// of this process (the server and the load's HTTP client; the fleet runs
// in a child process above 1,000 technicians). Everything the process did
// meanwhile is in it: the relay, the consumers, the sweeper, heartbeats.
type Cost struct {
	Orders        int                `json:"orders"`
	SQLStatements float64            `json:"sql_statements"`
	SQLByOp       map[string]float64 `json:"sql_by_op"`
	// Commits are the commits of write transactions (and writes outside
	// one): Store and Bus (the embedded event log's own database).
	Commits      float64 `json:"write_commits"`
	StoreCommits float64 `json:"store_write_commits"`
	BusCommits   float64 `json:"bus_write_commits"`
	// Fsyncs: on the embedded default (SQLite, WAL, synchronous=FULL) each
	// write commit fsyncs the WAL once; 0 on MySQL, whose flushes are
	// InnoDB's (one per write commit, grouped under load).
	Fsyncs          float64  `json:"fsyncs"`
	RedisCommands   float64  `json:"redis_commands"`
	RedisRoundTrips float64  `json:"redis_roundtrips"`
	TopRedis        []string `json:"top_redis,omitempty"` // most frequent commands, per order
	CPUms           float64  `json:"cpu_ms"`
}

// counts is one reading of the counters.
type counts struct {
	store, bus sqldb.CounterSnapshot
	redis      redisstore.RedisCounts
	cpu        time.Duration
	at         time.Time
}

// meter reads an app's counters.
type meter struct {
	a        *app.App
	embedded bool
}

func newMeter(a *app.App, backend string) meter { return meter{a: a, embedded: backend == "embedded"} }

func (m meter) read() counts {
	c := counts{store: m.a.Store.SQLCounts(), cpu: processCPU(), at: time.Now()}
	if l, ok := m.a.Bus.(*sqlbus.Bus); ok {
		c.bus = l.SQLCounts()
	}
	if m.a.Redis != nil {
		c.redis = m.a.Redis.Counts()
	}
	return c
}

// per is the cost from before to now, per order.
func (m meter) per(before counts, orders int) Cost {
	now := m.read()
	store, bus := now.store.Sub(before.store), now.bus.Sub(before.bus)
	redis := now.redis.Sub(before.redis)
	n := float64(max(orders, 1))
	all := store.Add(bus)
	c := Cost{Orders: orders, SQLStatements: round2(float64(all.TotalStatements()) / n), SQLByOp: map[string]float64{},
		Commits: round2(float64(all.WriteCommits) / n), StoreCommits: round2(float64(store.WriteCommits) / n), BusCommits: round2(float64(bus.WriteCommits) / n),
		RedisCommands: round2(float64(redis.Commands) / n), RedisRoundTrips: round2(float64(redis.RoundTrips) / n),
		CPUms: round2(float64(now.cpu-before.cpu) / float64(time.Millisecond) / n)}
	for op := sqldb.OpSelect; op <= sqldb.OpOther; op++ {
		if v := all.Statements[op]; v > 0 {
			c.SQLByOp[op.String()] = round2(float64(v) / n)
		}
	}
	if m.embedded {
		c.Fsyncs = c.Commits
	}
	for _, nc := range redis.Top(6) {
		c.TopRedis = append(c.TopRedis, fmt.Sprintf("%s %.2f", nc.Name, float64(nc.N)/n))
	}
	return c
}

// Idle is what the platform does with nothing to do, over a window.
type Idle struct {
	What            string  `json:"what"`
	Seconds         float64 `json:"seconds"`
	CPUPercent      float64 `json:"cpu_percent_of_a_core"`
	SQLPerSecond    float64 `json:"sql_statements_per_s"`
	CommitsPerS     float64 `json:"write_commits_per_s"`
	RedisPerSecond  float64 `json:"redis_commands_per_s"`
	TopSQLBreakdown string  `json:"sql_by_op,omitempty"`
}

// idle measures the process over d while nothing is asked of it.
func (m meter) idle(what string, d time.Duration) Idle {
	before := m.read()
	time.Sleep(d) // the window measured
	now := m.read()
	secs := now.at.Sub(before.at).Seconds()
	all := now.store.Sub(before.store).Add(now.bus.Sub(before.bus))
	var parts []string
	for op := sqldb.OpSelect; op <= sqldb.OpOther; op++ {
		if v := all.Statements[op]; v > 0 {
			parts = append(parts, fmt.Sprintf("%s %.1f/s", op, float64(v)/secs))
		}
	}
	return Idle{What: what, Seconds: round2(secs), CPUPercent: round2(100 * (now.cpu - before.cpu).Seconds() / secs),
		SQLPerSecond: round1(float64(all.TotalStatements()) / secs), CommitsPerS: round1(float64(all.WriteCommits) / secs),
		RedisPerSecond: round1(float64(now.redis.Sub(before.redis).Commands) / secs), TopSQLBreakdown: strings.Join(parts, ", ")}
}

func round2(v float64) float64 { return math.Round(v*100) / 100 }

func (c Cost) String() string {
	var ops []string
	for op := sqldb.OpSelect; op <= sqldb.OpOther; op++ {
		if v, ok := c.SQLByOp[op.String()]; ok {
			ops = append(ops, fmt.Sprintf("%s %s", op, num(v)))
		}
	}
	s := fmt.Sprintf("%s SQL statements (%s), %s write commits (store %s, event log %s)", num(c.SQLStatements), strings.Join(ops, ", "), num(c.Commits), num(c.StoreCommits), num(c.BusCommits))
	if c.Fsyncs > 0 {
		s += fmt.Sprintf(" = %s fsyncs", num(c.Fsyncs))
	}
	if c.RedisCommands > 0 {
		s += fmt.Sprintf(", %s Redis commands in %s round trips (%s)", num(c.RedisCommands), num(c.RedisRoundTrips), strings.Join(c.TopRedis, ", "))
	}
	return s + fmt.Sprintf(", %s ms of this process's CPU", num(c.CPUms))
}

func (i Idle) String() string {
	s := fmt.Sprintf("%s%% of a core over %.0f s, %s SQL statements/s (%s), %s write commits/s", num(i.CPUPercent), i.Seconds, num(i.SQLPerSecond), i.TopSQLBreakdown, num(i.CommitsPerS))
	if i.RedisPerSecond > 0 {
		s += fmt.Sprintf(", %s Redis commands/s", num(i.RedisPerSecond))
	}
	return s
}
