package replication

import (
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"time"

	"smp"
	"smp/internal/startstop"
)

// HeartbeatTopic is the topic the agent writes a heartbeat to in its
// source region every HeartbeatEvery; it is mirrored as
// <source-region>.heartbeats, so the target sees the path alive (and, to
// come, measures its lag) even while no master data changes.
const HeartbeatTopic = "heartbeats"

// Heartbeat is a heartbeat message's value.
type Heartbeat struct {
	Source string    `json:"source"`
	At     time.Time `json:"at"`
}

// TargetStore is what an agent needs of the target region's database.
type TargetStore interface {
	smp.Transactor
}

// AgentConfig configures one replication path, Source → Target.
type AgentConfig struct {
	// Source and Target are the regions' names.
	Source, Target string
	// SourceBus is the source region's bus (its masterdata.<table> topics,
	// where the agent also writes heartbeats); TargetBus the target's,
	// where the records appear as <source>.masterdata.<table>.
	SourceBus, TargetBus smp.EventBus
	// TargetStore receives the records (Apply).
	TargetStore TargetStore
	// Guard checks every record before it is carried and again before it
	// is applied.
	Guard *Guard
	// HeartbeatEvery is how often a heartbeat is written (1 s).
	HeartbeatEvery time.Duration
	Now            func() time.Time
	Logger         *slog.Logger
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
	if c.Now == nil {
		c.Now = time.Now
	}
	if c.Logger == nil {
		c.Logger = slog.New(slog.DiscardHandler)
	}
	return nil
}

// Agent replicates master data along one path, as MirrorMaker 2 does:
// it consumes the source's masterdata.<table> topics and heartbeats
// (consumer group MirrorGroup, so a restart resumes where it stopped),
// produces them to the target as <source>.<topic> after the Guard, and
// applies the mirrored records on the target (group ApplyGroup) once by
// (table, key, version). At least once on the wire; refused records are
// skipped (counted by the guard), never retried or written.
type Agent struct {
	startstop.Base
	cfg AgentConfig
	log *slog.Logger
}

// NewAgent returns an agent; EINVALID for a bad configuration.
func NewAgent(cfg AgentConfig) (*Agent, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	return &Agent{cfg: cfg, log: cfg.Logger.With("service", "replication-agent", "path", cfg.Path())}, nil
}

// Path names the path as the runbook's metrics do: <source>-to-<target>.
func (c AgentConfig) Path() string { return c.Source + "-to-" + c.Target }

// MirrorGroup is the consumer group reading the source's topics.
func (a *Agent) MirrorGroup() string { return "replication-agent." + a.cfg.Path() }

// ApplyGroup is the consumer group applying mirrored records on the target.
func (a *Agent) ApplyGroup() string { return "replication-apply." + a.cfg.Path() }

// SourceTopics are the topics mirrored: every master-data table's and
// heartbeats.
func SourceTopics() []string {
	topics := []string{HeartbeatTopic}
	for _, t := range smp.MasterTables {
		topics = append(topics, t.Topic())
	}
	return topics
}

// Start starts mirroring, applying and heartbeats.
func (a *Agent) Start(ctx context.Context) error {
	run, ok := a.StartInit(ctx)
	if !ok {
		return nil
	}
	var remote []string
	for _, t := range smp.MasterTables {
		remote = append(remote, RemoteTopic(a.cfg.Source, t.Topic()))
	}
	a.Go(func() { a.subscribe(run, a.cfg.SourceBus, a.MirrorGroup(), SourceTopics(), a.mirror) })
	a.Go(func() { a.subscribe(run, a.cfg.TargetBus, a.ApplyGroup(), remote, a.apply) })
	a.Go(func() { a.heartbeats(run) })
	a.MarkStarted()
	return nil
}

func (a *Agent) subscribe(ctx context.Context, b smp.EventBus, group string, topics []string, h smp.Handler) {
	if err := b.Subscribe(ctx, group, topics, h); err != nil && ctx.Err() == nil {
		a.log.Error("replication subscription ended", "group", group, "error", err.Error())
	}
}

// mirror carries one source message to the target: heartbeats as they
// are, master data only if the guard passes it.
func (a *Agent) mirror(ctx context.Context, m smp.Message) error {
	if m.Topic != HeartbeatTopic {
		if _, err := a.cfg.Guard.Check(m.Topic, m.Value); err != nil {
			return nil // refused: counted and logged by the guard, skipped
		}
	}
	headers := map[string]string{"replication.source": a.cfg.Source,
		"replication.offset": fmt.Sprintf("%s/%d/%d", m.Topic, m.Partition, m.Offset)}
	for k, v := range m.Headers {
		headers[k] = v
	}
	return a.cfg.TargetBus.Publish(ctx, smp.Message{Topic: RemoteTopic(a.cfg.Source, m.Topic), Key: m.Key, Value: m.Value, Headers: headers})
}

// apply writes a mirrored record on the target, checked again there.
func (a *Agent) apply(ctx context.Context, m smp.Message) error {
	ev, err := a.cfg.Guard.Check(m.Topic, m.Value)
	if err != nil {
		return nil
	}
	_, err = Apply(ctx, a.cfg.TargetStore, ev)
	return err
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
