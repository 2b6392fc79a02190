package replication

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"log/slog"
	"sort"
	"strconv"
	"strings"
	"sync"
	"time"

	"smp"
	"smp/internal/startstop"
)

// HeartbeatTopic is the topic the agent writes a heartbeat to in its
// source region every HeartbeatEvery; it is mirrored as
// <source-region>.heartbeats, and the target measures the path's lag from
// the newest one it received, so the lag is right while nothing changes.
// Mirrored heartbeats are mirrored onward (asia → china → us: us receives
// china.asia.heartbeats and measures the lag of asia-to-us via china),
// except into a region already named in the topic: no loops.
const HeartbeatTopic = "heartbeats"

// IsHeartbeatTopic reports whether topic carries heartbeats: heartbeats,
// or a mirrored one, <region>.[<region>.]heartbeats.
func IsHeartbeatTopic(topic string) bool {
	return topic == HeartbeatTopic || strings.HasSuffix(topic, "."+HeartbeatTopic)
}

// HeartbeatChain returns the regions a mirrored heartbeats topic went
// through, as its name tells, from the newest hop to its origin
// (china.asia.heartbeats: china, asia); nil for the local heartbeats.
func HeartbeatChain(topic string) []string {
	prefix, ok := strings.CutSuffix(topic, "."+HeartbeatTopic)
	if !ok || prefix == "" {
		return nil
	}
	return strings.Split(prefix, ".")
}

// Mirrors reports whether a path into target mirrors the source topic:
// the heartbeats, each local masterdata.<table>, and the heartbeats
// mirrored into the source from elsewhere unless target is already named
// in them (MirrorMaker 2's cycle rule: a region never receives its own
// heartbeats back). Remote master-data topics are never mirrored again.
func Mirrors(topic, target string) bool {
	if _, ok := SourceTable(topic); ok || topic == HeartbeatTopic {
		return true
	}
	chain := HeartbeatChain(topic)
	if len(chain) == 0 {
		return false
	}
	for _, r := range chain {
		if r == target || smp.ValidRegion(r) != nil {
			return false
		}
	}
	return true
}

// TopicLister lists a bus's topics (kafkabus and sqlbus do): a source bus
// that is one has its mirrored heartbeats topics found and mirrored
// onward.
type TopicLister interface {
	Topics(ctx context.Context) ([]string, error)
}

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
	// PollEvery: how often leases are renewed and taken, the source's
	// mirrored heartbeats topics looked for and the path's state (paused,
	// resumed) read (1 s).
	PollEvery time.Duration
	// Groups are the source's consumer groups of master-data topics whose
	// offsets are checkpointed on the target with their translation
	// (MirrorMaker 2's checkpoints), every CheckpointEvery (5 s), by the
	// agent running the heartbeats: a consumer failing over to the target
	// region starts where Translate says.
	Groups          []string
	CheckpointEvery time.Duration
	Now             func() time.Time
	Logger          *slog.Logger
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
	if c.CheckpointEvery <= 0 {
		c.CheckpointEvery = 5 * time.Second
	}
	for _, g := range c.Groups {
		if g == "" || len(g) > smp.MaxGroupName {
			return smp.Errorf(smp.EINVALID, "replication: consumer group %q to checkpoint", g)
		}
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
	// applied (the benchmark): called after each record is applied (or
	// found there already); set before Start.
	applied func(ev smp.MasterDataEvent, written bool)
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

// SourceTopics are the topics every path mirrors: heartbeats and every
// master-data table's (and, found on the source, mirrored heartbeats:
// Mirrors).
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
	t := time.NewTicker(a.cfg.PollEvery)
	defer t.Stop()
	for {
		topics = a.discover(ctx, topics)
		share := (len(topics) + a.cfg.Agents - 1) / a.cfg.Agents
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

// discover adds to topics the mirrored heartbeats topics the source has
// that this path mirrors onward (Mirrors), in name order.
func (a *Agent) discover(ctx context.Context, topics []string) []string {
	l, ok := a.cfg.SourceBus.(TopicLister)
	if !ok {
		return topics
	}
	all, err := l.Topics(ctx)
	if err != nil {
		if ctx.Err() == nil {
			a.log.Warn("replication: list the source's topics", "error", err.Error())
		}
		return topics
	}
	known := map[string]bool{}
	for _, t := range topics {
		known[t] = true
	}
	var found []string
	for _, t := range all {
		if !known[t] && HeartbeatChain(t) != nil && Mirrors(t, a.cfg.Target) {
			found = append(found, t)
		}
	}
	if len(found) == 0 {
		return topics
	}
	sort.Strings(found)
	a.log.Info("replication: mirroring heartbeats onward", "topics", strings.Join(found, ","))
	return append(append([]string(nil), topics...), found...)
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
		if len(a.cfg.Groups) > 0 {
			run(func() { a.checkpoints(ctx) })
		}
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
	if !IsHeartbeatTopic(m.Topic) {
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
	// Carried: its checkpoint is raised even when the agent is stopping
	// meanwhile (else the next agent would carry it again).
	cctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 5*time.Second)
	defer cancel()
	return a.cfg.TargetStore.SaveReplicationCheckpoint(cctx, smp.ReplicationCheckpoint{Path: a.path, Topic: m.Topic, Partition: m.Partition, Next: m.Offset + 1})
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

// apply writes a mirrored record on the target, checked again there, and
// keeps where it landed (its offset sync); a mirrored heartbeat raises the
// path's heartbeat (its lag), or, mirrored onward, the heartbeat of its
// origin's pair with this region (a hop).
func (a *Agent) apply(ctx context.Context, m smp.Message) error {
	if IsHeartbeatTopic(m.Topic) {
		return a.beat(ctx, m)
	}
	if topic, part, off, ok := sourceOffset(m.Headers["replication.offset"]); ok {
		if err := a.cfg.TargetStore.SaveReplicationOffsetSync(ctx, smp.ReplicationOffsetSync{Path: a.path, Topic: topic, Partition: part,
			Upstream: off, DownPartition: m.Partition, Downstream: m.Offset}); err != nil {
			return err
		}
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
	if a.applied != nil {
		a.applied(ev, applied)
	}
	return nil
}

// beat raises the heartbeat a mirrored heartbeat carries: the path's for
// <source>.heartbeats, else its origin's hop (<source>.<...>.<origin>.heartbeats:
// via the regions in between, in the order it went through them).
func (a *Agent) beat(ctx context.Context, m smp.Message) error {
	var hb Heartbeat
	if err := json.Unmarshal(m.Value, &hb); err != nil || hb.At.IsZero() {
		return nil
	}
	chain := HeartbeatChain(m.Topic)
	if len(chain) == 1 {
		return a.cfg.TargetStore.BeatReplicationPath(ctx, a.path, hb.At)
	}
	if len(chain) == 0 || chain[0] != a.cfg.Source {
		return nil
	}
	origin := chain[len(chain)-1]
	if origin == a.cfg.Target {
		return nil // never mirrored here (Mirrors); written by hand
	}
	via := make([]string, 0, len(chain)-1)
	for i := len(chain) - 2; i >= 0; i-- {
		via = append(via, chain[i])
	}
	err := a.cfg.TargetStore.BeatReplicationHop(ctx, smp.ReplicationHop{Path: smp.ReplicationPathName(origin, a.cfg.Target), Source: origin,
		Target: a.cfg.Target, Via: strings.Join(via, ","), HeartbeatAt: hb.At})
	if smp.ErrorCode(err) == smp.EINVALID {
		a.log.Warn("replication: a heartbeat that names no hop", "topic", m.Topic, "error", err.Error())
		return nil
	}
	return err
}

// sourceOffset parses the replication.offset header: <topic>/<partition>/<offset>.
func sourceOffset(h string) (topic string, part int32, off int64, ok bool) {
	i := strings.LastIndexByte(h, '/')
	if i < 0 {
		return "", 0, 0, false
	}
	j := strings.LastIndexByte(h[:i], '/')
	if j <= 0 {
		return "", 0, 0, false
	}
	p, err1 := strconv.ParseInt(h[j+1:i], 10, 32)
	o, err2 := strconv.ParseInt(h[i+1:], 10, 64)
	if err1 != nil || err2 != nil || p < 0 || o < 0 {
		return "", 0, 0, false
	}
	return h[:j], int32(p), o, true
}

// checkpoints keeps, every CheckpointEvery, the offsets of the source's
// Groups on every master-data topic with their translation on the target
// (MirrorMaker 2's checkpoints).
func (a *Agent) checkpoints(ctx context.Context) {
	admin, ok := a.cfg.SourceBus.(smp.BusAdmin)
	if !ok {
		a.log.Warn("replication: the source bus cannot tell its groups' offsets: no checkpoints of consumer groups")
		return
	}
	t := time.NewTicker(a.cfg.CheckpointEvery)
	defer t.Stop()
	for {
		for _, g := range a.cfg.Groups {
			if err := a.checkpointGroup(ctx, admin, g); err != nil && ctx.Err() == nil {
				a.log.Warn("replication: checkpoint a consumer group", "group", g, "error", err.Error())
			}
		}
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
	}
}

func (a *Agent) checkpointGroup(ctx context.Context, admin smp.BusAdmin, group string) error {
	var topics []string
	for _, t := range smp.MasterTables {
		topics = append(topics, t.Topic())
	}
	offs, err := admin.Offsets(ctx, group, topics)
	if err != nil {
		return err
	}
	for _, o := range offs {
		if o.Committed < 0 {
			continue
		}
		part, down, ok, err := a.cfg.TargetStore.TranslateReplicationOffset(ctx, a.path, o.Topic, o.Partition, o.Committed)
		if err != nil {
			return err
		}
		if !ok {
			continue
		}
		if err := a.cfg.TargetStore.SaveReplicationGroupCheckpoint(ctx, smp.ReplicationGroupCheckpoint{Path: a.path, Group: group, Topic: o.Topic,
			Partition: o.Partition, Upstream: o.Committed, DownTopic: RemoteTopic(a.cfg.Source, o.Topic), DownPartition: part, Downstream: down}); err != nil {
			return err
		}
	}
	return nil
}

// Translate returns where a source consumer group goes on in the target
// region, per source partition of the master-data topics: the newest
// checkpoints of group on the path source → target kept in the target's
// store (a consumer failing over to the target starts each
// DownTopic/DownPartition at Downstream and sees the next records it had
// not read).
func Translate(ctx context.Context, target smp.ReplicationStore, source, targetRegion, group string) ([]smp.ReplicationGroupCheckpoint, error) {
	if group == "" {
		return nil, smp.Errorf(smp.EINVALID, "replication: which consumer group to translate")
	}
	return target.ReplicationGroupCheckpoints(ctx, smp.ReplicationPathName(source, targetRegion), group)
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
