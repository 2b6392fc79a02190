package bench

import (
	"cmp"
	"fmt"
	"math"
	"slices"
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
	// Census is the statements by text, per order, most frequent first
	// (--sql-census only).
	Census []CensusLine `json:"sql_census,omitempty"`
}

// CensusLine is one statement text of a census and how many times it ran
// per order; the embedded event log's own statements are marked "bus: ".
type CensusLine struct {
	Text     string  `json:"text"`
	PerOrder float64 `json:"per_order"`
}

// censusLines turns counts summed over orders into lines per order, most
// frequent first (ties by text).
func censusLines(sum map[string]uint64, orders int) []CensusLine {
	out := make([]CensusLine, 0, len(sum))
	for text, n := range sum {
		if n > 0 {
			out = append(out, CensusLine{Text: text, PerOrder: round2(float64(n) / float64(max(orders, 1)))})
		}
	}
	slices.SortFunc(out, func(a, b CensusLine) int {
		if c := cmp.Compare(b.PerOrder, a.PerOrder); c != 0 {
			return c
		}
		return strings.Compare(a.Text, b.Text)
	})
	return out
}

// censusMarkdown lists the top lines of a census, texts cut at 160
// characters.
func censusMarkdown(lines []CensusLine, top int) string {
	var b strings.Builder
	for i, l := range lines {
		if i == top {
			fmt.Fprintf(&b, "\n    - … %d more texts", len(lines)-top)
			break
		}
		text := l.Text
		if r := []rune(text); len(r) > 160 {
			text = string(r[:160]) + "…"
		}
		fmt.Fprintf(&b, "\n    - %s × `%s`", num(l.PerOrder), text)
	}
	return b.String()
}

// subCensus adds now minus before to sum.
func subCensus(sum, before, now map[string]uint64) {
	for text, n := range now {
		if d := n - before[text]; d > 0 {
			sum[text] += d
		}
	}
}

// counts is one reading of the counters.
type counts struct {
	store, bus sqldb.CounterSnapshot
	redis      redisstore.RedisCounts
	cpu        time.Duration
	at         time.Time
	// census: statements by text, the event log's marked "bus: " (nil
	// without --sql-census)
	census map[string]uint64
}

// meter reads an app's counters.
type meter struct {
	a        *app.App
	embedded bool
	census   bool
}

func newMeter(a *app.App, backend string) meter { return meter{a: a, embedded: backend == "embedded"} }

// withCensus turns on the census of statements by text of the store and
// the embedded event log (sqldb.Counters.EnableCensus).
func (m meter) withCensus() meter {
	m.census = true
	m.a.Store.SQLCounters().EnableCensus(0)
	if l, ok := m.a.Bus.(*sqlbus.Bus); ok {
		l.SQLCounters().EnableCensus(0)
	}
	return m
}

func (m meter) read() counts {
	c := counts{store: m.a.Store.SQLCounts(), cpu: processCPU(), at: time.Now()}
	if l, ok := m.a.Bus.(*sqlbus.Bus); ok {
		c.bus = l.SQLCounts()
	}
	if m.census {
		c.census = m.a.Store.SQLCounters().Census()
		if l, ok := m.a.Bus.(*sqlbus.Bus); ok {
			for text, n := range l.SQLCounters().Census() {
				c.census["bus: "+text] += n
			}
		}
	}
	if m.a.Redis != nil {
		c.redis = m.a.Redis.Counts()
	}
	return c
}

// per is the cost from before to now, per order.
func (m meter) per(before counts, orders int) Cost { return m.between(before, m.read(), orders) }

// between is the cost from before to now, per order.
func (m meter) between(before, now counts, orders int) Cost {
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
	if m.census {
		sum := map[string]uint64{}
		subCensus(sum, before.census, now.census)
		c.Census = censusLines(sum, orders)
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

// FirstOfferCost is what orders cost from their POST to their first offer
// on a technician's WebSocket, measured one order at a time with nothing
// else in flight (the previous order's job done): each window's counts,
// summed over the orders and divided by them. The background (what the
// process does with the technicians connected and no orders: heartbeats,
// pollers, the sweeper) at the idle rate over the windows' length is shown
// and subtracted.
type FirstOfferCost struct {
	Orders   int     `json:"orders"`
	WindowMS float64 `json:"window_ms"` // mean POST -> first offer
	// Measured: everything counted in the windows, per order.
	SQLStatements   float64 `json:"sql_statements"`
	Commits         float64 `json:"write_commits"`
	RedisCommands   float64 `json:"redis_commands"`
	RedisRoundTrips float64 `json:"redis_roundtrips"`
	CPUms           float64 `json:"cpu_ms"`
	// Background: the idle rates (Idle, measured just before the phase)
	// times the windows' length, per order.
	Idle            Idle    `json:"idle"`
	BackgroundSQL   float64 `json:"background_sql_statements"`
	BackgroundRedis float64 `json:"background_redis_commands"`
	// Net: SQL statements plus Redis commands, background subtracted
	// (issue 22's "SQL statements + Redis commands per order to first
	// offer").
	Net float64 `json:"sql_plus_redis_net"`
	// Census is the statements in the windows by text, per order, most
	// frequent first (--sql-census only; background not subtracted).
	Census []CensusLine `json:"sql_census,omitempty"`
}

func (f FirstOfferCost) String() string {
	return fmt.Sprintf("%s SQL statements + %s Redis commands (in %s round trips), %s write commits, %s ms of CPU, over %d orders one at a time (mean %s ms to the first offer); background in those windows %s SQL + %s Redis (idle then: %s); net %s statements + commands",
		num(f.SQLStatements), num(f.RedisCommands), num(f.RedisRoundTrips), num(f.Commits), num(f.CPUms), f.Orders, num(f.WindowMS),
		num(f.BackgroundSQL), num(f.BackgroundRedis), f.Idle, num(f.Net))
}

// firstOfferCost sums the windows (each a reading before the POST and one
// at the first offer) against the background bg.
func (m meter) firstOfferCost(windows [][2]counts, bg Idle) *FirstOfferCost {
	f := &FirstOfferCost{Orders: len(windows), Idle: bg}
	if len(windows) == 0 {
		return f
	}
	var secs float64
	census := map[string]uint64{}
	for _, w := range windows {
		subCensus(census, w[0].census, w[1].census)
		c := m.between(w[0], w[1], 1)
		f.SQLStatements += c.SQLStatements
		f.Commits += c.Commits
		f.RedisCommands += c.RedisCommands
		f.RedisRoundTrips += c.RedisRoundTrips
		f.CPUms += c.CPUms
		secs += w[1].at.Sub(w[0].at).Seconds()
	}
	n := float64(len(windows))
	f.SQLStatements, f.Commits, f.RedisCommands = round2(f.SQLStatements/n), round2(f.Commits/n), round2(f.RedisCommands/n)
	f.RedisRoundTrips, f.CPUms, f.WindowMS = round2(f.RedisRoundTrips/n), round2(f.CPUms/n), round2(1000*secs/n)
	f.BackgroundSQL, f.BackgroundRedis = round2(bg.SQLPerSecond*secs/n), round2(bg.RedisPerSecond*secs/n)
	f.Net = round2(max(0, f.SQLStatements+f.RedisCommands-f.BackgroundSQL-f.BackgroundRedis))
	if m.census {
		f.Census = censusLines(census, len(windows))
	}
	return f
}
