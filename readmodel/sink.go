// Package readmodel is the search read model (issue 20, runbook INC-009):
// the sink connector elasticsearch-sink (a connect.Plugin) that keeps the
// captured tables' documents in a smp.SearchIndex from the change events
// of smp.cdc.smp_order.*, its lag (es_sink_lag_seconds), and the
// operations on the index: health, reindex under a new mapping, full
// re-sync, the daily drift check and its repair, and the reads the portal
// makes.
package readmodel

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"smp"
	"smp/bus"
	"smp/cdc"
	"smp/connect"
)

// The names the runbook and Kafka Connect use.
const (
	ConnectorName = "elasticsearch-sink"
	// ConsumerGroup is Connect's group of a sink: connect-<connector>.
	ConsumerGroup = "connect-elasticsearch-sink"
	// Class is Confluent's Elasticsearch sink connector class.
	Class = "io.confluent.connect.elasticsearch.ElasticsearchSinkConnector"
	// DefaultDLQ is the sink's dead-letter topic
	// (errors.deadletterqueue.topic.name).
	DefaultDLQ = ConnectorName + smp.DLQSuffix
)

// Topics are the change topics the sink reads by default.
func Topics() []string {
	out := make([]string, len(Tables))
	for i, t := range Tables {
		out[i] = cdc.Topic(cdc.DefaultTopicPrefix, cdc.DefaultDatabase, t)
	}
	return out
}

// DefaultConfig is the sink's configuration: Confluent's keys.
func DefaultConfig() map[string]string {
	return map[string]string{
		"connector.class":                   Class,
		"tasks.max":                         "1",
		"topics":                            strings.Join(Topics(), ","),
		"key.ignore":                        "false",
		"behavior.on.null.values":           "ignore", // tombstones: the "d" event before it deleted
		"batch.size":                        "500",
		"linger.ms":                         "0",
		"max.buffered.records":              "5000",
		"errors.tolerance":                  "all",
		"errors.deadletterqueue.topic.name": DefaultDLQ,
		"errors.deadletterqueue.context.headers.enable": "true",
	}
}

// Bus is what the sink needs of the event bus: reading the change topics
// as its consumer group, their lag, and publishing dead letters.
type Bus interface {
	Publish(ctx context.Context, msgs ...smp.Message) error
	Subscribe(ctx context.Context, group string, topics []string, h smp.Handler) error
	Lag(ctx context.Context, group string, topics []string) (map[string][]int64, error)
}

// SinkConfig configures the sink plugin.
type SinkConfig struct {
	Index  smp.SearchIndex
	Bus    Bus
	Now    func() time.Time
	Logger *slog.Logger
	// Registerer, when set, gets es_sink_lag_seconds and
	// smp_es_sink_records_total{outcome}.
	Registerer prometheus.Registerer
}

// Sink is the elasticsearch-sink plugin.
type Sink struct {
	cfg     SinkConfig
	records *prometheus.CounterVec
	started time.Time

	mu         sync.Mutex
	newestTsMs int64     // source ts_ms of the newest change indexed
	caughtUp   time.Time // when the group was last seen with nothing pending
	topics     []string  // of the running configuration
	dlq        string
}

var _ connect.Plugin = (*Sink)(nil)

// NewSink returns the plugin.
func NewSink(cfg SinkConfig) (*Sink, error) {
	if cfg.Index == nil || cfg.Bus == nil {
		return nil, errors.New("readmodel: SinkConfig.Index and Bus are required")
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	s := &Sink{cfg: cfg, started: cfg.Now(), topics: Topics(), dlq: DefaultDLQ,
		records: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "smp_es_sink_records_total",
			Help: "Change records the elasticsearch-sink handled: indexed, deleted, stale (an older version: newer state kept), dead_lettered, tombstone."}, []string{"outcome"})}
	s.caughtUp = s.started
	if cfg.Registerer != nil {
		for _, c := range []prometheus.Collector{s.records, lagCollector{s}} {
			if err := cfg.Registerer.Register(c); err != nil {
				return nil, fmt.Errorf("readmodel: metrics: %w", err)
			}
		}
	}
	return s, nil
}

// Type is "sink".
func (s *Sink) Type() string { return "sink" }

func intConf(cfg map[string]string, key string, def, min int) (int, error) {
	v := cfg[key]
	if v == "" {
		return def, nil
	}
	n, err := strconv.Atoi(v)
	if err != nil || n < min {
		return 0, smp.Errorf(smp.EINVALID, "%s %q: must be a number ≥ %d", key, v, min)
	}
	return n, nil
}

type sinkConf struct {
	topics     []string
	batch      int
	linger     time.Duration
	buffered   int
	tasks      int
	tolerance  string
	dlq        string
	ctxHeaders bool
}

func parseConf(cfg map[string]string) (sinkConf, error) {
	var c sinkConf
	var err error
	for _, t := range strings.Split(cfg["topics"], ",") {
		if t = strings.TrimSpace(t); t != "" {
			if _, ok := tableOf(t); !ok {
				return c, smp.Errorf(smp.EINVALID, "topics: %s is not a change topic of a table the read model indexes (%s)", t, strings.Join(Tables, ", "))
			}
			c.topics = append(c.topics, t)
		}
	}
	if len(c.topics) == 0 {
		c.topics = Topics()
	}
	if c.batch, err = intConf(cfg, "batch.size", 500, 1); err != nil {
		return c, err
	}
	linger, err := intConf(cfg, "linger.ms", 0, 0)
	if err != nil {
		return c, err
	}
	c.linger = time.Duration(linger) * time.Millisecond
	if c.buffered, err = intConf(cfg, "max.buffered.records", 5000, 1); err != nil {
		return c, err
	}
	if c.tasks, err = intConf(cfg, "tasks.max", 1, 1); err != nil {
		return c, err
	}
	switch c.tolerance = cfg["errors.tolerance"]; c.tolerance {
	case "":
		c.tolerance = "none"
	case "none", "all":
	default:
		return c, smp.Errorf(smp.EINVALID, "errors.tolerance %q: must be none or all", c.tolerance)
	}
	c.dlq = cfg["errors.deadletterqueue.topic.name"]
	c.ctxHeaders = cfg["errors.deadletterqueue.context.headers.enable"] == "true"
	switch cfg["behavior.on.null.values"] {
	case "", "ignore", "delete":
	default:
		return c, smp.Errorf(smp.EINVALID, "behavior.on.null.values %q: must be ignore or delete", cfg["behavior.on.null.values"])
	}
	return c, nil
}

// Validate checks the configuration.
func (s *Sink) Validate(cfg map[string]string) error {
	_, err := parseConf(cfg)
	return err
}

// Tasks makes tasks.max tasks, members of one consumer group sharing the
// topics' partitions.
func (s *Sink) Tasks(name string, cfg map[string]string) ([]connect.Task, error) {
	c, err := parseConf(cfg)
	if err != nil {
		return nil, err
	}
	s.mu.Lock()
	s.topics, s.dlq = c.topics, c.dlq
	s.mu.Unlock()
	out := make([]connect.Task, c.tasks)
	for i := range out {
		out[i] = &sinkTask{s: s, name: name, id: i, conf: c, log: s.cfg.Logger.With("connector", name, "task", i)}
	}
	return out, nil
}

// tableOf returns the table of a change topic (<prefix>.<db>.<table>).
func tableOf(topic string) (string, bool) {
	i := strings.LastIndexByte(topic, '.')
	if i < 0 {
		return "", false
	}
	t := topic[i+1:]
	for _, known := range Tables {
		if t == known {
			return t, true
		}
	}
	return "", false
}

// Version is the external version of a change: its position in the
// source. On the embedded change table that is the change's seq; in a
// MySQL binlog, the file's sequence number, the event's position in it and
// the row in the event (binlog.000042 at 1234, row 2 is
// 42<<43 | 1234<<11 | 2), so later changes have higher versions across
// files. The embedded snapshot's reads carry 0 but on their last row, so
// any change after a snapshot wins over it.
func Version(s cdc.Source) int64 {
	if s.File == "" || s.File == "cdc_changes" {
		return s.Pos
	}
	i := strings.LastIndexByte(s.File, '.')
	n, err := strconv.ParseInt(s.File[i+1:], 10, 64)
	if err != nil || n < 0 || n >= 1<<20 || s.Pos < 0 || s.Pos >= 1<<32 {
		return s.Pos
	}
	return n<<43 | s.Pos<<11 | int64(min(max(s.Row, 0), 1<<11-1))
}

// DocID is a row key's id ({"id": "O1"} or {"id": 7}) as a document id.
func DocID(key []byte) (string, error) {
	var k map[string]json.RawMessage
	if err := json.Unmarshal(key, &k); err != nil {
		return "", fmt.Errorf("key %q is not a JSON object: %v", key, err)
	}
	raw, ok := k["id"]
	if !ok || len(k) != 1 {
		return "", fmt.Errorf("key %q: want {\"id\": …}", key)
	}
	var s string
	if json.Unmarshal(raw, &s) == nil {
		return s, nil
	}
	var n json.Number
	if json.Unmarshal(raw, &n) == nil {
		return n.String(), nil
	}
	return "", fmt.Errorf("key %q: id is neither a string nor a number", key)
}

// item is one change waiting for the bulk request that writes it.
type item struct {
	op   smp.IndexOp
	tsMs int64
	done chan smp.IndexResult // buffered: the flusher never waits
	err  error
}

type sinkTask struct {
	s    *Sink
	name string
	id   int
	conf sinkConf
	log  *slog.Logger
}

// Run makes sure every table's alias exists, then consumes the change
// topics as the group connect-elasticsearch-sink: each record's handler
// waits until the bulk request that carries it returned, so the group
// commits only what was written (at least once; the versions absorb
// replays). Bulk requests are flushed at batch.size records or, with
// linger.ms, after that long; without linger a request goes as soon as the
// previous one returned, with what queued meanwhile.
func (t *sinkTask) Run(ctx context.Context, _ connect.Offsets) error {
	if err := EnsureIndices(ctx, t.s.cfg.Index); err != nil {
		if ctx.Err() != nil {
			return nil
		}
		return err
	}
	queue := make(chan *item, t.conf.buffered)
	flushDone := make(chan struct{})
	fctx, stopFlush := context.WithCancel(context.WithoutCancel(ctx))
	go func() {
		defer close(flushDone)
		t.flusher(fctx, queue)
	}()
	// A record that cannot be written under errors.tolerance none fails
	// the task: the subscription is ended and the task returns its error.
	sctx, fail := context.WithCancelCause(ctx)
	defer fail(nil)
	err := t.s.cfg.Bus.Subscribe(sctx, ConsumerGroup, t.conf.topics, func(hctx context.Context, m smp.Message) error {
		err := t.handle(hctx, m, queue)
		var fatal *fatalError
		if errors.As(err, &fatal) {
			fail(fatal)
		}
		return err
	})
	stopFlush()
	<-flushDone
	if ctx.Err() != nil {
		return nil
	}
	if cause := context.Cause(sctx); cause != nil && !errors.Is(cause, context.Canceled) {
		return cause
	}
	return err
}

// fatalError is a record the task cannot get past (errors.tolerance none).
type fatalError struct{ msg string }

func (e *fatalError) Error() string { return e.msg }

// handle turns one record into an index op and waits for its result.
func (t *sinkTask) handle(ctx context.Context, m smp.Message, queue chan<- *item) error {
	if len(m.Value) == 0 {
		t.s.records.WithLabelValues("tombstone").Inc()
		return nil
	}
	op, tsMs, err := t.toOp(m)
	if errors.Is(err, errTruncate) {
		return t.truncate(ctx, op, tsMs)
	}
	if err != nil {
		return t.deadLetter(ctx, m, "convert", err.Error())
	}
	it := &item{op: op, tsMs: tsMs, done: make(chan smp.IndexResult, 1)}
	select {
	case queue <- it:
	case <-ctx.Done():
		return ctx.Err()
	}
	select {
	case r := <-it.done:
		if it.err != nil {
			return it.err // the request failed: delivered again
		}
		switch r.Status {
		case smp.IndexApplied:
			if op.Delete {
				t.s.records.WithLabelValues("deleted").Inc()
			} else {
				t.s.records.WithLabelValues("indexed").Inc()
			}
		case smp.IndexConflict:
			t.s.records.WithLabelValues("stale").Inc()
		default:
			return t.deadLetter(ctx, m, "index", r.Reason)
		}
		t.s.indexed(tsMs)
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

func (t *sinkTask) toOp(m smp.Message) (smp.IndexOp, int64, error) {
	table, ok := tableOf(m.Topic)
	if !ok {
		return smp.IndexOp{}, 0, fmt.Errorf("topic %s is not a change topic of an indexed table", m.Topic)
	}
	var env cdc.Envelope
	if err := json.Unmarshal(m.Value, &env); err != nil {
		return smp.IndexOp{}, 0, fmt.Errorf("not a Debezium change event: %v", err)
	}
	if env.Op == "t" {
		return smp.IndexOp{Index: table, Version: Version(env.Source)}, env.Source.TsMs, errTruncate
	}
	id, err := DocID([]byte(m.Key))
	if err != nil {
		return smp.IndexOp{}, 0, err
	}
	op := smp.IndexOp{Index: table, ID: id, Version: Version(env.Source)}
	switch env.Op {
	case "c", "u", "r":
		if len(env.After) == 0 || string(env.After) == "null" {
			return smp.IndexOp{}, 0, fmt.Errorf("op %s without an after image", env.Op)
		}
		op.Source = env.After
	case "d":
		op.Delete = true
	default:
		return smp.IndexOp{}, 0, fmt.Errorf("op %q is not c, u, r or d", env.Op)
	}
	return op, env.Source.TsMs, nil
}

var errTruncate = errors.New("truncate")

// truncate applies a TRUNCATE (op t): every document of the table is
// deleted at the truncate's version (a later change of an id still wins).
func (t *sinkTask) truncate(ctx context.Context, at smp.IndexOp, tsMs int64) error {
	var ops []smp.IndexOp
	if err := t.s.cfg.Index.Scan(ctx, at.Index, func(d smp.Document) error {
		ops = append(ops, smp.IndexOp{Index: at.Index, ID: d.ID, Delete: true, Version: at.Version})
		return nil
	}); err != nil {
		return err
	}
	for len(ops) > 0 {
		n := min(len(ops), t.conf.batch)
		if _, err := t.s.cfg.Index.Bulk(ctx, ops[:n]); err != nil {
			return err
		}
		ops = ops[n:]
	}
	t.s.records.WithLabelValues("truncated").Inc()
	t.s.indexed(tsMs)
	return nil
}

// deadLetter sends a record the sink cannot write to its dead-letter
// topic with the reason (errors.tolerance all), or fails the task with it
// (none).
func (t *sinkTask) deadLetter(ctx context.Context, m smp.Message, stage, reason string) error {
	if t.conf.tolerance != "all" || t.conf.dlq == "" {
		return &fatalError{fmt.Sprintf("%s: record %s/%d@%d cannot be written: %s (errors.tolerance=none)", ConnectorName, m.Topic, m.Partition, m.Offset, reason)}
	}
	d := bus.DeadLetter(m, ConsumerGroup, reason, 1)
	d.Topic = t.conf.dlq
	if t.conf.ctxHeaders {
		d.Headers["__connect.errors.topic"] = m.Topic
		d.Headers["__connect.errors.partition"] = strconv.Itoa(int(m.Partition))
		d.Headers["__connect.errors.offset"] = strconv.FormatInt(m.Offset, 10)
		d.Headers["__connect.errors.connector.name"] = t.name
		d.Headers["__connect.errors.task.id"] = strconv.Itoa(t.id)
		d.Headers["__connect.errors.stage"] = stage
		d.Headers["__connect.errors.exception.message"] = reason
	}
	if err := t.s.cfg.Bus.Publish(ctx, d); err != nil {
		return fmt.Errorf("dead letter to %s: %w", t.conf.dlq, err)
	}
	t.s.records.WithLabelValues("dead_lettered").Inc()
	t.log.Warn("record dead-lettered", "topic", m.Topic, "partition", m.Partition, "offset", m.Offset, "dlq", t.conf.dlq, "reason", reason)
	return nil
}

// flusher sends the queued items in bulk requests until ctx ends.
func (t *sinkTask) flusher(ctx context.Context, queue <-chan *item) {
	batch := make([]*item, 0, t.conf.batch)
	for {
		batch = batch[:0]
		select {
		case it := <-queue:
			batch = append(batch, it)
		case <-ctx.Done():
			return
		}
		var linger <-chan time.Time
		if t.conf.linger > 0 {
			timer := time.NewTimer(t.conf.linger)
			linger = timer.C
			for len(batch) < t.conf.batch && linger != nil {
				select {
				case it := <-queue:
					batch = append(batch, it)
				case <-linger:
					linger = nil
				case <-ctx.Done():
					timer.Stop()
					return
				}
			}
			timer.Stop()
		}
	drain:
		for len(batch) < t.conf.batch {
			select {
			case it := <-queue:
				batch = append(batch, it)
			default:
				break drain
			}
		}
		ops := make([]smp.IndexOp, len(batch))
		for i, it := range batch {
			ops[i] = it.op
		}
		res, err := t.s.cfg.Index.Bulk(ctx, ops)
		if err != nil {
			t.log.Warn("bulk request failed: its records are delivered again", "records", len(ops), "err", err)
		}
		for i, it := range batch {
			if err != nil {
				it.err = err
				it.done <- smp.IndexResult{}
				continue
			}
			it.done <- res[i]
		}
	}
}

// indexed records the source time of a change written (or found older
// than what is indexed).
func (s *Sink) indexed(tsMs int64) {
	s.mu.Lock()
	s.newestTsMs = max(s.newestTsMs, tsMs)
	s.mu.Unlock()
}

// Lag is es_sink_lag_seconds: 0 when the group has nothing left to read;
// otherwise now minus the source time of the newest change indexed (or of
// the last moment the sink was seen caught up, when that is later: a
// change that waits shows its own wait, not the idle time before it).
func (s *Sink) Lag(ctx context.Context) (float64, error) {
	s.mu.Lock()
	topics := s.topics
	s.mu.Unlock()
	lag, err := s.cfg.Bus.Lag(ctx, ConsumerGroup, topics)
	if err != nil {
		return 0, err
	}
	var pending int64
	for _, parts := range lag {
		for _, n := range parts {
			pending += n
		}
	}
	now := s.cfg.Now()
	s.mu.Lock()
	defer s.mu.Unlock()
	if pending == 0 {
		s.caughtUp = now
		return 0, nil
	}
	from := s.caughtUp
	if t := time.UnixMilli(s.newestTsMs); s.newestTsMs > 0 && t.After(from) {
		from = t
	}
	return max(0, now.Sub(from).Seconds()), nil
}

var lagDesc = prometheus.NewDesc("es_sink_lag_seconds",
	"How far the read model is behind: now minus the source time of the newest change the elasticsearch-sink indexed (0 when caught up).", nil, nil)

type lagCollector struct{ s *Sink }

func (c lagCollector) Describe(ch chan<- *prometheus.Desc) { ch <- lagDesc }

func (c lagCollector) Collect(ch chan<- prometheus.Metric) {
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Second)
	defer cancel()
	v, err := c.s.Lag(ctx)
	if err != nil {
		ch <- prometheus.NewInvalidMetric(lagDesc, err)
		return
	}
	ch <- prometheus.MustNewConstMetric(lagDesc, prometheus.GaugeValue, v)
}

// EnsureIndices creates, for each table without its alias, the index of
// its newest mapping and the alias.
func EnsureIndices(ctx context.Context, x smp.SearchIndex) error {
	ms, err := LatestMappings()
	if err != nil {
		return err
	}
	for _, m := range ms {
		if _, err := x.Alias(ctx, m.Table); err == nil {
			continue
		} else if smp.ErrorCode(err) != smp.ENOTFOUND {
			return err
		}
		if err := x.CreateIndex(ctx, m.Index(), m.Body); err != nil && smp.ErrorCode(err) != smp.ECONFLICT {
			return fmt.Errorf("readmodel: create %s: %w", m.Index(), err)
		}
		if err := x.SetAlias(ctx, m.Table, m.Index()); err != nil {
			return fmt.Errorf("readmodel: alias %s: %w", m.Table, err)
		}
	}
	return nil
}
