// Package cdc is change data capture (issue 19, runbook INC-008): the
// source connector smp-mysql-connector as a connect.Plugin. This file is
// the embedded default's: SQLite has no binlog, so it reads the change
// table the triggers fill (smp.ChangeLogStore) and publishes Debezium's
// envelope for each change on smp.cdc.<database>.<table>, keyed by the
// row's primary key, with a tombstone after each delete. Its offset,
// {"seq": N} in the partition {"server": <topic.prefix>}, is committed
// after what it covers was published (at least once: consumers
// deduplicate by source position). The MySQL/MariaDB binlog reader, the
// same connector on a MySQL store, is binlog.go.
package cdc

import (
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"strconv"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"smp"
	"smp/connect"
)

// The names the runbook and Debezium use.
const (
	ConnectorName = "smp-mysql-connector"
	// Class is Debezium's MySQL connector class, which this plugin
	// stands for.
	Class = "io.debezium.connector.mysql.MySqlConnector"
	// DefaultTopicPrefix and DefaultDatabase make the runbook's topics
	// smp.cdc.smp_order.<table>.
	DefaultTopicPrefix = "smp.cdc"
	DefaultDatabase    = "smp_order"
	// Version is source.version in the envelopes.
	Version = "smp-1"
)

// Snapshot modes (snapshot.mode).
const (
	SnapshotInitial    = "initial"     // snapshot when there is no offset, then stream
	SnapshotNever      = "never"       // stream from the start of what is kept
	SnapshotWhenNeeded = "when_needed" // also snapshot again when the position is gone
)

// Publisher is where the envelopes go (the event bus).
type Publisher interface {
	Publish(ctx context.Context, msgs ...smp.Message) error
}

// Config configures the plugin.
type Config struct {
	Store     smp.ChangeLogStore
	Publisher Publisher
	// Wake, when set, signals that something committed (the store's
	// commit signal); Poll is the longest wait between reads otherwise.
	Wake <-chan struct{}
	Poll time.Duration
	// Batch is how many changes one read takes (500).
	Batch  int
	Now    func() time.Time
	Logger *slog.Logger
	// Registerer, when set, gets smp_cdc_changes_total{connector,table,op}
	// (changes published; rate() is changes per second) and
	// smp_cdc_source_lag_seconds{connector} (how long before its
	// publication the last published change was written; 0 when caught up).
	Registerer prometheus.Registerer
}

// Embedded is the plugin of the embedded change table.
type Embedded struct {
	cfg     Config
	changes *prometheus.CounterVec
	lag     *prometheus.GaugeVec
}

var _ connect.Plugin = (*Embedded)(nil)

// NewEmbedded returns the plugin.
func NewEmbedded(cfg Config) (*Embedded, error) {
	if cfg.Store == nil || cfg.Publisher == nil {
		return nil, fmt.Errorf("cdc: Store and Publisher are required")
	}
	if cfg.Poll <= 0 {
		cfg.Poll = 250 * time.Millisecond
	}
	if cfg.Batch <= 0 {
		cfg.Batch = 500
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	changes, lag := changesMetric(), lagMetric()
	if err := register(cfg.Registerer, changes, lag); err != nil {
		return nil, err
	}
	return &Embedded{cfg: cfg, changes: changes, lag: lag}, nil
}

// The metrics both sources export.
func changesMetric() *prometheus.CounterVec {
	return prometheus.NewCounterVec(prometheus.CounterOpts{Name: "smp_cdc_changes_total",
		Help: "Changes the CDC source published, by table and op (c, u, d, r, t)."}, []string{"connector", "table", "op"})
}

func lagMetric() *prometheus.GaugeVec {
	return prometheus.NewGaugeVec(prometheus.GaugeOpts{Name: "smp_cdc_source_lag_seconds",
		Help: "How long before its publication the last published change was written (0 when caught up)."}, []string{"connector"})
}

func register(reg prometheus.Registerer, cs ...prometheus.Collector) error {
	if reg == nil {
		return nil
	}
	for _, c := range cs {
		if err := reg.Register(c); err != nil {
			return fmt.Errorf("cdc: metrics: %w", err)
		}
	}
	return nil
}

// DefaultConfig is the connector's configuration on the embedded default.
func DefaultConfig() map[string]string {
	return map[string]string{"connector.class": Class, "tasks.max": "1", "topic.prefix": DefaultTopicPrefix,
		"database.include.list": DefaultDatabase, "snapshot.mode": SnapshotInitial}
}

// Type is "source".
func (e *Embedded) Type() string { return "source" }

// Validate checks snapshot.mode, tasks.max and the database list.
func (e *Embedded) Validate(cfg map[string]string) error {
	switch cfg["snapshot.mode"] {
	case "", SnapshotInitial, SnapshotNever, SnapshotWhenNeeded:
	default:
		return smp.Errorf(smp.EINVALID, "snapshot.mode %q: must be initial, when_needed or never", cfg["snapshot.mode"])
	}
	if n := cfg["tasks.max"]; n != "" {
		if v, err := strconv.Atoi(n); err != nil || v < 1 {
			return smp.Errorf(smp.EINVALID, "tasks.max %q: must be a positive number (the connector runs one task)", n)
		}
	}
	return nil
}

// Tasks makes the connector's one task (a change log is read in order by
// one reader, as Debezium's MySQL connector does).
func (e *Embedded) Tasks(name string, cfg map[string]string) ([]connect.Task, error) {
	t := &task{e: e, name: name, prefix: or(cfg["topic.prefix"], DefaultTopicPrefix), db: or(cfg["database.include.list"], DefaultDatabase),
		mode: or(cfg["snapshot.mode"], SnapshotInitial), log: e.cfg.Logger.With("connector", name)}
	return []connect.Task{t}, nil
}

func or(v, d string) string {
	if v == "" {
		return d
	}
	return v
}

type task struct {
	e                *Embedded
	name, prefix, db string
	mode             string
	log              *slog.Logger
}

// Topic is the topic of a table's changes.
func Topic(prefix, db, table string) string { return prefix + "." + db + "." + table }

// Envelope is Debezium's change event value (JSON converter, no schema).
type Envelope struct {
	Before json.RawMessage `json:"before"`
	After  json.RawMessage `json:"after"`
	Source Source          `json:"source"`
	Op     string          `json:"op"`
	TsMs   int64           `json:"ts_ms"`
}

// Source is the envelope's source block: where the change was read. On
// the embedded change table file is "cdc_changes" and pos its seq.
type Source struct {
	Version   string  `json:"version"`
	Connector string  `json:"connector"`
	Name      string  `json:"name"`
	TsMs      int64   `json:"ts_ms"`
	Snapshot  string  `json:"snapshot"`
	DB        string  `json:"db"`
	Table     string  `json:"table"`
	ServerID  int64   `json:"server_id"`
	GTID      *string `json:"gtid"`
	File      string  `json:"file"`
	Pos       int64   `json:"pos"`
	Row       int     `json:"row"`
}

func (t *task) partition() map[string]any { return map[string]any{"server": t.prefix} }

// position returns the stored seq (ok false: none stored).
func (t *task) position(ctx context.Context, offs connect.Offsets) (seq int64, ok bool, err error) {
	stored, err := offs.Read(ctx)
	if err != nil {
		return 0, false, err
	}
	for _, o := range stored {
		if o.Partition["server"] != t.prefix {
			continue
		}
		switch v := o.Offset["seq"].(type) {
		case float64:
			return int64(v), true, nil
		case json.Number:
			n, err := v.Int64()
			return n, err == nil, err
		}
		return 0, false, fmt.Errorf("stored offset %v has no seq", o.Offset)
	}
	return 0, false, nil
}

func (t *task) commit(ctx context.Context, offs connect.Offsets, seq int64) error {
	return offs.Commit(ctx, []connect.Offset{{Partition: t.partition(), Offset: map[string]any{"seq": seq}}})
}

// Run snapshots if it must, then streams the change table until ctx ends.
func (t *task) Run(ctx context.Context, offs connect.Offsets) error {
	seq, ok, err := t.position(ctx, offs)
	if err != nil {
		return err
	}
	if ok {
		purged, _, err := t.e.cfg.Store.ChangeLogBounds(ctx)
		if err != nil {
			return err
		}
		if seq < purged {
			if t.mode != SnapshotWhenNeeded {
				return &PositionLostError{Position: fmt.Sprintf("cdc_changes:%d", seq+1)}
			}
			t.log.Warn("the stored position is no longer available: taking a new snapshot (snapshot.mode when_needed)", "seq", seq, "purged_through", purged)
			ok = false
		}
	}
	if !ok && t.mode != SnapshotNever {
		if seq, err = t.snapshot(ctx); err != nil {
			return err
		}
		if err := t.commit(ctx, offs, seq); err != nil {
			return err
		}
	}
	timer := time.NewTimer(t.e.cfg.Poll)
	defer timer.Stop()
	for {
		changes, err := t.e.cfg.Store.ReadChanges(ctx, seq, t.e.cfg.Batch)
		if err != nil {
			if ctx.Err() != nil {
				return nil
			}
			return err
		}
		if len(changes) > 0 {
			if err := t.publish(ctx, changes); err != nil {
				if ctx.Err() != nil {
					return nil
				}
				return err
			}
			seq = changes[len(changes)-1].Seq
			if err := t.commit(ctx, offs, seq); err != nil {
				if ctx.Err() != nil {
					return nil
				}
				return err
			}
			if len(changes) == t.e.cfg.Batch {
				continue
			}
		} else {
			t.e.lag.WithLabelValues(t.name).Set(0)
		}
		timer.Reset(t.e.cfg.Poll)
		select {
		case <-ctx.Done():
			return nil
		case <-t.e.cfg.Wake:
		case <-timer.C:
		}
	}
}

func (t *task) source(table string, seq, tsMs int64, snapshot string) Source {
	return Source{Version: Version, Connector: "mysql", Name: t.prefix, TsMs: tsMs, Snapshot: snapshot, DB: t.db, Table: table, File: "cdc_changes", Pos: seq}
}

func (t *task) publish(ctx context.Context, changes []smp.Change) error {
	now := t.e.cfg.Now().UnixMilli()
	msgs := make([]smp.Message, 0, len(changes))
	for _, c := range changes {
		env := Envelope{Before: nullable(c.Before), After: nullable(c.After), Source: t.source(c.Table, c.Seq, c.TsMs, "false"), Op: c.Op, TsMs: now}
		v, err := json.Marshal(env)
		if err != nil {
			return err
		}
		topic := Topic(t.prefix, t.db, c.Table)
		msgs = append(msgs, smp.Message{Topic: topic, Key: string(c.Key), Value: v})
		if c.Op == "d" {
			msgs = append(msgs, smp.Message{Topic: topic, Key: string(c.Key)}) // the tombstone
		}
	}
	if err := t.e.cfg.Publisher.Publish(ctx, msgs...); err != nil {
		return err
	}
	for _, c := range changes {
		t.e.changes.WithLabelValues(t.name, c.Table, c.Op).Inc()
	}
	last := changes[len(changes)-1]
	t.e.lag.WithLabelValues(t.name).Set(max(0, float64(now-last.TsMs)/1000))
	return nil
}

// snapshot publishes every captured row as an "r" read (source.snapshot
// "true", "last" on the final one) and returns the seq it covers.
func (t *task) snapshot(ctx context.Context) (int64, error) {
	t.log.Info("snapshot started")
	now := t.e.cfg.Now().UnixMilli()
	var msgs []smp.Message
	var last *Envelope
	flush := func() error {
		if len(msgs) == 0 {
			return nil
		}
		err := t.e.cfg.Publisher.Publish(ctx, msgs...)
		msgs = msgs[:0]
		return err
	}
	var pending *smp.Message
	seq, err := t.e.cfg.Store.SnapshotTables(ctx, func(table string, key, row []byte) error {
		if pending != nil {
			msgs = append(msgs, *pending)
			if len(msgs) >= t.e.cfg.Batch {
				if err := flush(); err != nil {
					return err
				}
			}
		}
		env := Envelope{After: json.RawMessage(row), Source: t.source(table, 0, now, "true"), Op: "r", TsMs: now}
		last = &env
		v, err := json.Marshal(env)
		if err != nil {
			return err
		}
		pending = &smp.Message{Topic: Topic(t.prefix, t.db, table), Key: string(key), Value: v}
		t.e.changes.WithLabelValues(t.name, table, "r").Inc()
		return nil
	})
	if err != nil {
		return 0, err
	}
	if pending != nil {
		last.Source.Snapshot, last.Source.Pos = "last", seq
		v, err := json.Marshal(last)
		if err != nil {
			return 0, err
		}
		pending.Value = v
		msgs = append(msgs, *pending)
	}
	if err := flush(); err != nil {
		return 0, err
	}
	t.log.Info("snapshot completed", "seq", seq)
	return seq, nil
}

// PositionLostError is the task's failure when its stored position was
// removed (pruned change rows; a purged binlog), with Debezium's message,
// the one operators search for.
type PositionLostError struct{ Position string }

func (e *PositionLostError) Error() string {
	return "The connector is trying to read binlog starting at " + e.Position +
		", but this is no longer available on the server. Reconfigure the connector to use a snapshot when needed."
}

func nullable(b []byte) json.RawMessage {
	if len(b) == 0 {
		return json.RawMessage("null")
	}
	return json.RawMessage(b)
}
