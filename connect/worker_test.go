package connect_test

import (
	"context"
	"errors"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"go.uber.org/goleak"

	"smp"
	"smp/connect"
	"smp/internal/wait"
	"smp/sqlstore"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

// plugin is a connector class for the tests: each task runs until it is
// stopped or told to fail (fail), and counts its starts.
type plugin struct {
	mu     sync.Mutex
	starts map[int]int
	fail   map[int]chan error
	bad    bool // Tasks fails: the connector instance FAILED
}

func newPlugin() *plugin { return &plugin{starts: map[int]int{}, fail: map[int]chan error{}} }

func (p *plugin) Type() string { return "source" }

func (p *plugin) Validate(cfg map[string]string) error {
	if cfg["tasks.max"] == "bad" {
		return smp.Errorf(smp.EINVALID, "tasks.max must be a number")
	}
	return nil
}

func (p *plugin) Tasks(name string, cfg map[string]string) ([]connect.Task, error) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.bad {
		return nil, errors.New("cannot reach the database")
	}
	return []connect.Task{&ptask{p: p, id: 0}, &ptask{p: p, id: 1}}, nil
}

func (p *plugin) failTask(id int, err error) {
	p.mu.Lock()
	ch := p.fail[id]
	p.mu.Unlock()
	ch <- err
}

func (p *plugin) startsOf(id int) int {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.starts[id]
}

type ptask struct {
	p  *plugin
	id int
}

func (t *ptask) Run(ctx context.Context, offs connect.Offsets) error {
	ch := make(chan error, 1)
	t.p.mu.Lock()
	t.p.starts[t.id]++
	t.p.fail[t.id] = ch
	t.p.mu.Unlock()
	if err := offs.Commit(ctx, []connect.Offset{{Partition: map[string]any{"task": t.id}, Offset: map[string]any{"started": true}}}); err != nil {
		return err
	}
	select {
	case <-ctx.Done():
		return nil
	case err := <-ch:
		return err
	}
}

const class = "test.Source"

func newWorker(t *testing.T) (*connect.Worker, *plugin) {
	t.Helper()
	db, err := sqlstore.Open(context.Background(), sqlstore.Config{Path: filepath.Join(t.TempDir(), "smp.db")})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	p := newPlugin()
	w, err := connect.New(connect.Config{WorkerID: "w1:8083", Plugins: map[string]connect.Plugin{class: p}, Offsets: db})
	if err != nil {
		t.Fatal(err)
	}
	if err := w.Start(context.Background()); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if err := w.Stop(context.Background()); err != nil {
			t.Error(err)
		}
	})
	return w, p
}

func states(t *testing.T, w *connect.Worker, name string) (connect.State, []connect.State) {
	t.Helper()
	st, err := w.Status(name)
	if err != nil {
		t.Fatal(err)
	}
	var ts []connect.State
	for _, x := range st.Tasks {
		ts = append(ts, x.State)
	}
	return st.Connector.State, ts
}

func waitTask(t *testing.T, w *connect.Worker, name string, id int, want connect.State) {
	t.Helper()
	wait.Until(t, 5*time.Second, "task "+string(want), func() bool {
		ts, err := w.TaskStatus(name, id)
		return err == nil && ts.State == want
	})
}

// TestStateMachine walks a connector through every state: RUNNING after
// its config, a task FAILED with its error as the trace, restarts of only
// the failed (RESTARTING in the answer), PAUSED, STOPPED (no tasks),
// RUNNING again on resume, and a connector instance FAILED when its plugin
// cannot make tasks.
func TestStateMachine(t *testing.T) {
	t.Parallel()
	w, p := newWorker(t)
	cfg := map[string]string{"connector.class": class, "tasks.max": "2"}
	info, created, err := w.PutConfig("c", cfg)
	if err != nil || !created || len(info.Tasks) != 2 || info.Type != "source" || info.Config["name"] != "c" {
		t.Fatalf("PutConfig: %+v %v %v", info, created, err)
	}
	waitTask(t, w, "c", 0, connect.Running)
	waitTask(t, w, "c", 1, connect.Running)
	wait.Until(t, 5*time.Second, "both tasks started", func() bool { return p.startsOf(0) == 1 && p.startsOf(1) == 1 })

	p.failTask(1, errors.New("lost connection to MySQL"))
	waitTask(t, w, "c", 1, connect.Failed)
	ts, _ := w.TaskStatus("c", 1)
	if ts.Trace != "lost connection to MySQL" || ts.WorkerID != "w1:8083" {
		t.Fatalf("failed task %+v", ts)
	}
	if c, _ := states(t, w, "c"); c != connect.Running {
		t.Fatalf("connector %s with a failed task, want RUNNING", c)
	}

	st, err := w.Restart("c", true, true)
	if err != nil {
		t.Fatal(err)
	}
	if st.Connector.State != connect.Running || st.Tasks[0].State != connect.Running || st.Tasks[1].State != connect.Restarting {
		t.Fatalf("restart onlyFailed answered %+v", st)
	}
	waitTask(t, w, "c", 1, connect.Running)
	wait.Until(t, 5*time.Second, "task 1 started again", func() bool { return p.startsOf(1) == 2 })
	if p.startsOf(0) != 1 {
		t.Fatalf("starts %d %d: only the failed task restarts", p.startsOf(0), p.startsOf(1))
	}

	if st, _ = w.Restart("c", true, false); st.Connector.State != connect.Restarting || st.Tasks[0].State != connect.Restarting || st.Tasks[1].State != connect.Restarting {
		t.Fatalf("restart includeTasks answered %+v", st)
	}
	wait.Until(t, 5*time.Second, "restarted", func() bool { return p.startsOf(0) == 2 && p.startsOf(1) == 3 })
	if err := w.RestartTask("c", 0); err != nil {
		t.Fatal(err)
	}
	wait.Until(t, 5*time.Second, "task 0 restarted", func() bool { return p.startsOf(0) == 3 })

	if err := w.Pause("c"); err != nil {
		t.Fatal(err)
	}
	if c, tasks := states(t, w, "c"); c != connect.Paused || tasks[0] != connect.Paused || tasks[1] != connect.Paused {
		t.Fatalf("paused: %s %v", c, tasks)
	}
	if err := w.ResetOffsets(context.Background(), "c"); smp.ErrorCode(err) != smp.EINVALID {
		t.Fatalf("reset offsets while PAUSED: %v, want EINVALID", err)
	}
	if err := w.StopConnector("c"); err != nil {
		t.Fatal(err)
	}
	if c, tasks := states(t, w, "c"); c != connect.Stopped || len(tasks) != 0 {
		t.Fatalf("stopped: %s %v", c, tasks)
	}
	offs, err := w.Offsets(context.Background(), "c")
	if err != nil || len(offs) != 2 {
		t.Fatalf("offsets %v %v", offs, err)
	}
	if err := w.ResetOffsets(context.Background(), "c"); err != nil {
		t.Fatal(err)
	}
	if offs, _ = w.Offsets(context.Background(), "c"); len(offs) != 0 {
		t.Fatalf("offsets after reset %v", offs)
	}
	if err := w.Resume("c"); err != nil {
		t.Fatal(err)
	}
	waitTask(t, w, "c", 0, connect.Running)
	waitTask(t, w, "c", 1, connect.Running)
	wait.Until(t, 5*time.Second, "tasks resumed", func() bool { return p.startsOf(0) == 4 && p.startsOf(1) == 4 })

	p.mu.Lock()
	p.bad = true
	p.mu.Unlock()
	if _, _, err := w.PutConfig("c", map[string]string{"connector.class": class, "tasks.max": "3"}); err != nil {
		t.Fatal(err)
	}
	st, _ = w.Status("c")
	if st.Connector.State != connect.Failed || st.Connector.Trace != "cannot reach the database" || len(st.Tasks) != 0 {
		t.Fatalf("connector whose plugin fails: %+v", st)
	}
	if st, _ = w.Restart("c", false, true); st.Connector.State != connect.Restarting {
		t.Fatalf("restart of a failed connector answered %+v", st)
	}
	if c, _ := states(t, w, "c"); c != connect.Failed {
		t.Fatalf("still failing plugin: %s", c)
	}
	p.mu.Lock()
	p.bad = false
	p.mu.Unlock()
	w.Restart("c", false, true)
	waitTask(t, w, "c", 1, connect.Running)
	if c, _ := states(t, w, "c"); c != connect.Running {
		t.Fatalf("connector after restart: %s", c)
	}
}

// TestErrors: unknown connectors and tasks are ENOTFOUND, configurations
// no plugin takes EINVALID, and a refused config creates nothing.
func TestErrors(t *testing.T) {
	t.Parallel()
	w, _ := newWorker(t)
	for name, err := range map[string]error{
		"status":  func() error { _, err := w.Status("nope"); return err }(),
		"config":  func() error { _, err := w.Config("nope"); return err }(),
		"restart": func() error { _, err := w.Restart("nope", true, true); return err }(),
		"pause":   w.Pause("nope"),
		"stop":    w.StopConnector("nope"),
		"offsets": func() error { _, err := w.Offsets(context.Background(), "nope"); return err }(),
	} {
		if smp.ErrorCode(err) != smp.ENOTFOUND {
			t.Errorf("%s: %v, want ENOTFOUND", name, err)
		}
	}
	for _, cfg := range []map[string]string{{"connector.class": "no.Such"}, {"connector.class": class, "tasks.max": "bad"}, {"connector.class": class, "name": "other"}} {
		if _, _, err := w.PutConfig("c", cfg); smp.ErrorCode(err) != smp.EINVALID {
			t.Errorf("PutConfig %v: %v, want EINVALID", cfg, err)
		}
	}
	if len(w.Connectors()) != 0 {
		t.Fatalf("refused configs created %v", w.Connectors())
	}
	if _, _, err := w.PutConfig("c", map[string]string{"connector.class": class}); err != nil {
		t.Fatal(err)
	}
	if _, err := w.TaskStatus("c", 2); smp.ErrorCode(err) != smp.ENOTFOUND {
		t.Fatalf("task 2: %v", err)
	}
}

// TestMetrics: kafka_connect_connector_status{connector,state} is 1 for
// the current state and 0 for the five others; kafka_connect_task_status
// the same per task.
func TestMetrics(t *testing.T) {
	t.Parallel()
	db, err := sqlstore.Open(context.Background(), sqlstore.Config{Path: filepath.Join(t.TempDir(), "smp.db")})
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	reg := prometheus.NewRegistry()
	p := newPlugin()
	w, err := connect.New(connect.Config{Plugins: map[string]connect.Plugin{class: p}, Offsets: db, Registerer: reg})
	if err != nil {
		t.Fatal(err)
	}
	if err := w.Start(context.Background()); err != nil {
		t.Fatal(err)
	}
	defer w.Stop(context.Background())
	if _, _, err := w.PutConfig("smp-mysql-connector", map[string]string{"connector.class": class}); err != nil {
		t.Fatal(err)
	}
	gauge := func(name string, labels map[string]string) (float64, int) {
		mfs, err := reg.Gather()
		if err != nil {
			t.Fatal(err)
		}
		var v float64
		n := 0
		for _, mf := range mfs {
			if mf.GetName() != name {
				continue
			}
		next:
			for _, m := range mf.Metric {
				n++
				for _, l := range m.Label {
					if want, ok := labels[l.GetName()]; ok && want != l.GetValue() {
						continue next
					}
				}
				v += m.GetGauge().GetValue()
			}
		}
		return v, n
	}
	state := func(s string) float64 {
		v, _ := gauge("kafka_connect_connector_status", map[string]string{"connector": "smp-mysql-connector", "state": s})
		return v
	}
	if state("RUNNING") != 1 || state("FAILED") != 0 || state("STOPPED") != 0 {
		t.Fatalf("running: RUNNING %v FAILED %v", state("RUNNING"), state("FAILED"))
	}
	if _, n := gauge("kafka_connect_connector_status", nil); n != 6 {
		t.Fatalf("%d series, want one per state", n)
	}
	wait.Until(t, 5*time.Second, "task 1 started", func() bool { return p.startsOf(1) == 1 })
	p.failTask(1, errors.New("boom"))
	wait.Until(t, 5*time.Second, "task 1 FAILED in the metric", func() bool {
		v, _ := gauge("kafka_connect_task_status", map[string]string{"task": "1", "state": "FAILED"})
		return v == 1
	})
	if err := w.StopConnector("smp-mysql-connector"); err != nil {
		t.Fatal(err)
	}
	if state("STOPPED") != 1 || state("RUNNING") != 0 {
		t.Fatalf("stopped: STOPPED %v RUNNING %v", state("STOPPED"), state("RUNNING"))
	}
}

// TestConfigsOutliveTheWorker: with a config store, a connector's
// configuration and the state an operator left it in come back in a new
// worker (Load); a deleted connector does not; a stored connector whose
// class no plugin serves is skipped.
func TestConfigsOutliveTheWorker(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	db, err := sqlstore.Open(ctx, sqlstore.Config{Path: filepath.Join(t.TempDir(), "smp.db")})
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	open := func() *connect.Worker {
		w, err := connect.New(connect.Config{Plugins: map[string]connect.Plugin{class: newPlugin()}, Offsets: db, Configs: db})
		if err != nil {
			t.Fatal(err)
		}
		if _, err := w.Load(ctx); err != nil {
			t.Fatal(err)
		}
		if err := w.Start(ctx); err != nil {
			t.Fatal(err)
		}
		return w
	}
	w := open()
	for _, n := range []string{"a", "b", "c"} {
		if _, _, err := w.PutConfig(n, map[string]string{"connector.class": class, "x": n}); err != nil {
			t.Fatal(err)
		}
	}
	if err := w.StopConnector("a"); err != nil {
		t.Fatal(err)
	}
	if err := w.Pause("b"); err != nil {
		t.Fatal(err)
	}
	if err := w.Delete("c"); err != nil {
		t.Fatal(err)
	}
	must(t, db.PutConnectorConfig(ctx, smp.ConnectorConfig{Name: "d", Config: map[string]string{"connector.class": "no.Such"}, Target: "RUNNING"}))
	if err := w.Stop(ctx); err != nil {
		t.Fatal(err)
	}

	w = open()
	defer w.Stop(ctx)
	if got := w.Connectors(); len(got) != 2 || got[0] != "a" || got[1] != "b" {
		t.Fatalf("connectors after a restart: %v", got)
	}
	if c, tasks := states(t, w, "a"); c != connect.Stopped || len(tasks) != 0 {
		t.Fatalf("a after a restart: %s %v", c, tasks)
	}
	if c, tasks := states(t, w, "b"); c != connect.Paused || len(tasks) != 2 || tasks[0] != connect.Paused {
		t.Fatalf("b after a restart: %s %v", c, tasks)
	}
	if cfg, _ := w.Config("b"); cfg["x"] != "b" {
		t.Fatalf("b's config %v", cfg)
	}
}

func must(t *testing.T, err error) {
	t.Helper()
	if err != nil {
		t.Fatal(err)
	}
}
