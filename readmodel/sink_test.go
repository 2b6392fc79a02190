package readmodel_test

import (
	"context"
	"database/sql"
	"encoding/json"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"go.uber.org/goleak"

	"smp"
	"smp/cdc"
	"smp/connect"
	"smp/internal/sqldb"
	"smp/internal/wait"
	"smp/readmodel"
	"smp/readmodel/bleveindex"
	"smp/sqlbus"
	"smp/sqlstore"
)

// bleve's analysis workers are started by its init, once per binary.
func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m, goleak.IgnoreTopFunction("github.com/blevesearch/bleve_index_api.AnalysisWorker"))
}

var ctx = context.Background()

// clock is a settable clock starting at the wall clock (the change table
// stamps changes with the wall clock).
type clock struct {
	mu sync.Mutex
	at time.Time
}

func (c *clock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.at
}

func (c *clock) Advance(d time.Duration) {
	c.mu.Lock()
	c.at = c.at.Add(d)
	c.mu.Unlock()
}

// platform is the whole pipeline on the embedded default: a SQLite store
// whose triggers capture changes, the embedded log, the source connector
// and the sink in one Connect worker, and the bleve index.
type platform struct {
	t     *testing.T
	dir   string
	reg   *prometheus.Registry
	clock *clock
	db    *sqlstore.DB
	bus   *sqlbus.Bus
	raw   *sql.DB
	index *bleveindex.Index
	sink  *readmodel.Sink
	w     *connect.Worker
}

func open(t *testing.T) *platform {
	t.Helper()
	dir := t.TempDir()
	p := &platform{t: t, dir: dir, reg: prometheus.NewRegistry(), clock: &clock{at: time.Now()}}
	var err error
	if p.db, err = sqlstore.Open(ctx, sqlstore.Config{Path: filepath.Join(dir, "smp.db")}); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { p.db.Close() })
	if p.bus, err = sqlbus.Open(sqlbus.Config{Path: filepath.Join(dir, "events.db"), Partitions: 4, PollInterval: 10 * time.Millisecond}); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { p.bus.Close() })
	if p.raw, err = sqldb.OpenSQLite(filepath.Join(dir, "smp.db"), false); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { p.raw.Close() })
	if p.index, err = bleveindex.Open(filepath.Join(dir, "readmodel")); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { p.index.Close() })
	return p
}

// start runs the worker with both connectors; sinkCfg changes the sink's
// default configuration.
func (p *platform) start(sinkCfg map[string]string) {
	p.t.Helper()
	src, err := cdc.NewEmbedded(cdc.Config{Store: p.db, Publisher: p.bus, Wake: p.db.CommitSignal(), Poll: 20 * time.Millisecond, Registerer: p.reg})
	if err != nil {
		p.t.Fatal(err)
	}
	if p.sink, err = readmodel.NewSink(readmodel.SinkConfig{Index: p.index, Bus: p.bus, Now: p.clock.Now, Registerer: p.reg}); err != nil {
		p.t.Fatal(err)
	}
	if p.w, err = connect.New(connect.Config{WorkerID: "test:8083", Offsets: p.db, Registerer: p.reg,
		Plugins: map[string]connect.Plugin{cdc.Class: src, readmodel.Class: p.sink}}); err != nil {
		p.t.Fatal(err)
	}
	if _, _, err := p.w.PutConfig(cdc.ConnectorName, cdc.DefaultConfig()); err != nil {
		p.t.Fatal(err)
	}
	cfg := readmodel.DefaultConfig()
	for k, v := range sinkCfg {
		cfg[k] = v
	}
	if _, _, err := p.w.PutConfig(readmodel.ConnectorName, cfg); err != nil {
		p.t.Fatal(err)
	}
	if err := p.w.Start(ctx); err != nil {
		p.t.Fatal(err)
	}
	p.t.Cleanup(func() {
		sctx, cancel := context.WithTimeout(ctx, 10*time.Second)
		defer cancel()
		p.w.Stop(sctx)
	})
}

func (p *platform) exec(q string, args ...any) {
	p.t.Helper()
	if _, err := p.raw.ExecContext(ctx, q, args...); err != nil {
		p.t.Fatalf("%s: %v", q, err)
	}
}

func (p *platform) insertOrder(id, address string) {
	p.exec(`INSERT INTO orders (id, customer_id, city, service, lat, lng, address, price_vnd, stage, payment_status, created_at, stage_changed_at)
		VALUES (?, 'C0001', 'HCMC', 'aircon', 10.77, 106.7, ?, 250000, '01_created', 'pending', 1000, 1000)`, id, address)
}

// doc returns the order's document's field (ok false: no document).
func (p *platform) field(id, name string) (any, bool) {
	d, err := p.index.Get(ctx, "orders", id)
	if err != nil {
		return nil, false
	}
	var m map[string]any
	json.Unmarshal(d.Source, &m)
	return m[name], true
}

func (p *platform) metric(name string, labels map[string]string) float64 {
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
				if v, ok := labels[l.GetName()]; ok && v != l.GetValue() {
					continue next
				}
			}
			total += m.GetCounter().GetValue() + m.GetGauge().GetValue()
		}
	}
	return total
}

// TestSinkPipeline: rows committed reach the index (snapshot, then
// changes), deletes delete, a replayed older change never overwrites newer
// state, and a record that cannot be written goes to the sink's dead-letter
// topic with its reason while the records after it are indexed.
func TestSinkPipeline(t *testing.T) {
	t.Parallel()
	p := open(t)
	p.insertOrder("O1", "1 Lê Lợi") // before the connectors: the snapshot carries it
	p.start(nil)
	p.insertOrder("O2", "2 Hàm Nghi")
	p.insertOrder("O3", "3 Pasteur")
	p.exec(`INSERT INTO order_transitions (order_id, from_stage, to_stage, at, actor, reason) VALUES ('O1', '01_created', '02_dispatching', 2000, 'system', '')`)
	wait.Until(t, 15*time.Second, "3 orders and 1 transition indexed", func() bool {
		n, _ := p.index.Count(ctx, "orders")
		m, _ := p.index.Count(ctx, "order_transitions")
		return n == 3 && m == 1
	})
	if st, _ := p.w.Status(readmodel.ConnectorName); st.Connector.State != connect.Running || st.Type != "sink" || len(st.Tasks) != 1 || st.Tasks[0].State != connect.Running {
		t.Errorf("sink status: %+v", st)
	}
	p.exec(`UPDATE orders SET stage = '03_assigned', technician_id = 'T0001' WHERE id = 'O1'`)
	p.exec(`DELETE FROM orders WHERE id = 'O2'`)
	wait.Until(t, 10*time.Second, "O1 assigned and O2 deleted in the index", func() bool {
		stage, _ := p.field("O1", "stage")
		_, has := p.field("O2", "id")
		return stage == "03_assigned" && !has
	})
	d, _ := p.index.Get(ctx, "orders", "O1")
	if d.Version <= 0 {
		t.Errorf("O1's version %d: want its change's position", d.Version)
	}

	// A replay of an older change of O1 (position 1) is refused.
	stale, _ := json.Marshal(cdc.Envelope{After: json.RawMessage(`{"id":"O1","customer_id":"C0001","city":"HCMC","service":"aircon","lat":10.77,"lng":106.7,"address":"old","price_vnd":250000,"stage":"01_created","payment_status":"pending","technician_id":null,"created_at":1000,"stage_changed_at":1000,"dispatch_not_before":0}`),
		Source: cdc.Source{File: "cdc_changes", Pos: 1, TsMs: time.Now().UnixMilli(), Table: "orders"}, Op: "u"})
	// A record that cannot be written (price_vnd not a number), then a good
	// one after it on the same key.
	bad := `{"after":{"id":"O3","price_vnd":"lots"},"source":{"file":"cdc_changes","pos":100000,"table":"orders"},"op":"u"}`
	topic := cdc.Topic(cdc.DefaultTopicPrefix, cdc.DefaultDatabase, "orders")
	if err := p.bus.Publish(ctx,
		smp.Message{Topic: topic, Key: `{"id":"O1"}`, Value: stale},
		smp.Message{Topic: topic, Key: `{"id":"O3"}`, Value: []byte(bad)},
		smp.Message{Topic: topic, Key: `{"id":"O3"}`, Value: []byte(`not json`)},
	); err != nil {
		t.Fatal(err)
	}
	p.exec(`UPDATE orders SET address = '3 Pasteur, Quận 1' WHERE id = 'O3'`)
	wait.Until(t, 10*time.Second, "O3's later change indexed past the bad records", func() bool {
		a, _ := p.field("O3", "address")
		return a == "3 Pasteur, Quận 1"
	})
	wait.Until(t, 10*time.Second, "the stale replay counted", func() bool {
		return p.metric("smp_es_sink_records_total", map[string]string{"outcome": "stale"}) >= 1
	})
	if stage, _ := p.field("O1", "stage"); stage != "03_assigned" {
		t.Errorf("O1 after an older replay: stage %v, want 03_assigned", stage)
	}
	letters, err := p.bus.Read(ctx, readmodel.DefaultDLQ, 10)
	if err != nil {
		t.Fatal(err)
	}
	if len(letters) != 2 {
		t.Fatalf("%d dead letters on %s, want 2", len(letters), readmodel.DefaultDLQ)
	}
	reasons := map[string]bool{}
	for _, l := range letters {
		reasons[l.Headers["__connect.errors.stage"]] = true
		if l.Headers[smp.HeaderDLQReason] == "" || l.Headers["__connect.errors.exception.message"] == "" || l.Headers[smp.HeaderDLQTopic] != topic {
			t.Errorf("dead letter without its reason or origin: %v", l.Headers)
		}
	}
	if !reasons["index"] || !reasons["convert"] {
		t.Errorf("dead letters' stages %v: want index (mapping) and convert (not an envelope)", reasons)
	}
	if got := p.metric("smp_es_sink_records_total", map[string]string{"outcome": "dead_lettered"}); got != 2 {
		t.Errorf("dead_lettered = %v, want 2", got)
	}
}

// TestSinkToleranceNone: with errors.tolerance none, a record that cannot
// be written fails the task (FAILED, the reason as its trace), as Connect
// does.
func TestSinkToleranceNone(t *testing.T) {
	t.Parallel()
	p := open(t)
	p.start(map[string]string{"errors.tolerance": "none"})
	topic := cdc.Topic(cdc.DefaultTopicPrefix, cdc.DefaultDatabase, "orders")
	if err := p.bus.Publish(ctx, smp.Message{Topic: topic, Key: `{"id":"O9"}`, Value: []byte(`{"after":{"id":"O9","price_vnd":"x"},"source":{"pos":5},"op":"c"}`)}); err != nil {
		t.Fatal(err)
	}
	wait.Until(t, 10*time.Second, "the sink's task FAILED", func() bool {
		st, err := p.w.TaskStatus(readmodel.ConnectorName, 0)
		return err == nil && st.State == connect.Failed && st.Trace != ""
	})
}

// TestSinkLag: es_sink_lag_seconds is 0 caught up, rises while the sink is
// paused and changes wait, and is back to 0 once it is resumed.
func TestSinkLag(t *testing.T) {
	t.Parallel()
	p := open(t)
	p.start(nil)
	p.insertOrder("O1", "1 Lê Lợi")
	wait.Until(t, 10*time.Second, "O1 indexed and the lag 0", func() bool {
		_, ok := p.field("O1", "id")
		return ok && p.metric("es_sink_lag_seconds", nil) == 0
	})
	if err := p.w.Pause(readmodel.ConnectorName); err != nil {
		t.Fatal(err)
	}
	p.insertOrder("O2", "2 Hàm Nghi")
	wait.Until(t, 10*time.Second, "O2 published on the change topic", func() bool {
		return p.metric("smp_cdc_changes_total", map[string]string{"table": "orders"}) >= 2
	})
	// The lag counts from the change's source time, written on the wall
	// clock moments before: 330 s on leaves that slack (CI saw 1.5 s).
	p.clock.Advance(330 * time.Second)
	if lag := p.metric("es_sink_lag_seconds", nil); lag < 300 {
		t.Errorf("lag while stalled 330 s: %v, want > 300", lag)
	}
	p.clock.Advance(60 * time.Second)
	if lag := p.metric("es_sink_lag_seconds", nil); lag < 360 {
		t.Errorf("lag a minute later: %v, want rising past 360", lag)
	}
	if err := p.w.Resume(readmodel.ConnectorName); err != nil {
		t.Fatal(err)
	}
	wait.Until(t, 10*time.Second, "O2 indexed and the lag back to 0", func() bool {
		_, ok := p.field("O2", "id")
		return ok && p.metric("es_sink_lag_seconds", nil) == 0
	})
}

// TestVersionOrder: versions grow with the source position, across binlog
// files and rows of one event, and on the embedded change table.
func TestVersionOrder(t *testing.T) {
	t.Parallel()
	srcs := []cdc.Source{
		{File: "cdc_changes", Pos: 7},
		{File: "binlog.000003", Pos: 8812, Row: 0},
		{File: "binlog.000003", Pos: 8812, Row: 1},
		{File: "binlog.000003", Pos: 9000},
		{File: "binlog.000004", Pos: 4},
	}
	for i := 1; i < len(srcs); i++ {
		if a, b := readmodel.Version(srcs[i-1]), readmodel.Version(srcs[i]); a >= b {
			t.Errorf("Version(%+v) = %d ≥ Version(%+v) = %d", srcs[i-1], a, srcs[i], b)
		}
	}
}
