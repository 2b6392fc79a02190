package replication

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"log/slog"
	"sort"
	"sync"
	"time"

	"smp"
	"smp/internal/startstop"
)

// HeartbeatTopic is the topic the agent writes a heartbeat to in its
// source region every HeartbeatEvery; it is mirrored as
// <source-region>.heartbeats, and the target measures the path's lag from
// the newest one it received, so the lag is right while nothing changes.
const HeartbeatTopic = "heartbeats"

// Heartbeat is a heartbeat message's value.
type Heartbeat struct {
	Source string    `json:"source"`
	At     time.Time `json:"at"`
}

// TargetStore is what an agent needs of the target region's database:
// transactions (apply, pause with its audit entry), the path's state and
// checkpoints, and leases shared by the path's agents.
type TargetStore interface {
	smp.Transactor
	smp.ReplicationStore
	smp.Locker
}

// AgentConfig configures one agent of one replication path, Source →
// Target. Several agents (three, as the runbook's prevention asks) may run
// the same path: they share its work through leases in the target store.
type AgentConfig struct {
	// Source and Target are the regions' names.
	Source, Target string
	// SourceBus is the source region's bus (its masterdata.<table> topics,
	// where the agent also writes heartbeats); TargetBus the target's,
	// where the records appear as <source>.masterdata.<table>. When
	// SourceBus is an smp.BusAdmin too, the agent starts each topic at
	// the checkpoints kept in the target store.
	SourceBus, TargetBus smp.EventBus
	// TargetStore receives the records (Apply) and keeps the path's state,
	// checkpoints and leases.
	TargetStore TargetStore
	// Guard checks every record before it is carried and again before it
	// is applied.
	Guard *Guard
	// Metrics counts applied and duplicate records (nil: not counted).
	Metrics *Metrics
	// HeartbeatEvery is how often a heartbeat is written (1 s).
	HeartbeatEvery time.Duration
	// Member names this agent in leases (default random).
	Member string
	// Agents is how many agents run the path (3): an agent takes at most
	// its share of the path's topics until it has run for a LeaseTTL, then
	// any topic nobody holds (a dead agent's).
	Agents int
	// LeaseTTL: a dead agent's topics are taken over after it (10 s).
	LeaseTTL time.Duration
	// PollEvery: how often leases are renewed and taken and the path's
	// state (paused, resumed) read (1 s).
	PollEvery time.Duration
	Now       func() time.Time
	Logger    *slog.Logger
}

// Validate checks the configuration and fills defaults.
func (c *AgentConfig) Validate() error {
	if err := smp.ValidRegion(c.Source); err != nil {
		return err
	}
	if err := smp.ValidRegion(c.Target); err != nil {
		return err
	}
	if c.Source == c.Target {
		return smp.Errorf(smp.EINVALID, "replication: a path joins two regions, not %s to itself", c.Source)
	}
	if c.SourceBus == nil || c.TargetBus == nil || c.TargetStore == nil || c.Guard == nil {
		return smp.Errorf(smp.EINVALID, "replication: both buses, the target store and a guard are required")
	}
	if c.HeartbeatEvery <= 0 {
		c.HeartbeatEvery = time.Second
	}
	if c.Member == "" {
		b := make([]byte, 6)
		rand.Read(b)
		c.Member = "agent-" + hex.EncodeToString(b)
	}
	if c.Agents <= 0 {
		c.Agents = 3
	}
	if c.LeaseTTL <= 0 {
		c.LeaseTTL = 10 * time.Second
	}
	if c.PollEvery <= 0 {
		c.PollEvery = time.Second
	}
	if c.PollEvery > c.LeaseTTL/3 {
		c.PollEvery = c.LeaseTTL / 3
	}
	if c.Now == nil {
		c.Now = time.Now
	}
	if c.Logger == nil {
		c.Logger = slog.New(slog.DiscardHandler)
	}
	return nil
}

// Agent replicates master data along one path, as MirrorMaker 2 does.
// The path's work is one unit per source topic (heartbeats and each
// masterdata.<table>); an agent runs the units whose lease it holds. A
// unit consumes the source topic (group MirrorGroup, started at the
// target's checkpoints), produces what the Guard passes to the target as
// <source>.<topic> and raises the checkpoint, and applies the mirrored
// records on the target (group ApplyGroup) once by (table, key, version).
// At least once on the wire; refused records are skipped (counted by the
// guard), never written. A record of a newer schema than the target's
// pauses the path instead (audited), which resumes once an agent that
// knows the schema runs; an operator's pause stops it the same way.
type Agent struct {
	startstop.Base
	cfg  AgentConfig
	log  *slog.Logger
	path string

	mu      sync.Mutex
	running map[string]*unit // by source topic
	// noRelease (tests): stop as a crash would, leaving the leases to expire.
	noRelease bool
}

type unit struct {
	cancel context.CancelFunc
	done   chan struct{}
}

// NewAgent returns an agent; EINVALID for a bad configuration.
func NewAgent(cfg AgentConfig) (*Agent, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	return &Agent{cfg: cfg, path: cfg.Path(), running: map[string]*unit{},
		log: cfg.Logger.With("service", "replication-agent", "path", cfg.Path(), "member", cfg.Member)}, nil
}

// Path names the path as the runbook's metrics do: <source>-to-<target>.
func (c AgentConfig) Path() string { return smp.ReplicationPathName(c.Source, c.Target) }

// MirrorGroup is the consumer group reading a source topic (one per
// topic, so that its offsets can be set from the checkpoints while the
// path's other topics run).
func (a *Agent) MirrorGroup(topic string) string { return "replication-agent." + a.path + "." + topic }

// ApplyGroup is the consumer group applying a mirrored topic on the target.
func (a *Agent) ApplyGroup(topic string) string { return "replication-apply." + a.path + "." + topic }

// SourceTopics are the topics mirrored: heartbeats and every master-data
// table's.
func SourceTopics() []string {
	topics := []string{HeartbeatTopic}
	for _, t := range smp.MasterTables {
		topics = append(topics, t.Topic())
	}
	return topics
}

// Units returns the source topics this agent runs now.
func (a *Agent) Units() []string {
	a.mu.Lock()
	defer a.mu.Unlock()
	var out []string
	for t := range a.running {
		out = append(out, t)
	}
	sort.Strings(out)
	return out
}

// Start declares the path in the target store (running, unless already
// there) and starts taking its units.
func (a *Agent) Start(ctx context.Context) error {
	run, ok := a.StartInit(ctx)
	if !ok {
		return nil
	}
	if err := a.cfg.TargetStore.DeclareReplicationPath(ctx, smp.ReplicationPath{Path: a.path, Source: a.cfg.Source, Target: a.cfg.Target,
		HeartbeatAt: a.cfg.Now()}); err != nil {
		a.Abort()
		return fmt.Errorf("replication: declare %s: %w", a.path, err)
	}
	a.Go(func() { a.supervise(run) })
	a.MarkStarted()
	return nil
}

func (a *Agent) lease(topic string) string { return "replication." + a.path + "." + topic }

// supervise renews and takes leases and starts and stops units, every
// PollEvery, until ctx ends; then it stops the units and (unless killed)
// releases their leases.
func (a *Agent) supervise(ctx context.Context) {
	started := a.cfg.Now()
	topics := SourceTopics()
	share := (len(topics) + a.cfg.Agents - 1) / a.cfg.Agents
	t := time.NewTicker(a.cfg.PollEvery)
	defer t.Stop()
	for {
		a.tick(ctx, topics, share, a.cfg.Now().Sub(started) >= a.cfg.LeaseTTL)
		select {
		case <-ctx.Done():
			a.stopUnits(a.Units())
			if !a.noRelease {
				uctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 5*time.Second)
				for _, topic := range topics {
					a.cfg.TargetStore.Unlock(uctx, a.lease(topic), a.cfg.Member)
				}
				cancel()
			}
			return
		case <-t.C:
		}
	}
}

func (a *Agent) tick(ctx context.Context, topics []string, share int, settled bool) {
	st := a.cfg.TargetStore
	p, err := st.FindReplicationPath(ctx, a.path)
	if err != nil {
		if ctx.Err() == nil {
			a.log.Warn("replication: read the path's state", "error", err.Error())
		}
		return
	}
	if p.Paused && p.SchemaNeeded > 0 && p.SchemaNeeded <= a.cfg.Guard.Schema() {
		// The target's migration ran (this agent knows the schema): resume.
		if err := a.setState(ctx, false, fmt.Sprintf("schema %d known here now", p.SchemaNeeded), 0); err == nil {
			p.Paused = false
		}
	}
	held := a.Units()
	// Renew what is held; lose (stop) what could not be renewed.
	var lost []string
	for _, topic := range held {
		ok, err := st.Renew(ctx, a.lease(topic), a.cfg.Member, a.cfg.LeaseTTL)
		if err == nil && !ok {
			// Lapsed (a slow tick): still ours if nobody took it meanwhile.
			ok, err = st.TryLock(ctx, a.lease(topic), a.cfg.Member, a.cfg.LeaseTTL)
		}
		if err != nil || !ok {
			lost = append(lost, topic)
		}
	}
	a.stopUnits(lost)
	if p.Paused {
		a.stopUnits(a.Units())
		return
	}
	n := len(a.Units())
	for _, topic := range topics {
		if a.isRunning(topic) {
			continue
		}
		if n >= share && !settled {
			break
		}
		ok, err := st.TryLock(ctx, a.lease(topic), a.cfg.Member, a.cfg.LeaseTTL)
		if err != nil || !ok {
			continue
		}
		a.startUnit(ctx, topic)
		n++
	}
}

func (a *Agent) isRunning(topic string) bool {
	a.mu.Lock()
	defer a.mu.Unlock()
	return a.running[topic] != nil
}

func (a *Agent) startUnit(ctx context.Context, topic string) {
	uctx, cancel := context.WithCancel(ctx)
	u := &unit{cancel: cancel, done: make(chan struct{})}
	a.mu.Lock()
	a.running[topic] = u
	a.mu.Unlock()
	a.log.Info("replication: running a topic", "topic", topic)
	go func() {
		defer close(u.done)
		a.runUnit(uctx, topic)
	}()
}

func (a *Agent) stopUnits(topics []string) {
	for _, topic := range topics {
		a.mu.Lock()
		u := a.running[topic]
		delete(a.running, topic)
		a.mu.Unlock()
		if u != nil {
			u.cancel()
			<-u.done
		}
	}
}

// runUnit runs one source topic until ctx ends: its checkpoints set the
// source group's offsets, then it mirrors, applies and (for heartbeats)
// writes heartbeats.
func (a *Agent) runUnit(ctx context.Context, topic string) {
	a.seek(ctx, topic)
	var wg sync.WaitGroup
	run := func(fn func()) {
		wg.Add(1)
		go func() { defer wg.Done(); fn() }()
	}
	run(func() { a.subscribe(ctx, a.cfg.SourceBus, a.MirrorGroup(topic), topic, a.mirror) })
	remote := RemoteTopic(a.cfg.Source, topic)
	run(func() { a.subscribe(ctx, a.cfg.TargetBus, a.ApplyGroup(remote), remote, a.apply) })
	if topic == HeartbeatTopic {
		run(func() { a.heartbeats(ctx) })
	}
	wg.Wait()
}

// seek starts the source group at the target's checkpoints: the target is
// the authority on what it has (a restored target rewinds; a source group
// lost or reset resumes where the target is).
func (a *Agent) seek(ctx context.Context, topic string) {
	admin, ok := a.cfg.SourceBus.(smp.BusAdmin)
	if !ok {
		return
	}
	cps, err := a.cfg.TargetStore.ReplicationCheckpoints(ctx, a.path)
	if err != nil {
		a.log.Warn("replication: read checkpoints", "error", err.Error())
		return
	}
	want := map[int32]int64{}
	for _, c := range cps {
		if c.Topic == topic {
			want[c.Partition] = c.Next
		}
	}
	if len(want) == 0 {
		return
	}
	group := a.MirrorGroup(topic)
	offs, err := admin.Offsets(ctx, group, []string{topic})
	if err != nil {
		a.log.Warn("replication: read the source group's offsets", "error", err.Error())
		return
	}
	for _, o := range offs {
		next, ok := want[o.Partition]
		if !ok || next == o.Committed {
			continue
		}
		if err := admin.ResetOffset(ctx, group, topic, o.Partition, next); err != nil {
			// A former holder still present (its session not yet over):
			// the group's own offset is used, duplicates are applied once.
			a.log.Warn("replication: start at the checkpoint", "topic", topic, "partition", o.Partition, "error", err.Error())
			continue
		}
		a.log.Info("replication: started at the checkpoint", "topic", topic, "partition", o.Partition, "offset", next, "group_offset", o.Committed)
	}
}

func (a *Agent) subscribe(ctx context.Context, b smp.EventBus, group, topic string, h smp.Handler) {
	if err := b.Subscribe(ctx, group, []string{topic}, h); err != nil && ctx.Err() == nil {
		a.log.Error("replication subscription ended", "group", group, "error", err.Error())
	}
}

// mirror carries one source message to the target: heartbeats as they
// are, master data only if the guard passes it; then raises the
// checkpoint. A record of a newer schema pauses the path and is not
// carried (nor committed): it comes again once the path resumes.
func (a *Agent) mirror(ctx context.Context, m smp.Message) error {
	if m.Topic != HeartbeatTopic {
		if _, err := a.cfg.Guard.Check(m.Topic, m.Value); err != nil {
			return a.refused(ctx, err)
		}
	}
	headers := map[string]string{"replication.source": a.cfg.Source,
		"replication.offset": fmt.Sprintf("%s/%d/%d", m.Topic, m.Partition, m.Offset)}
	for k, v := range m.Headers {
		headers[k] = v
	}
	if err := a.cfg.TargetBus.Publish(ctx, smp.Message{Topic: RemoteTopic(a.cfg.Source, m.Topic), Key: m.Key, Value: m.Value, Headers: headers}); err != nil {
		return err
	}
	return a.cfg.TargetStore.SaveReplicationCheckpoint(ctx, smp.ReplicationCheckpoint{Path: a.path, Topic: m.Topic, Partition: m.Partition, Next: m.Offset + 1})
}

// refused skips a refused record (nil), except one of a newer schema: the
// path is paused and the handler waits for the unit to be stopped.
func (a *Agent) refused(ctx context.Context, err error) error {
	r, ok := err.(*Refusal)
	if !ok || r.Reason != ReasonSchema {
		return nil
	}
	if perr := a.setState(ctx, true, "target behind: "+r.Detail, r.Schema); perr != nil {
		return perr
	}
	// Wait for the supervisor to stop the unit (the path is paused), or
	// for this region to learn the schema (then the record is delivered
	// again and passes).
	t := time.NewTicker(a.cfg.PollEvery)
	defer t.Stop()
	for a.cfg.Guard.Schema() < r.Schema {
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-t.C:
		}
	}
	return err
}

// setState pauses or resumes the path as the agent, audited.
func (a *Agent) setState(ctx context.Context, paused bool, reason string, schema int) error {
	err := a.cfg.TargetStore.InTx(ctx, func(tx smp.Tx) error {
		before, err := tx.SetReplicationPathState(ctx, a.path, paused, reason, schema, "system:replication-agent")
		if err != nil {
			return err
		}
		action := "replication.resume"
		if paused {
			action = "replication.pause"
		}
		return tx.AddAudit(ctx, smp.AuditEntry{At: a.cfg.Now(), Actor: "system:replication-agent", Action: action, Target: a.path,
			Before: stateString(before.Paused), After: stateString(paused), Reason: reason})
	})
	if err != nil {
		a.log.Error("replication: set the path's state", "paused", paused, "error", err.Error())
		return err
	}
	if paused {
		a.log.Error("replication: path paused", "reason", reason)
	} else {
		a.log.Info("replication: path resumed", "reason", reason)
	}
	return nil
}

func stateString(paused bool) string {
	if paused {
		return "paused"
	}
	return "running"
}

// apply writes a mirrored record on the target, checked again there; a
// mirrored heartbeat raises the path's heartbeat (its lag).
func (a *Agent) apply(ctx context.Context, m smp.Message) error {
	if m.Topic == RemoteTopic(a.cfg.Source, HeartbeatTopic) {
		var hb Heartbeat
		if err := json.Unmarshal(m.Value, &hb); err != nil || hb.At.IsZero() {
			return nil
		}
		return a.cfg.TargetStore.BeatReplicationPath(ctx, a.path, hb.At)
	}
	ev, err := a.cfg.Guard.Check(m.Topic, m.Value)
	if err != nil {
		return a.refused(ctx, err)
	}
	applied, err := Apply(ctx, a.cfg.TargetStore, ev)
	if err != nil {
		return err
	}
	a.cfg.Metrics.record(a.path, ev.Table, applied)
	return nil
}

func (a *Agent) heartbeats(ctx context.Context) {
	t := time.NewTicker(a.cfg.HeartbeatEvery)
	defer t.Stop()
	for {
		v, _ := json.Marshal(Heartbeat{Source: a.cfg.Source, At: a.cfg.Now().UTC()})
		if err := a.cfg.SourceBus.Publish(ctx, smp.Message{Topic: HeartbeatTopic, Key: a.cfg.Source, Value: v}); err != nil && ctx.Err() == nil {
			a.log.Warn("heartbeat not written", "error", err.Error())
		}
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
	}
}
