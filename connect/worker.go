// Package connect is SMP's Kafka Connect worker: the connectors, their
// tasks and the state machine Kafka Connect reports (UNASSIGNED, RUNNING,
// PAUSED, FAILED, RESTARTING, STOPPED), and the source offsets a task
// resumes from. Package connectapi serves it as Kafka Connect's REST API.
//
// A connector is a configuration naming a plugin (connector.class); the
// plugin makes its tasks; a task runs until its context ends or it fails.
// A failed task is FAILED with its error as the trace until it is
// restarted; pausing or stopping a connector cancels its tasks, resuming
// starts them again from the stored offsets.
package connect

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"maps"
	"slices"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"smp"
	"smp/internal/startstop"
)

// State is a connector's or a task's state as Kafka Connect names it.
type State string

// The states Kafka Connect reports.
const (
	Unassigned State = "UNASSIGNED"
	Running    State = "RUNNING"
	Paused     State = "PAUSED"
	Failed     State = "FAILED"
	Restarting State = "RESTARTING"
	Stopped    State = "STOPPED"
)

// States lists every state (the metric's label values).
var States = []State{Unassigned, Running, Paused, Failed, Restarting, Stopped}

// Offset is one source partition and the position reached in it.
type Offset = smp.ConnectOffset

// OffsetStore keeps source offsets durably, per connector (sqlstore).
type OffsetStore = smp.ConnectOffsetStore

// Plugin is a connector class: it checks a configuration and makes the
// connector's tasks from it.
type Plugin interface {
	// Type is "source" or "sink".
	Type() string
	// Validate returns an EINVALID error for a configuration it cannot run.
	Validate(config map[string]string) error
	// Tasks makes the connector's tasks (at most tasks.max).
	Tasks(name string, config map[string]string) ([]Task, error)
}

// Task is one unit of a connector's work.
type Task interface {
	// Run works until ctx ends (it then returns nil or ctx's error) or it
	// cannot go on: the error it returns makes the task FAILED, with the
	// error as the trace. offsets is the connector's offset storage.
	Run(ctx context.Context, offsets Offsets) error
}

// Offsets is a task's view of its connector's stored offsets.
type Offsets interface {
	Read(ctx context.Context) ([]Offset, error)
	Commit(ctx context.Context, offsets []Offset) error
}

// Config configures a Worker.
type Config struct {
	// WorkerID is what statuses show as worker_id (host:port).
	WorkerID string
	// Plugins are the connector classes, by connector.class.
	Plugins map[string]Plugin
	Offsets OffsetStore
	// Configs, when set, keeps each connector's configuration and target
	// state (Load reads them back): a pause or a stop outlives the process.
	Configs smp.ConnectConfigStore
	Logger  *slog.Logger
	// Registerer, when set, gets kafka_connect_connector_status and
	// kafka_connect_task_status.
	Registerer prometheus.Registerer
}

// Status is a connector's status, in Connect's JSON shape.
type Status struct {
	Name      string         `json:"name"`
	Connector ConnectorState `json:"connector"`
	Tasks     []TaskState    `json:"tasks"`
	Type      string         `json:"type"`
}

// ConnectorState is the connector instance's part of a Status.
type ConnectorState struct {
	State    State  `json:"state"`
	WorkerID string `json:"worker_id"`
	Trace    string `json:"trace,omitempty"`
}

// TaskState is one task's status.
type TaskState struct {
	ID       int    `json:"id"`
	State    State  `json:"state"`
	WorkerID string `json:"worker_id"`
	Trace    string `json:"trace,omitempty"`
}

// Info is what PUT /connectors/{c}/config answers.
type Info struct {
	Name   string            `json:"name"`
	Config map[string]string `json:"config"`
	Tasks  []TaskID          `json:"tasks"`
	Type   string            `json:"type"`
}

// TaskID names a task.
type TaskID struct {
	Connector string `json:"connector"`
	Task      int    `json:"task"`
}

// Worker runs connectors. Its methods return smp errors: ENOTFOUND for an
// unknown connector or task, EINVALID for a configuration no plugin takes,
// EINVALID (Connect answers 400) for offsets changed while the connector
// is not STOPPED.
type Worker struct {
	startstop.Base
	cfg Config
	log *slog.Logger

	mu         sync.Mutex
	run        context.Context // the worker's run; nil before Start and after Stop
	wg         sync.WaitGroup  // the tasks' goroutines, added to only while run is set
	connectors map[string]*connector
}

type connector struct {
	name   string
	config map[string]string
	plugin Plugin
	target State // RUNNING, PAUSED or STOPPED: what the operator asked for
	state  State
	trace  string
	tasks  []*task
}

type task struct {
	id     int
	impl   Task
	state  State
	trace  string
	cancel context.CancelFunc // of the current run; nil when not running
	done   chan struct{}      // closed when the current run returns
}

// New returns a worker with no connectors.
func New(cfg Config) (*Worker, error) {
	if cfg.Offsets == nil {
		return nil, errors.New("connect: Config.Offsets is required")
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	w := &Worker{cfg: cfg, log: cfg.Logger.With("service", "kafka-connect"), connectors: map[string]*connector{}}
	if cfg.Registerer != nil {
		if err := cfg.Registerer.Register(collector{w}); err != nil {
			return nil, fmt.Errorf("connect: metrics: %w", err)
		}
	}
	return w, nil
}

// Start starts the worker and the tasks of the connectors configured
// before it.
func (w *Worker) Start(ctx context.Context) error {
	run, ok := w.StartInit(ctx)
	if !ok {
		return nil
	}
	w.mu.Lock()
	w.run = run
	for _, c := range w.connectors {
		w.startLocked(c)
	}
	w.mu.Unlock()
	w.MarkStarted()
	return nil
}

// Stop stops every task and waits for them (bounded by ctx).
func (w *Worker) Stop(ctx context.Context) error {
	w.mu.Lock()
	for _, c := range w.connectors {
		w.cancelLocked(c, nil)
		for _, t := range c.tasks {
			t.state = Unassigned
		}
	}
	w.run = nil
	w.mu.Unlock()
	joined := make(chan struct{})
	go func() { w.wg.Wait(); close(joined) }()
	select {
	case <-joined:
	case <-ctx.Done():
		return ctx.Err()
	}
	return w.Base.Stop(ctx)
}

// Load creates the stored connectors (Config.Configs) in their stored
// target states; a stored connector whose class no plugin serves is
// skipped (and kept). It returns the names loaded.
func (w *Worker) Load(ctx context.Context) ([]string, error) {
	if w.cfg.Configs == nil {
		return nil, nil
	}
	stored, err := w.cfg.Configs.ConnectorConfigs(ctx)
	if err != nil {
		return nil, err
	}
	w.mu.Lock()
	defer w.mu.Unlock()
	var names []string
	for _, sc := range stored {
		p, ok := w.cfg.Plugins[sc.Config["connector.class"]]
		if !ok {
			w.log.Warn("stored connector skipped: no plugin for its class", "connector", sc.Name, "class", sc.Config["connector.class"])
			continue
		}
		c := &connector{name: sc.Name, config: sc.Config, plugin: p, target: State(sc.Target)}
		w.connectors[sc.Name] = c
		w.applyLocked(c)
		names = append(names, sc.Name)
	}
	return names, nil
}

// persist stores a connector's configuration and target before the change
// takes effect (a failed write changes nothing). The REST calls have no
// context of their own here; the write is bounded instead.
func (w *Worker) persist(name string, config map[string]string, target State) error {
	if w.cfg.Configs == nil {
		return nil
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	return w.cfg.Configs.PutConnectorConfig(ctx, smp.ConnectorConfig{Name: name, Config: config, Target: string(target)})
}

// Connectors returns the connectors' names, sorted.
func (w *Worker) Connectors() []string {
	w.mu.Lock()
	defer w.mu.Unlock()
	names := slices.Sorted(maps.Keys(w.connectors))
	if names == nil {
		names = []string{}
	}
	return names
}

func (w *Worker) get(name string) (*connector, error) {
	c, ok := w.connectors[name]
	if !ok {
		return nil, smp.Errorf(smp.ENOTFOUND, "Connector %s not found", name)
	}
	return c, nil
}

// Config returns a connector's configuration.
func (w *Worker) Config(name string) (map[string]string, error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	c, err := w.get(name)
	if err != nil {
		return nil, err
	}
	return maps.Clone(c.config), nil
}

// PutConfig creates the connector (created true) or replaces its
// configuration, restarting its tasks with it. EINVALID when the
// configuration names no known connector.class or its plugin refuses it;
// nothing changes then.
func (w *Worker) PutConfig(name string, config map[string]string) (info Info, created bool, err error) {
	if name == "" {
		return Info{}, false, smp.Errorf(smp.EINVALID, "Connector name must not be empty")
	}
	if n, ok := config["name"]; ok && n != name {
		return Info{}, false, smp.Errorf(smp.EINVALID, "Connector name configuration (%s) doesn't match connector name in the URL (%s)", n, name)
	}
	class := config["connector.class"]
	p, ok := w.cfg.Plugins[class]
	if !ok {
		return Info{}, false, smp.Errorf(smp.EINVALID, "Failed to find any class that implements Connector and which name matches %s", class)
	}
	if err := p.Validate(config); err != nil {
		return Info{}, false, err
	}
	config = maps.Clone(config)
	config["name"] = name
	w.mu.Lock()
	c, exists := w.connectors[name]
	target := Running
	if exists {
		target = c.target
	}
	w.mu.Unlock()
	if err := w.persist(name, config, target); err != nil {
		return Info{}, false, err
	}
	w.mu.Lock()
	c, exists = w.connectors[name]
	var waits []chan struct{}
	if exists {
		waits = w.cancelLocked(c, nil)
	}
	w.mu.Unlock()
	wait(waits)

	w.mu.Lock()
	defer w.mu.Unlock()
	if !exists {
		c = &connector{name: name, target: Running}
		w.connectors[name] = c
	}
	c.config, c.plugin, c.tasks = config, p, nil // tasks made anew from the new config
	w.applyLocked(c)
	return w.infoLocked(c), !exists, nil
}

// Delete removes a connector after stopping its tasks (its offsets stay).
func (w *Worker) Delete(name string) error {
	w.mu.Lock()
	c, err := w.get(name)
	if err != nil {
		w.mu.Unlock()
		return err
	}
	if w.cfg.Configs != nil {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		err := w.cfg.Configs.DeleteConnectorConfig(ctx, name)
		cancel()
		if err != nil {
			w.mu.Unlock()
			return err
		}
	}
	waits := w.cancelLocked(c, nil)
	delete(w.connectors, name)
	w.mu.Unlock()
	wait(waits)
	return nil
}

func (w *Worker) infoLocked(c *connector) Info {
	info := Info{Name: c.name, Config: maps.Clone(c.config), Tasks: []TaskID{}, Type: c.plugin.Type()}
	for _, t := range c.tasks {
		info.Tasks = append(info.Tasks, TaskID{Connector: c.name, Task: t.id})
	}
	return info
}

// Status returns a connector's status.
func (w *Worker) Status(name string) (Status, error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	c, err := w.get(name)
	if err != nil {
		return Status{}, err
	}
	return w.statusLocked(c), nil
}

func (w *Worker) statusLocked(c *connector) Status {
	s := Status{Name: c.name, Connector: ConnectorState{State: c.state, WorkerID: w.cfg.WorkerID, Trace: c.trace}, Tasks: []TaskState{}, Type: c.plugin.Type()}
	for _, t := range c.tasks {
		s.Tasks = append(s.Tasks, TaskState{ID: t.id, State: t.state, WorkerID: w.cfg.WorkerID, Trace: t.trace})
	}
	return s
}

// TaskStatus returns one task's status.
func (w *Worker) TaskStatus(name string, id int) (TaskState, error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	c, err := w.get(name)
	if err != nil {
		return TaskState{}, err
	}
	t, err := c.task(id)
	if err != nil {
		return TaskState{}, err
	}
	return TaskState{ID: t.id, State: t.state, WorkerID: w.cfg.WorkerID, Trace: t.trace}, nil
}

func (c *connector) task(id int) (*task, error) {
	if id < 0 || id >= len(c.tasks) {
		return nil, smp.Errorf(smp.ENOTFOUND, "Task %s-%d not found", c.name, id)
	}
	return c.tasks[id], nil
}

// Restart restarts a connector. Without includeTasks it restarts only the
// connector instance (with onlyFailed, only if it FAILED). With
// includeTasks it restarts the tasks too (with onlyFailed, only the FAILED
// ones). It returns the status taken when the restart began, in which the
// instances being restarted show RESTARTING.
func (w *Worker) Restart(name string, includeTasks, onlyFailed bool) (Status, error) {
	w.mu.Lock()
	c, err := w.get(name)
	if err != nil {
		w.mu.Unlock()
		return Status{}, err
	}
	restartConnector := !onlyFailed || c.state == Failed
	// A connector instance that failed made no tasks: it is made again.
	rebuild := restartConnector && c.state == Failed
	var which []*task
	if includeTasks {
		for _, t := range c.tasks {
			if !onlyFailed || t.state == Failed {
				which = append(which, t)
			}
		}
	}
	if restartConnector {
		c.state = Restarting
	}
	for _, t := range which {
		t.state, t.trace = Restarting, ""
	}
	st := w.statusLocked(c)
	waits := w.cancelLocked(c, which)
	w.mu.Unlock()
	wait(waits)

	w.mu.Lock()
	defer w.mu.Unlock()
	if w.connectors[name] != c {
		return st, nil // deleted meanwhile
	}
	if rebuild {
		w.applyLocked(c)
		return st, nil
	}
	if restartConnector {
		c.state, c.trace = c.target, ""
	}
	for _, t := range which {
		w.startTaskLocked(c, t)
	}
	return st, nil
}

// RestartTask restarts one task.
func (w *Worker) RestartTask(name string, id int) error {
	w.mu.Lock()
	c, err := w.get(name)
	if err != nil {
		w.mu.Unlock()
		return err
	}
	t, err := c.task(id)
	if err != nil {
		w.mu.Unlock()
		return err
	}
	t.state = Restarting
	waits := w.cancelLocked(c, []*task{t})
	w.mu.Unlock()
	wait(waits)
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.connectors[name] == c {
		w.startTaskLocked(c, t)
	}
	return nil
}

// Pause pauses a connector: its tasks stop working until Resume.
func (w *Worker) Pause(name string) error { return w.setTarget(name, Paused) }

// Resume resumes a paused or stopped connector.
func (w *Worker) Resume(name string) error { return w.setTarget(name, Running) }

// StopConnector stops a connector: its tasks are shut down and removed
// until it is resumed; only then may its offsets be changed.
func (w *Worker) StopConnector(name string) error { return w.setTarget(name, Stopped) }

func (w *Worker) setTarget(name string, target State) error {
	w.mu.Lock()
	c, err := w.get(name)
	if err != nil {
		w.mu.Unlock()
		return err
	}
	if err := w.persist(name, c.config, target); err != nil {
		w.mu.Unlock()
		return err
	}
	c.target = target
	var waits []chan struct{}
	if target != Running {
		waits = w.cancelLocked(c, nil)
	}
	w.mu.Unlock()
	wait(waits)
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.connectors[name] == c && c.target == target {
		w.applyLocked(c)
	}
	return nil
}

// Offsets returns a connector's stored offsets.
func (w *Worker) Offsets(ctx context.Context, name string) ([]Offset, error) {
	w.mu.Lock()
	_, err := w.get(name)
	w.mu.Unlock()
	if err != nil {
		return nil, err
	}
	return w.cfg.Offsets.ConnectOffsets(ctx, name)
}

// AlterOffsets writes offsets; EINVALID unless the connector is STOPPED.
func (w *Worker) AlterOffsets(ctx context.Context, name string, offsets []Offset) error {
	if err := w.stopped(name); err != nil {
		return err
	}
	for _, o := range offsets {
		if len(o.Partition) == 0 {
			return smp.Errorf(smp.EINVALID, "Source partitions may not be null or empty")
		}
	}
	return w.cfg.Offsets.PutConnectOffsets(ctx, name, offsets)
}

// ResetOffsets deletes every offset of the connector (its next start takes
// a new snapshot); EINVALID unless the connector is STOPPED.
func (w *Worker) ResetOffsets(ctx context.Context, name string) error {
	if err := w.stopped(name); err != nil {
		return err
	}
	return w.cfg.Offsets.DeleteConnectOffsets(ctx, name)
}

func (w *Worker) stopped(name string) error {
	w.mu.Lock()
	defer w.mu.Unlock()
	c, err := w.get(name)
	if err != nil {
		return err
	}
	if c.state != Stopped {
		return smp.Errorf(smp.EINVALID, "Connectors must be in the STOPPED state before their offsets can be modified. This can be done for the specified connector by issuing a 'PUT' request to the '/connectors/%s/stop' endpoint", name)
	}
	return nil
}

// applyLocked brings a connector to its target: tasks made and started
// (RUNNING), made and not started (PAUSED), or none (STOPPED).
func (w *Worker) applyLocked(c *connector) {
	c.trace = ""
	if c.target == Stopped {
		c.tasks, c.state = nil, Stopped
		return
	}
	if c.tasks == nil {
		impls, err := c.plugin.Tasks(c.name, c.config)
		if err != nil {
			c.state, c.trace = Failed, err.Error()
			w.log.Error("connector failed", "connector", c.name, "err", err)
			return
		}
		for i, impl := range impls {
			c.tasks = append(c.tasks, &task{id: i, impl: impl, state: Unassigned})
		}
	}
	c.state = c.target
	w.startLocked(c)
}

// startLocked starts the connector's tasks that are not running, or marks
// them PAUSED. Before the worker starts, tasks stay UNASSIGNED.
func (w *Worker) startLocked(c *connector) {
	if c.state == Unassigned || c.state == "" {
		c.state = c.target
	}
	for _, t := range c.tasks {
		w.startTaskLocked(c, t)
	}
}

func (w *Worker) startTaskLocked(c *connector, t *task) {
	if t.cancel != nil {
		return
	}
	t.trace = ""
	switch {
	case c.target == Paused:
		t.state = Paused
		return
	case c.target == Stopped:
		return
	case w.run == nil:
		t.state = Unassigned
		return
	}
	ctx, cancel := context.WithCancel(w.run)
	t.cancel, t.done, t.state = cancel, make(chan struct{}), Running
	done, offs := t.done, offsets{store: w.cfg.Offsets, connector: c.name}
	w.wg.Add(1)
	go func() {
		defer w.wg.Done()
		defer close(done)
		err := runTask(ctx, t.impl, offs)
		w.mu.Lock()
		defer w.mu.Unlock()
		if t.done != done {
			return
		}
		t.cancel = nil
		if ctx.Err() != nil {
			return // whoever cancelled sets the state
		}
		cancel()
		if err == nil {
			err = errors.New("task returned without being stopped")
		}
		t.state, t.trace = Failed, err.Error()
		w.log.Error("task failed", "connector", c.name, "task", t.id, "err", err)
	}()
}

func runTask(ctx context.Context, t Task, offs Offsets) (err error) {
	defer func() {
		if r := recover(); r != nil {
			err = fmt.Errorf("task panicked: %v", r)
		}
	}()
	return t.Run(ctx, offs)
}

// cancelLocked cancels the given tasks (nil: all of the connector's) and
// returns what to wait for; their states are left to the caller.
func (w *Worker) cancelLocked(c *connector, which []*task) []chan struct{} {
	if which == nil {
		which = c.tasks
	}
	var waits []chan struct{}
	for _, t := range which {
		if t.cancel != nil {
			t.cancel()
			t.cancel = nil
			waits = append(waits, t.done)
		}
	}
	return waits
}

func wait(waits []chan struct{}) {
	for _, d := range waits {
		<-d
	}
}

// offsets is a task's view of the store.
type offsets struct {
	store     OffsetStore
	connector string
}

func (o offsets) Read(ctx context.Context) ([]Offset, error) {
	return o.store.ConnectOffsets(ctx, o.connector)
}

func (o offsets) Commit(ctx context.Context, offs []Offset) error {
	return o.store.PutConnectOffsets(ctx, o.connector, offs)
}
