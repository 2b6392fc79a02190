package cdc_test

import (
	"context"
	"database/sql"
	"encoding/json"
	"fmt"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

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
	plugin, err := cdc.NewBinlog(cdc.BinlogConfig{DSN: p.server.DSN("smp_order"), Publisher: pub, Registerer: p.reg, LagEvery: 20 * time.Millisecond,
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
}
