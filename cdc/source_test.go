package cdc_test

import (
	"context"
	"database/sql"
	"encoding/json"
	"fmt"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"go.uber.org/goleak"

	"smp"
	"smp/cdc"
	"smp/connect"
	"smp/internal/envtest"
	"smp/internal/sqldb"
	"smp/internal/wait"
	"smp/sqlbus"
	"smp/sqlstore"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(envtest.Main(m)) }

var ctx = context.Background()

// platform is a real store and embedded event log in a directory, with a
// plain SQL connection to write rows as any writer would (the triggers
// capture them whoever writes).
type platform struct {
	t    *testing.T
	reg  *prometheus.Registry
	now  func() time.Time // the plugin's clock (default: fixed)
	poll time.Duration    // the plugin's poll (default 20 ms)
	db   *sqlstore.DB
	bus  *sqlbus.Bus
	raw  *sql.DB
}

func open(t *testing.T) *platform {
	t.Helper()
	dir := t.TempDir()
	db, err := sqlstore.Open(ctx, sqlstore.Config{Path: filepath.Join(dir, "smp.db")})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	bus, err := sqlbus.Open(sqlbus.Config{Path: filepath.Join(dir, "events.db"), Partitions: 4})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { bus.Close() })
	raw, err := sqldb.OpenSQLite(filepath.Join(dir, "smp.db"), false)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { raw.Close() })
	return &platform{t: t, db: db, bus: bus, raw: raw}
}

func (p *platform) clock() func() time.Time {
	if p.now != nil {
		return p.now
	}
	return func() time.Time { return time.UnixMilli(1_700_000_000_000) }
}

// metric sums the registry's series of name whose labels include match.
func (p *platform) metric(name string, match map[string]string) float64 {
	p.t.Helper()
	mfs, err := p.reg.Gather()
	if err != nil {
		p.t.Fatal(err)
	}
	total := 0.0
	for _, mf := range mfs {
		if mf.GetName() != name {
			continue
		}
	next:
		for _, m := range mf.Metric {
			for _, l := range m.Label {
				if v, ok := match[l.GetName()]; ok && v != l.GetValue() {
					continue next
				}
			}
			total += m.GetCounter().GetValue() + m.GetGauge().GetValue()
		}
	}
	return total
}

func (p *platform) exec(q string, args ...any) {
	p.t.Helper()
	if _, err := p.raw.ExecContext(ctx, q, args...); err != nil {
		p.t.Fatalf("%s: %v", q, err)
	}
}

func (p *platform) insertOrder(id string, price int) {
	p.exec(`INSERT INTO orders (id, customer_id, city, service, lat, lng, address, price_vnd, stage, payment_status, created_at, stage_changed_at)
		VALUES (?, 'C0001', 'HCMC', 'aircon', 10.77, 106.7, '1 Lê Lợi', ?, '01_created', 'pending', 1000, 1000)`, id, price)
}

// worker starts a Connect worker with the embedded plugin and the
// connector's configuration (mode: snapshot.mode).
func (p *platform) worker(mode string) *connect.Worker {
	p.t.Helper()
	p.reg = prometheus.NewRegistry()
	poll := p.poll
	if poll == 0 {
		poll = 20 * time.Millisecond
	}
	plugin, err := cdc.NewEmbedded(cdc.Config{Store: p.db, Publisher: p.bus, Wake: p.db.CommitSignal(), Poll: poll, Registerer: p.reg,
		Now: p.clock()})
	if err != nil {
		p.t.Fatal(err)
	}
	w, err := connect.New(connect.Config{WorkerID: "test:8083", Plugins: map[string]connect.Plugin{cdc.Class: plugin}, Offsets: p.db})
	if err != nil {
		p.t.Fatal(err)
	}
	cfg := cdc.DefaultConfig()
	cfg["snapshot.mode"] = mode
	if _, _, err := w.PutConfig(cdc.ConnectorName, cfg); err != nil {
		p.t.Fatal(err)
	}
	if err := w.Start(ctx); err != nil {
		p.t.Fatal(err)
	}
	return w
}

// committed waits until the stored offset is pos (it is committed after
// what it covers was published: at least once).
func committed(t *testing.T, w *connect.Worker, pos int64) {
	t.Helper()
	wait.Until(t, 10*time.Second, fmt.Sprintf("the offset at %d", pos), func() bool {
		offs, err := w.Offsets(ctx, cdc.ConnectorName)
		return err == nil && len(offs) == 1 && offs[0].Partition["server"] == "smp.cdc" && offs[0].Offset["seq"] == float64(pos)
	})
}

// snapshotted waits until the connector has stored an offset (its
// snapshot, if any, is published).
func snapshotted(t *testing.T, w *connect.Worker) {
	t.Helper()
	wait.Until(t, 10*time.Second, "an offset stored", func() bool {
		offs, err := w.Offsets(ctx, cdc.ConnectorName)
		return err == nil && len(offs) == 1
	})
}

type record struct {
	key string
	env *cdc.Envelope // nil: a tombstone
}

// consumer collects what reaches a topic, as a downstream consumer would.
type consumer struct {
	mu   sync.Mutex
	recs []record
	raw  [][]byte // the values as they came
}

func (p *platform) consume(topic string) *consumer { return consume(p.t, p.bus, topic) }

// consume collects what reaches topic on bus until the test ends.
func consume(t *testing.T, bus smp.EventBus, topic string) *consumer {
	c := &consumer{}
	cctx, cancel := context.WithCancel(ctx)
	done := make(chan struct{})
	go func() {
		defer close(done)
		bus.Subscribe(cctx, "test-"+topic, []string{topic}, func(_ context.Context, m smp.Message) error {
			r := record{key: m.Key}
			if len(m.Value) > 0 {
				r.env = &cdc.Envelope{}
				if err := json.Unmarshal(m.Value, r.env); err != nil {
					return err
				}
			}
			c.mu.Lock()
			c.recs = append(c.recs, r)
			c.raw = append(c.raw, m.Value)
			c.mu.Unlock()
			return nil
		})
	}()
	t.Cleanup(func() { cancel(); <-done })
	return c
}

// byKey returns each key's records as "op" strings ("-" a tombstone).
func (c *consumer) byKey() map[string][]string {
	c.mu.Lock()
	defer c.mu.Unlock()
	out := map[string][]string{}
	for _, r := range c.recs {
		op := "-"
		if r.env != nil {
			op = r.env.Op
		}
		out[r.key] = append(out[r.key], op)
	}
	return out
}

func (c *consumer) find(key, op string) *cdc.Envelope {
	c.mu.Lock()
	defer c.mu.Unlock()
	for _, r := range c.recs {
		if r.key == key && r.env != nil && r.env.Op == op {
			return r.env
		}
	}
	return nil
}

func (c *consumer) count() int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return len(c.recs)
}

func key(id string) string { return `{"id":"` + id + `"}` }

func stop(t *testing.T, w *connect.Worker) {
	t.Helper()
	if err := w.Stop(ctx); err != nil {
		t.Fatal(err)
	}
}

// TestEnvelopes: an order there before the connector is snapshotted ("r");
// inserts, updates and deletes after it are "c", "u", "d" (and a
// tombstone), each key's in order, with Debezium's envelope; the
// transitions table has its own topic.
func TestEnvelopes(t *testing.T) {
	t.Parallel()
	p := open(t)
	p.insertOrder("ORD-A", 100000)
	orders := p.consume("smp.cdc.smp_order.orders")
	transitions := p.consume("smp.cdc.smp_order.order_transitions")
	w := p.worker(cdc.SnapshotInitial)
	defer stop(t, w)
	snapshotted(t, w)

	p.insertOrder("ORD-B", 200000)
	p.exec(`UPDATE orders SET stage = '02_dispatching', stage_changed_at = 2000 WHERE id = 'ORD-A'`)
	p.exec(`INSERT INTO order_transitions (order_id, from_stage, to_stage, at, actor, reason) VALUES ('ORD-A', '01_created', '02_dispatching', 2000, 'order-svc', '')`)
	p.exec(`UPDATE orders SET price_vnd = 250000 WHERE id = 'ORD-B'`)
	p.exec(`DELETE FROM orders WHERE id = 'ORD-B'`)

	wait.Until(t, 10*time.Second, "6 order records and 1 transition", func() bool {
		if orders.count() > 6 || transitions.count() > 1 {
			t.Fatalf("too many: %v %v", orders.byKey(), transitions.byKey())
		}
		if ts, _ := w.TaskStatus(cdc.ConnectorName, 0); ts.State != connect.Running {
			t.Fatalf("task %+v", ts)
		}
		return orders.count() == 6 && transitions.count() == 1
	})
	got := orders.byKey()
	if strings.Join(got[key("ORD-A")], ",") != "r,u" || strings.Join(got[key("ORD-B")], ",") != "c,u,d,-" {
		t.Fatalf("records per key: %v", got)
	}
	r := orders.find(key("ORD-A"), "r")
	if string(r.After) != rowA { // what the binlog source writes for the same data
		t.Fatalf("snapshot row\n%s\nwant\n%s", r.After, rowA)
	}
	if r.Before != nil && string(r.Before) != "null" || r.Source.Snapshot != "last" || r.Source.DB != "smp_order" || r.Source.Table != "orders" ||
		r.Source.Connector != "mysql" || r.Source.Name != "smp.cdc" || r.TsMs != 1_700_000_000_000 {
		t.Fatalf("snapshot read %+v", r)
	}
	u := orders.find(key("ORD-A"), "u")
	var before, after map[string]any
	json.Unmarshal(u.Before, &before)
	json.Unmarshal(u.After, &after)
	if before["stage"] != "01_created" || after["stage"] != "02_dispatching" || after["price_vnd"] != float64(100000) || after["lat"] != 10.77 ||
		after["address"] != "1 Lê Lợi" || u.Source.Snapshot != "false" || u.Source.File != "cdc_changes" || u.Source.Pos <= 0 {
		t.Fatalf("update %+v\nbefore %v\nafter %v", u, before, after)
	}
	// The snapshot row and a change row of the same data are equal.
	var snap map[string]any
	json.Unmarshal(r.After, &snap)
	if fmt.Sprint(snap) != fmt.Sprint(before) {
		t.Fatalf("snapshot row %v differs from the change's before %v", snap, before)
	}
	c, d := orders.find(key("ORD-B"), "c"), orders.find(key("ORD-B"), "d")
	if string(c.Before) != "null" || c.After == nil || d.After != nil && string(d.After) != "null" || d.Before == nil || c.Source.Pos >= d.Source.Pos {
		t.Fatalf("create %+v\ndelete %+v", c, d)
	}
	tr := transitions.find(`{"id":1}`, "c")
	if tr == nil || tr.Source.Table != "order_transitions" {
		t.Fatalf("transition records %+v", transitions.recs)
	}
	// Changes per table and op (rate() of it: changes per second).
	for op, want := range map[string]float64{"r": 1, "c": 1, "u": 2, "d": 1} {
		if got := p.metric("smp_cdc_changes_total", map[string]string{"connector": cdc.ConnectorName, "table": "orders", "op": op}); got != want {
			t.Errorf("smp_cdc_changes_total{table=orders,op=%s} = %v, want %v", op, got, want)
		}
	}
	if got := p.metric("smp_cdc_changes_total", map[string]string{"table": "order_transitions", "op": "c"}); got != 1 {
		t.Errorf("transitions created: %v", got)
	}
	st, _ := w.Status(cdc.ConnectorName)
	if st.Tasks[0].State != connect.Running {
		t.Fatalf("status %+v", st)
	}
}

// TestResumeFromStoredOffset: a new worker resumes after the stored
// offset: no second snapshot, nothing published twice, nothing missed
// while it was down.
func TestResumeFromStoredOffset(t *testing.T) {
	t.Parallel()
	p := open(t)
	p.insertOrder("ORD-A", 100000)
	orders := p.consume("smp.cdc.smp_order.orders")
	w := p.worker(cdc.SnapshotInitial)
	snapshotted(t, w)
	p.insertOrder("ORD-B", 100000)
	wait.Until(t, 10*time.Second, "snapshot and one insert", func() bool { return orders.count() == 2 })
	committed(t, w, orders.find(key("ORD-B"), "c").Source.Pos)
	stop(t, w)

	p.insertOrder("ORD-C", 100000) // while no worker runs
	w = p.worker(cdc.SnapshotInitial)
	defer stop(t, w)
	p.exec(`UPDATE orders SET stage = '06_cancelled' WHERE id = 'ORD-A'`)
	wait.Until(t, 10*time.Second, "the insert made while down and the update", func() bool { return orders.count() == 4 })
	if got := orders.byKey(); strings.Join(got[key("ORD-A")], ",") != "r,u" || strings.Join(got[key("ORD-B")], ",") != "c" || strings.Join(got[key("ORD-C")], ",") != "c" {
		t.Fatalf("records per key after a restart: %v", got)
	}
	committed(t, w, orders.find(key("ORD-A"), "u").Source.Pos)
}

// TestPositionLost: when the changes after the stored offset were removed
// the task is FAILED with Debezium's message; with snapshot.mode
// when_needed it takes a new snapshot instead.
func TestPositionLost(t *testing.T) {
	t.Parallel()
	p := open(t)
	p.insertOrder("ORD-A", 100000)
	orders := p.consume("smp.cdc.smp_order.orders")
	w := p.worker(cdc.SnapshotInitial)
	snapshotted(t, w)
	stop(t, w)
	p.insertOrder("ORD-B", 100000)
	p.insertOrder("ORD-C", 100000)
	p.exec(`DELETE FROM cdc_changes WHERE seq <= (SELECT MIN(seq) FROM cdc_changes WHERE row_key = ?)`, key("ORD-B"))

	w = p.worker(cdc.SnapshotInitial)
	wait.Until(t, 10*time.Second, "task FAILED", func() bool {
		ts, err := w.TaskStatus(cdc.ConnectorName, 0)
		return err == nil && ts.State == connect.Failed
	})
	ts, _ := w.TaskStatus(cdc.ConnectorName, 0)
	if !strings.HasPrefix(ts.Trace, "The connector is trying to read binlog starting at cdc_changes:") ||
		!strings.HasSuffix(ts.Trace, "but this is no longer available on the server. Reconfigure the connector to use a snapshot when needed.") {
		t.Fatalf("trace %q", ts.Trace)
	}
	if orders.count() != 1 {
		t.Fatalf("a failed task published %d records", orders.count()-1)
	}

	cfg := cdc.DefaultConfig()
	cfg["snapshot.mode"] = cdc.SnapshotWhenNeeded
	if _, _, err := w.PutConfig(cdc.ConnectorName, cfg); err != nil {
		t.Fatal(err)
	}
	defer stop(t, w)
	wait.Until(t, 10*time.Second, "a new snapshot of the three orders", func() bool { return orders.count() == 4 })
	if got := orders.byKey(); strings.Join(got[key("ORD-A")], ",") != "r,r" || strings.Join(got[key("ORD-C")], ",") != "r" {
		t.Fatalf("records per key after the new snapshot: %v", got)
	}
	if ts, _ := w.TaskStatus(cdc.ConnectorName, 0); ts.State != connect.Running {
		t.Fatalf("task %+v after the new snapshot", ts)
	}
}

// TestSourceLag: smp_cdc_source_lag_seconds is how long before its
// publication the last published change was written: here the plugin's
// clock runs an hour ahead of the database's, and the task reads once
// (the next poll is an hour away), so it stays at about 3600.
func TestSourceLag(t *testing.T) {
	t.Parallel()
	p := open(t)
	p.now = func() time.Time { return time.Now().Add(time.Hour) }
	p.poll = time.Hour
	p.insertOrder("ORD-A", 100000)
	orders := p.consume("smp.cdc.smp_order.orders")
	w := p.worker(cdc.SnapshotNever)
	defer stop(t, w)
	wait.Until(t, 10*time.Second, "the insert published", func() bool { return orders.count() == 1 })
	wait.Until(t, 10*time.Second, "the lag set", func() bool {
		lag := p.metric("smp_cdc_source_lag_seconds", map[string]string{"connector": cdc.ConnectorName})
		return lag > 3590 && lag < 3610
	})
	if got := p.metric("smp_cdc_changes_total", map[string]string{"op": "c"}); got != 1 {
		t.Fatalf("changes %v", got)
	}
}
