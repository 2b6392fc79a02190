package cdc_test

import (
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	gomysql "github.com/go-mysql-org/go-mysql/mysql"
	"github.com/prometheus/client_golang/prometheus"

	"smp"
	"smp/cdc"
	"smp/connect"
	"smp/internal/envtest"
	"smp/internal/wait"
	"smp/sqlbus"
	"smp/sqlstore"
	"smp/sqlstore/sqlstoretest"
)

// rowA is order ORD-A as insertOrder writes it, in the JSON both sources
// publish (the embedded one from SQLite, the binlog one from MariaDB).
const rowA = `{"id":"ORD-A","customer_id":"C0001","city":"HCMC","service":"aircon","lat":10.77,"lng":106.7,"address":"1 Lê Lợi","price_vnd":100000,` +
	`"stage":"01_created","payment_status":"pending","technician_id":null,"created_at":1000,"stage_changed_at":1000,"dispatch_not_before":0}`

// binlogPlatform is a MariaDB the test started with its binlog on (ROW),
// database smp_order migrated by sqlstore (whose connect_offsets keep the
// connector's offsets, as on a MySQL platform), and an embedded event log.
type binlogPlatform struct {
	t      *testing.T
	server *sqlstoretest.MariaDB
	store  *sqlstore.DB
	raw    *sql.DB
	bus    *sqlbus.Bus
	reg    *prometheus.Registry
	pub    cdc.Publisher // default: bus
	log    *slog.Logger  // the plugin's (default: discarded)
	dog    *connect.Watchdog
	audits *audits
}

func openBinlog(t *testing.T, args ...string) *binlogPlatform {
	t.Helper()
	if _, err := exec.LookPath("mariadbd"); err != nil {
		envtest.Skip(t, "MariaDB binlog (change data capture)", "mariadbd is not on PATH: install mariadb-server")
	}
	dir := t.TempDir()
	m := sqlstoretest.StartMariaDB(t, "cdc", append([]string{"--server-id=1", "--log-bin=" + filepath.Join(dir, "binlog"),
		"--binlog-format=ROW", "--binlog-row-image=FULL"}, args...)...)
	sqlstoretest.ExecAll(t, m.DSN(""), "CREATE DATABASE smp_order")
	store, err := sqlstore.Open(ctx, sqlstore.Config{MySQLDSN: m.DSN("smp_order")})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { store.Close() })
	raw, err := sql.Open("mysql", m.DSN("smp_order"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { raw.Close() })
	bus, err := sqlbus.Open(sqlbus.Config{Path: filepath.Join(dir, "events.db"), Partitions: 4})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { bus.Close() })
	return &binlogPlatform{t: t, server: m, store: store, raw: raw, bus: bus}
}

func (p *binlogPlatform) exec(q string, args ...any) {
	p.t.Helper()
	if _, err := p.raw.ExecContext(ctx, q, args...); err != nil {
		p.t.Fatalf("%s: %v", q, err)
	}
}

func (p *binlogPlatform) insertOrder(id string, price int) {
	p.exec(`INSERT INTO orders (id, customer_id, city, service, lat, lng, address, price_vnd, stage, payment_status, created_at, stage_changed_at)
		VALUES (?, 'C0001', 'HCMC', 'aircon', 10.77, 106.7, '1 Lê Lợi', ?, '01_created', 'pending', 1000, 1000)`, id, price)
}

func (p *binlogPlatform) metric(name string, match map[string]string) float64 {
	return (&platform{t: p.t, reg: p.reg}).metric(name, match)
}

func (p *binlogPlatform) has(name string) bool {
	mfs, err := p.reg.Gather()
	if err != nil {
		p.t.Fatal(err)
	}
	for _, mf := range mfs {
		if mf.GetName() == name {
			return true
		}
	}
	return false
}

// audits records what the watchdog audits.
type audits struct {
	mu sync.Mutex
	es []smp.AuditEntry
}

func (a *audits) add(_ context.Context, e smp.AuditEntry) error {
	a.mu.Lock()
	defer a.mu.Unlock()
	a.es = append(a.es, e)
	return nil
}

func (a *audits) actions() []string {
	a.mu.Lock()
	defer a.mu.Unlock()
	var out []string
	for _, e := range a.es {
		out = append(out, e.Action)
	}
	return out
}

// worker starts a Connect worker with the binlog plugin (and, with
// watchdog, a fast watchdog) running smp-mysql-connector in mode.
func (p *binlogPlatform) worker(mode string, watchdog bool) *connect.Worker {
	p.t.Helper()
	p.reg = prometheus.NewRegistry()
	pub := p.pub
	if pub == nil {
		pub = p.bus
	}
	plugin, err := cdc.NewBinlog(cdc.BinlogConfig{DSN: p.server.DSN("smp_order"), Publisher: pub, Registerer: p.reg, LagEvery: 20 * time.Millisecond, Logger: p.log,
		Now: func() time.Time { return time.UnixMilli(1_700_000_000_000) }})
	if err != nil {
		p.t.Fatal(err)
	}
	w, err := connect.New(connect.Config{WorkerID: "test:8083", Plugins: map[string]connect.Plugin{cdc.Class: plugin}, Offsets: p.store})
	if err != nil {
		p.t.Fatal(err)
	}
	cfg := plugin.DefaultConfig()
	cfg["snapshot.mode"] = mode
	if _, _, err := w.PutConfig(cdc.ConnectorName, cfg); err != nil {
		p.t.Fatal(err)
	}
	if err := w.Start(ctx); err != nil {
		p.t.Fatal(err)
	}
	if watchdog {
		p.audits = &audits{}
		p.dog = connect.NewWatchdog(w, connect.WatchdogConfig{Every: 20 * time.Millisecond, Backoff: 50 * time.Millisecond, Audit: p.audits.add})
		if err := p.dog.Start(ctx); err != nil {
			p.t.Fatal(err)
		}
	}
	return w
}

func (p *binlogPlatform) stop(w *connect.Worker) {
	p.t.Helper()
	if p.dog != nil {
		if err := p.dog.Stop(ctx); err != nil {
			p.t.Fatal(err)
		}
		p.dog = nil
	}
	stop(p.t, w)
}

func taskState(w *connect.Worker) connect.TaskState {
	ts, _ := w.TaskStatus(cdc.ConnectorName, 0)
	return ts
}

// binlogOffset waits for a stored offset and returns it.
func binlogOffset(t *testing.T, w *connect.Worker) map[string]any {
	t.Helper()
	var got map[string]any
	wait.Until(t, 20*time.Second, "an offset stored", func() bool {
		offs, err := w.Offsets(ctx, cdc.ConnectorName)
		if err == nil && len(offs) == 1 {
			got = offs[0].Offset
		}
		return got != nil
	})
	return got
}

// TestBinlogEnvelopes: on a real MariaDB with its binlog, an order there
// before the connector is snapshotted ("r"); inserts, updates and deletes
// after it are "c", "u", "d" (and a tombstone), in order per key, with
// Debezium's envelope (the binlog file, position, row, server id and
// GTID in source); the rows are the JSON the embedded source writes for
// the same data; ALTER TABLE … ADD COLUMN goes to the schema history with
// its position and the rows after it carry the new column; TRUNCATE is a
// "t"; smp_cdc_source_lag_bytes returns to 0 once caught up.
func TestBinlogEnvelopes(t *testing.T) {
	t.Parallel()
	p := openBinlog(t)
	p.insertOrder("ORD-A", 100000)
	orders := consume(t, p.bus, "smp.cdc.smp_order.orders")
	transitions := consume(t, p.bus, "smp.cdc.smp_order.order_transitions")
	history := consume(t, p.bus, "smp.cdc.schema-history")
	w := p.worker(cdc.SnapshotInitial, false)
	defer p.stop(w)
	off := binlogOffset(t, w)
	if !strings.HasPrefix(fmt.Sprint(off["file"]), "binlog.") || off["pos"].(float64) <= 4 || !strings.HasPrefix(fmt.Sprint(off["gtids"]), "0-1-") {
		t.Fatalf("offset after the snapshot %v", off)
	}

	p.insertOrder("ORD-B", 200000)
	p.exec(`UPDATE orders SET stage = '02_dispatching', stage_changed_at = 2000 WHERE id = 'ORD-A'`)
	p.exec(`INSERT INTO order_transitions (order_id, from_stage, to_stage, at, actor, reason) VALUES ('ORD-A', '01_created', '02_dispatching', 2000, 'order-svc', '')`)
	p.exec(`UPDATE orders SET price_vnd = 250000 WHERE id = 'ORD-B'`)
	p.exec(`DELETE FROM orders WHERE id = 'ORD-B'`)
	p.exec(`ALTER TABLE orders ADD COLUMN note VARCHAR(100) NULL`)
	p.exec(`INSERT INTO orders (id, customer_id, city, service, lat, lng, address, price_vnd, stage, payment_status, created_at, stage_changed_at, note)
		VALUES ('ORD-C', 'C0002', 'HN', 'plumbing', 21.03, 105.85, '', 150000, '01_created', 'pending', 3000, 3000, 'gọi trước')`)
	p.exec(`TRUNCATE TABLE order_transitions`)

	wait.Until(t, 20*time.Second, "7 order records and 2 transition records", func() bool {
		if orders.count() > 7 || transitions.count() > 2 {
			t.Fatalf("too many: %v %v", orders.byKey(), transitions.byKey())
		}
		if ts := taskState(w); ts.State != connect.Running {
			t.Fatalf("task %+v", ts)
		}
		return orders.count() == 7 && transitions.count() == 2
	})
	got := orders.byKey()
	if strings.Join(got[key("ORD-A")], ",") != "r,u" || strings.Join(got[key("ORD-B")], ",") != "c,u,d,-" || strings.Join(got[key("ORD-C")], ",") != "c" {
		t.Fatalf("records per key: %v", got)
	}
	r := orders.find(key("ORD-A"), "r")
	if string(r.After) != rowA || r.Before != nil && string(r.Before) != "null" || r.Source.Snapshot != "last" || r.Source.DB != "smp_order" ||
		r.Source.Table != "orders" || r.Source.Connector != "mysql" || r.Source.Name != "smp.cdc" || r.TsMs != 1_700_000_000_000 {
		t.Fatalf("snapshot read %+v\n%s", r, r.After)
	}
	u := orders.find(key("ORD-A"), "u")
	// The snapshot row and the binlog row of the same data are equal.
	if string(u.Before) != rowA {
		t.Fatalf("the update's before\n%s\nwant (the snapshot's row)\n%s", u.Before, rowA)
	}
	var after map[string]any
	json.Unmarshal(u.After, &after)
	if after["stage"] != "02_dispatching" || after["stage_changed_at"] != float64(2000) || u.Source.Snapshot != "false" ||
		!strings.HasPrefix(u.Source.File, "binlog.") || u.Source.Pos <= 4 || u.Source.ServerID != 1 || u.Source.GTID == nil ||
		!strings.HasPrefix(*u.Source.GTID, "0-1-") || u.Source.TsMs <= 0 {
		t.Fatalf("update %+v\nafter %s", u, u.After)
	}
	c, d := orders.find(key("ORD-B"), "c"), orders.find(key("ORD-B"), "d")
	if string(c.Before) != "null" || c.After == nil || string(d.After) != "null" || d.Before == nil || c.Source.Pos >= d.Source.Pos {
		t.Fatalf("create %+v\ndelete %+v", c, d)
	}
	// Rows after the ALTER carry the new column.
	cc := orders.find(key("ORD-C"), "c")
	json.Unmarshal(cc.After, &after)
	if after["note"] != "gọi trước" || after["lat"] != 21.03 || after["price_vnd"] != float64(150000) {
		t.Fatalf("the row after ADD COLUMN: %s", cc.After)
	}
	if tr := transitions.find(`{"id":1}`, "c"); tr == nil || tr.Source.Table != "order_transitions" {
		t.Fatalf("transition records %+v", transitions.recs)
	}
	tr := transitions.find("", "t")
	if tr == nil || tr.Source.Table != "order_transitions" || string(tr.Before) != "null" || string(tr.After) != "null" {
		t.Fatalf("no truncate record: %+v", transitions.recs)
	}
	// The schema history: each table's CREATE at the snapshot, then the
	// ALTER with its position.
	var alter *cdc.HistoryRecord
	wait.Until(t, 10*time.Second, "the ALTER in the schema history", func() bool {
		history.mu.Lock()
		defer history.mu.Unlock()
		for _, r := range history.raw {
			var h cdc.HistoryRecord
			if json.Unmarshal(r, &h) == nil && strings.HasPrefix(h.DDL, "ALTER TABLE orders ADD COLUMN note") {
				alter = &h
			}
		}
		return alter != nil
	})
	if alter.DatabaseName != "smp_order" || alter.Position["file"] == nil || alter.Position["pos"].(float64) <= float64(d.Source.Pos) {
		t.Fatalf("history record %+v", alter)
	}
	if history.count() < 3 {
		t.Fatalf("history records: %d, want the 2 tables' CREATE and the ALTER at least", history.count())
	}
	for op, want := range map[string]float64{"r": 1, "c": 2, "u": 2, "d": 1} {
		if got := p.metric("smp_cdc_changes_total", map[string]string{"connector": cdc.ConnectorName, "table": "orders", "op": op}); got != want {
			t.Errorf("smp_cdc_changes_total{table=orders,op=%s} = %v, want %v", op, got, want)
		}
	}
	wait.Until(t, 10*time.Second, "smp_cdc_source_lag_bytes at 0", func() bool {
		return p.has("smp_cdc_source_lag_bytes") && p.metric("smp_cdc_source_lag_bytes", map[string]string{"connector": cdc.ConnectorName}) == 0
	})

	// A connector behind an ADD COLUMN (stopped while it ran) reads the
	// rows written before it with the columns they had.
	p.stop(w)
	p.insertOrder("ORD-D", 100000)
	p.exec(`ALTER TABLE orders ADD COLUMN tip_vnd BIGINT NOT NULL DEFAULT 0`)
	p.exec(`UPDATE orders SET tip_vnd = 5000 WHERE id = 'ORD-D'`)
	w2 := p.worker(cdc.SnapshotInitial, false)
	defer p.stop(w2)
	wait.Until(t, 20*time.Second, "ORD-D's insert and update", func() bool { return len(orders.byKey()[key("ORD-D")]) == 2 })
	if got := strings.Join(orders.byKey()[key("ORD-D")], ","); got != "c,u" {
		t.Fatalf("ORD-D records %s (a new snapshot?)", got)
	}
	dc, du := orders.find(key("ORD-D"), "c"), orders.find(key("ORD-D"), "u")
	if !strings.HasSuffix(string(dc.After), `"dispatch_not_before":0,"note":null}`) || !strings.HasSuffix(string(du.After), `"note":null,"tip_vnd":5000}`) ||
		!strings.HasSuffix(string(du.Before), `"note":null,"tip_vnd":0}`) {
		t.Fatalf("rows across the ALTER:\n%s\n%s\n%s", dc.After, du.Before, du.After)
	}
}

// downstream applies records as the read model does (upsert by key, a
// delete or tombstone removes, a truncate clears) and returns each key's
// final row.
func downstream(c *consumer) map[string]string {
	c.mu.Lock()
	defer c.mu.Unlock()
	out := map[string]string{}
	for _, r := range c.recs {
		switch {
		case r.env == nil || r.env.Op == "d":
			delete(out, r.key)
		case r.env.Op == "t":
			clear(out)
		default:
			out[r.key] = string(r.env.After)
		}
	}
	return out
}

// rows reads the orders table as the binlog source writes it (through
// a fresh snapshot's JSON would be circular: ids and prices suffice).
func (p *binlogPlatform) orderIDs() []string {
	p.t.Helper()
	rows, err := p.raw.QueryContext(ctx, `SELECT id FROM orders ORDER BY id`)
	if err != nil {
		p.t.Fatal(err)
	}
	defer rows.Close()
	var ids []string
	for rows.Next() {
		var id string
		rows.Scan(&id)
		ids = append(ids, key(id))
	}
	return ids
}

// TestBinlogPositionLost: PURGE BINARY LOGS past the stored position →
// the task is FAILED with Debezium's message and publishes nothing; with
// snapshot.mode when_needed it snapshots again, and the duplicates that
// makes are absorbed by a consumer that upserts by key.
func TestBinlogPositionLost(t *testing.T) {
	t.Parallel()
	p := openBinlog(t)
	p.insertOrder("ORD-A", 100000)
	orders := consume(t, p.bus, "smp.cdc.smp_order.orders")
	w := p.worker(cdc.SnapshotInitial, false)
	binlogOffset(t, w)
	p.stop(w)
	// The position the task stored last, at its stop: it may have moved
	// on after the first one stored (CI once saw 0-1-94 read, 0-1-95 kept).
	off := binlogOffset(t, w)
	p.insertOrder("ORD-B", 100000)
	p.insertOrder("ORD-C", 100000)
	var file string
	p.exec(`FLUSH BINARY LOGS`)
	logs, err := p.raw.QueryContext(ctx, `SHOW BINARY LOGS`)
	if err != nil {
		t.Fatal(err)
	}
	for logs.Next() {
		var size int64
		logs.Scan(&file, &size)
	}
	logs.Close()
	// A binlog a dump thread still reads, or that crash recovery still
	// needs (until its binlog checkpoint), is not purged: try again.
	wait.Until(t, 20*time.Second, "the binlogs before "+file+" purged", func() bool {
		p.exec(`PURGE BINARY LOGS TO '` + file + `'`)
		var first string
		return p.raw.QueryRowContext(ctx, `SHOW BINARY LOGS`).Scan(&first, new(int64)) == nil && first == file
	})
	w = p.worker(cdc.SnapshotInitial, false)
	wait.Until(t, 20*time.Second, "task FAILED", func() bool { return taskState(w).State == connect.Failed })
	trace := taskState(w).Trace
	if !strings.HasPrefix(trace, fmt.Sprintf("The connector is trying to read binlog starting at %s:%v", off["file"], off["pos"])) ||
		!strings.HasSuffix(trace, "but this is no longer available on the server. Reconfigure the connector to use a snapshot when needed.") {
		t.Fatalf("trace %q (offset %v)", trace, off)
	}
	if orders.count() != 1 {
		t.Fatalf("a failed task published %d records", orders.count()-1)
	}

	cfg, _ := w.Config(cdc.ConnectorName)
	cfg["snapshot.mode"] = cdc.SnapshotWhenNeeded
	if _, _, err := w.PutConfig(cdc.ConnectorName, cfg); err != nil {
		t.Fatal(err)
	}
	defer p.stop(w)
	wait.Until(t, 20*time.Second, "a new snapshot of the three orders", func() bool { return orders.count() == 4 })
	if got := orders.byKey(); strings.Join(got[key("ORD-A")], ",") != "r,r" || strings.Join(got[key("ORD-B")], ",") != "r" || strings.Join(got[key("ORD-C")], ",") != "r" {
		t.Fatalf("records per key after the new snapshot: %v", got)
	}
	if ts := taskState(w); ts.State != connect.Running {
		t.Fatalf("task %+v after the new snapshot", ts)
	}
	// It streams on from the new snapshot's position.
	p.exec(`UPDATE orders SET price_vnd = 120000 WHERE id = 'ORD-A'`)
	wait.Until(t, 20*time.Second, "the update after the new snapshot", func() bool { return orders.count() == 5 })
	final := downstream(orders)
	if ids := p.orderIDs(); len(final) != len(ids) || !strings.Contains(final[key("ORD-A")], `"price_vnd":120000`) {
		t.Fatalf("downstream %v, table %v", final, ids)
	}
	if off := binlogOffset(t, w); off["file"] != file {
		t.Fatalf("offset %v after the new snapshot, want in %s", off, file)
	}
}

// TestBinlogKilledConnection: the replication connection killed from
// another session mid-stream makes the task FAILED; the watchdog restarts
// it and no change is missing (at least once: deduplicated by source
// position, each insert is there exactly once).
func TestBinlogKilledConnection(t *testing.T) {
	t.Parallel()
	p := openBinlog(t)
	orders := consume(t, p.bus, "smp.cdc.smp_order.orders")
	w := p.worker(cdc.SnapshotInitial, true)
	defer p.stop(w)
	binlogOffset(t, w)

	const n = 300
	insert := func(i int) error {
		_, err := p.raw.ExecContext(ctx, `INSERT INTO orders (id, customer_id, city, service, lat, lng, address, price_vnd, stage, payment_status, created_at, stage_changed_at)
			VALUES (?, 'C0001', 'HCMC', 'aircon', 10.77, 106.7, '', 100000, '01_created', 'pending', 1000, 1000)`, fmt.Sprintf("ORD-%04d", i))
		return err
	}
	// The first half is written while the stream runs and is killed, the
	// second after the kill (while the task is FAILED or restarting).
	written := make(chan struct{})
	go func() {
		defer close(written)
		for i := range n / 2 {
			if err := insert(i); err != nil {
				t.Error(err)
				return
			}
		}
	}()
	wait.Until(t, 20*time.Second, "some inserts published", func() bool { return orders.count() >= 20 })
	var killed int
	wait.Until(t, 10*time.Second, "the binlog dump connection killed", func() bool {
		var id int64
		if p.raw.QueryRowContext(ctx, `SELECT ID FROM information_schema.PROCESSLIST WHERE COMMAND LIKE 'Binlog Dump%' LIMIT 1`).Scan(&id) != nil {
			return false
		}
		if _, err := p.raw.ExecContext(ctx, fmt.Sprintf("KILL %d", id)); err == nil {
			killed++
		}
		return killed > 0
	})
	<-written
	for i := n / 2; i < n; i++ {
		if err := insert(i); err != nil {
			t.Fatal(err)
		}
	}
	wait.Until(t, 30*time.Second, "the watchdog's restart", func() bool { return slices.Contains(p.audits.actions(), "connect.restart") })
	wait.Until(t, 30*time.Second, "every insert published", func() bool {
		return len(orders.byKey()) == n
	})
	// What it restarted was the task FAILED by the lost connection.
	p.audits.mu.Lock()
	trace := p.audits.es[0].Before
	p.audits.mu.Unlock()
	if !strings.HasPrefix(trace, "cdc: binlog stream at binlog.") {
		t.Fatalf("the restarted task's trace %q", trace)
	}
	seen := map[string]bool{}
	for k, ops := range orders.byKey() {
		if ops[0] != "c" {
			t.Fatalf("%s: %v", k, ops)
		}
	}
	orders.mu.Lock()
	for _, r := range orders.recs {
		seen[fmt.Sprintf("%s:%d:%d", r.env.Source.File, r.env.Source.Pos, r.env.Source.Row)] = true
	}
	total := len(orders.recs)
	orders.mu.Unlock()
	if len(seen) != n {
		t.Fatalf("%d distinct source positions in %d records, want %d", len(seen), total, n)
	}
	t.Logf("%d records for %d inserts (%d published again after the restart)", total, n, total-n)
	if ts := taskState(w); ts.State != connect.Running {
		t.Fatalf("task %+v", ts)
	}
}

// gate is the event bus with a fault knob: while held, Publish waits.
type gate struct {
	cdc.Publisher
	mu   sync.Mutex
	open chan struct{} // closed: publications pass
}

func newGate(p cdc.Publisher) *gate {
	g := &gate{Publisher: p, open: make(chan struct{})}
	close(g.open)
	return g
}

func (g *gate) hold() {
	g.mu.Lock()
	g.open = make(chan struct{})
	g.mu.Unlock()
}

func (g *gate) release() {
	g.mu.Lock()
	close(g.open)
	g.mu.Unlock()
}

func (g *gate) Publish(ctx context.Context, msgs ...smp.Message) error {
	g.mu.Lock()
	open := g.open
	g.mu.Unlock()
	select {
	case <-open:
	case <-ctx.Done():
		return ctx.Err()
	}
	return g.Publisher.Publish(ctx, msgs...)
}

// TestBinlogLagBytes: smp_cdc_source_lag_bytes is the binlog written
// after the connector's position: it grows while the connector cannot
// publish and returns to 0 once it has caught up.
func TestBinlogLagBytes(t *testing.T) {
	t.Parallel()
	p := openBinlog(t)
	g := newGate(p.bus)
	p.pub = g
	orders := consume(t, p.bus, "smp.cdc.smp_order.orders")
	w := p.worker(cdc.SnapshotInitial, false)
	defer p.stop(w)
	binlogOffset(t, w)
	lag := func() float64 {
		return p.metric("smp_cdc_source_lag_bytes", map[string]string{"connector": cdc.ConnectorName})
	}
	wait.Until(t, 10*time.Second, "lag 0 after the snapshot", func() bool { return p.has("smp_cdc_source_lag_bytes") && lag() == 0 })
	g.hold()
	for i := range 20 {
		p.insertOrder(fmt.Sprintf("ORD-%02d", i), 100000)
	}
	wait.Until(t, 10*time.Second, "lag over 20 inserts' bytes", func() bool { return lag() > 20*100 })
	if orders.count() != 0 {
		t.Fatalf("%d records passed the held gate", orders.count())
	}
	g.release()
	wait.Until(t, 10*time.Second, "the inserts published and the lag back to 0", func() bool { return orders.count() == 20 && lag() == 0 })
}

func TestLagBytesAcrossFiles(t *testing.T) {
	t.Parallel()
	logs := []cdc.BinlogFile{{Name: "binlog.000001", Size: 1000}, {Name: "binlog.000002", Size: 700}, {Name: "binlog.000003", Size: 300}}
	for _, c := range []struct {
		file string
		pos  uint32
		want int64
	}{{"binlog.000001", 400, 600 + 700 + 300}, {"binlog.000002", 700, 300}, {"binlog.000003", 300, 0}} {
		if got := cdc.LagBytes(logs, c.file, c.pos); got != c.want {
			t.Errorf("lag at %s:%d = %d, want %d", c.file, c.pos, got, c.want)
		}
	}
}

// syncBuffer is a log destination tests read while the task writes.
type syncBuffer struct {
	mu sync.Mutex
	b  strings.Builder
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

// TestBinlogServerChecks: a binlog kept less than 7 days is a warning
// (the task runs); a binlog_format other than ROW fails the task with
// Debezium's message.
func TestBinlogServerChecks(t *testing.T) {
	t.Parallel()
	p := openBinlog(t)
	logs := &syncBuffer{}
	p.log = slog.New(slog.NewTextHandler(logs, nil))
	p.exec(`SET GLOBAL binlog_expire_logs_seconds = 86400`)
	w := p.worker(cdc.SnapshotInitial, false)
	defer p.stop(w)
	binlogOffset(t, w)
	if ts := taskState(w); ts.State != connect.Running {
		t.Fatalf("task %+v with a day of retention", ts)
	}
	if !strings.Contains(logs.String(), "binlog retention is below 7 days") || !strings.Contains(logs.String(), "retention_seconds=86400") {
		t.Fatalf("no retention warning in\n%s", logs.String())
	}
	p.exec(`SET GLOBAL binlog_format = 'STATEMENT'`)
	if err := w.RestartTask(cdc.ConnectorName, 0); err != nil {
		t.Fatal(err)
	}
	wait.Until(t, 20*time.Second, "task FAILED", func() bool { return taskState(w).State == connect.Failed })
	if tr := taskState(w).Trace; !strings.HasPrefix(tr, "The MySQL server is not configured to use a ROW binlog_format") {
		t.Fatalf("trace %q", tr)
	}
}

// TestPositionLostFromTheStream: the server's ERROR 1236 on the stream is
// Debezium's position-lost failure; other stream errors are not.
func TestPositionLostFromTheStream(t *testing.T) {
	t.Parallel()
	lost := cdc.StreamError(&gomysql.MyError{Code: 1236, Message: "Could not find GTID state requested by slave in any binlog files"})
	var pl *cdc.PositionLostError
	if !errors.As(lost, &pl) || !strings.HasPrefix(lost.Error(), "The connector is trying to read binlog starting at binlog.000001:4 (GTIDs 0-1-7): ") {
		t.Fatalf("ERROR 1236: %v", lost)
	}
	if other := cdc.StreamError(io.ErrUnexpectedEOF); errors.As(other, &pl) {
		t.Fatalf("a lost connection is not a lost position: %v", other)
	}
}
