package app

import (
	"context"
	"errors"
	"fmt"
	"time"

	"smp"
	"smp/internal/startstop"
	"smp/kafkabus"
	"smp/replication"
	"smp/sqlbus"
)

// initReplication runs the replication agent (service replication-agent,
// runbook INC-012): one path from each --replicate-from region to this
// one, its source bus opened here, the target being this region's bus and
// store; its lag on /metrics.
func (a *App) initReplication(ctx context.Context) (startstop.Service, error) {
	srcs, err := a.Cfg.ReplicationSources()
	if err != nil {
		return nil, err
	}
	guard, err := replication.NewGuard(a.Registry, a.Log)
	if err != nil {
		return nil, err
	}
	metrics, err := replication.NewMetrics(a.Registry)
	if err != nil {
		return nil, err
	}
	if err := a.Registry.Register(replication.NewLagCollector(a.Cfg.Now, a.Store)); err != nil {
		return nil, err
	}
	r := &replicas{}
	for _, src := range srcs {
		var b smp.EventBus
		if len(src.Brokers) > 0 {
			b, err = kafkabus.Open(kafkabus.Config{Brokers: src.Brokers, Partitions: int32(a.Cfg.Partitions), ReplicationFactor: int16(a.Cfg.KafkaReplication),
				ClientID: "smp-replication-agent-" + a.Cfg.Region, Logger: a.Log})
		} else {
			// Another process appends to that file: poll it often.
			b, err = sqlbus.Open(sqlbus.Config{Path: src.LogPath, Partitions: a.Cfg.Partitions, PollInterval: 100 * time.Millisecond, Now: a.Cfg.Now, Logger: a.Log})
		}
		if err != nil {
			r.close()
			return nil, fmt.Errorf("replication source %s: %w", src.Region, err)
		}
		r.buses = append(r.buses, b)
		ag, err := replication.NewAgent(replication.AgentConfig{Source: src.Region, Target: a.Cfg.Region, SourceBus: b, TargetBus: a.Bus,
			TargetStore: a.Store, Guard: guard, Metrics: metrics, Agents: a.Cfg.ReplicationAgents, LeaseTTL: a.Cfg.ReplicationLeaseTTL, Groups: a.Cfg.ReplicationGroups(),
			Now: a.Cfg.Now, Logger: a.Log})
		if err != nil {
			r.close()
			return nil, err
		}
		r.agents = append(r.agents, ag)
	}
	a.Replication = r.agents
	return r, nil
}

// replicas are a process's agents and the source buses they read.
type replicas struct {
	agents []*replication.Agent
	buses  []smp.EventBus
}

func (r *replicas) Start(ctx context.Context) error {
	for i, ag := range r.agents {
		if err := ag.Start(ctx); err != nil {
			for _, started := range r.agents[:i] {
				started.Stop(context.Background())
			}
			return err
		}
	}
	return nil
}

func (r *replicas) Stop(ctx context.Context) error {
	var errs []error
	for _, ag := range r.agents {
		errs = append(errs, ag.Stop(ctx))
	}
	return errors.Join(append(errs, r.close())...)
}

func (r *replicas) close() error {
	var errs []error
	for _, b := range r.buses {
		errs = append(errs, b.Close())
	}
	r.buses = nil
	return errors.Join(errs...)
}
