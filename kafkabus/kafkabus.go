// Package kafkabus is SMP's event bus on Kafka (franz-go): topics of 12
// partitions keyed by aggregate id, an idempotent acks=all producer,
// consumer groups named after the consuming service, redelivery of a
// message whose handler failed (limits and dead letters on <topic>.dlq are
// bus.Router's; the bus creates each topic's .dlq), and lag computed with kadm. It passes the same
// conformance suite (bustest) as the embedded log.
package kafkabus

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"maps"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"

	"smp"
)

// Config of the Kafka bus.
type Config struct {
	Brokers []string
	// Partitions of each topic the bus creates (12, as the runbook's).
	Partitions int32
	// ReplicationFactor of created topics; -1 takes the broker default.
	ReplicationFactor int16
	// RetryBackoff is the first delay before a message whose handler
	// failed is delivered again, doubled up to 5 s (default 100 ms).
	// Attempt limits and dead letters are bus.Router's.
	RetryBackoff time.Duration
	// PublishTimeout bounds one Publish: past it the caller (the outbox
	// relay) keeps the events and retries (default 10 s).
	PublishTimeout time.Duration
	// SessionTimeout of consumer group members (default 10 s).
	SessionTimeout time.Duration
	// CommitInterval: how often a consumer commits the offsets its
	// partition workers marked handled (default 1 s); they are committed
	// on revoke and at stop too.
	CommitInterval time.Duration
	ClientID       string
	Logger         *slog.Logger
}

func (c *Config) validate() error {
	if len(c.Brokers) == 0 {
		return smp.Errorf(smp.EINVALID, "kafkabus: no brokers")
	}
	for _, b := range c.Brokers {
		if strings.TrimSpace(b) == "" || !strings.Contains(b, ":") {
			return smp.Errorf(smp.EINVALID, "kafkabus: broker %q is not host:port", b)
		}
	}
	if c.Partitions <= 0 {
		c.Partitions = 12
	}
	if c.ReplicationFactor == 0 {
		c.ReplicationFactor = -1
	}
	if c.RetryBackoff <= 0 {
		c.RetryBackoff = 100 * time.Millisecond
	}
	if c.PublishTimeout <= 0 {
		c.PublishTimeout = 10 * time.Second
	}
	if c.SessionTimeout <= 0 {
		c.SessionTimeout = 10 * time.Second
	}
	if c.CommitInterval <= 0 {
		c.CommitInterval = time.Second
	}
	if c.ClientID == "" {
		c.ClientID = "smp"
	}
	if c.Logger == nil {
		c.Logger = slog.New(slog.DiscardHandler)
	}
	return nil
}

// Bus is the Kafka smp.EventBus. One producing client is shared; each
// Subscribe runs its own consumer-group client.
type Bus struct {
	cfg  Config
	prod *kgo.Client
	adm  *kadm.Client

	mu      sync.Mutex
	ensured map[string]bool
	closed  bool

	async asyncProducer // PublishAsync's own client (produce.go)
}

func (b *Bus) newProducer() (*kgo.Client, error) {
	return kgo.NewClient(append(b.cfg.common(),
		kgo.RequiredAcks(kgo.AllISRAcks()), // idempotent writes are franz-go's default and need acks=all
		kgo.ProducerLinger(2*time.Millisecond),
		kgo.RecordDeliveryTimeout(b.cfg.PublishTimeout),
		kgo.MaxBufferedRecords(10000),
	)...)
}

func (b *Bus) producer() *kgo.Client {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.prod
}

func (b *Bus) admin() *kadm.Client {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.adm
}

// replaceProducer swaps a stuck producer for a new one (if no one did yet).
func (b *Bus) replaceProducer(stuck *kgo.Client) {
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.closed || b.prod != stuck {
		return
	}
	fresh, err := b.newProducer()
	if err != nil {
		b.cfg.Logger.Warn("kafkabus: new producer", "err", err)
		return
	}
	b.prod, b.adm = fresh, kadm.NewClient(fresh)
	go stuck.Close() // fails its buffered records
}

var (
	_ smp.EventBus = (*Bus)(nil)
	_ smp.BusAdmin = (*Bus)(nil)
)

// Open connects to the cluster. It does not wait for the brokers: while
// they are unreachable Publish fails (the outbox keeps the events) and
// consumers wait.
func Open(cfg Config) (*Bus, error) {
	if err := cfg.validate(); err != nil {
		return nil, err
	}
	b := &Bus{cfg: cfg, ensured: map[string]bool{}}
	prod, err := b.newProducer()
	if err != nil {
		return nil, fmt.Errorf("kafkabus: %w", err)
	}
	b.prod, b.adm = prod, kadm.NewClient(prod)
	return b, nil
}

func (c *Config) common() []kgo.Opt {
	return []kgo.Opt{
		kgo.SeedBrokers(c.Brokers...),
		kgo.ClientID(c.ClientID),
		kgo.DialTimeout(3 * time.Second),
		kgo.RetryTimeout(c.PublishTimeout),
		kgo.MetadataMinAge(500 * time.Millisecond),
		kgo.WithLogger(logAdapter{c.Logger}),
	}
}

// Close closes the producer; safe to call twice.
func (b *Bus) Close() error {
	b.mu.Lock()
	defer b.mu.Unlock()
	if !b.closed {
		b.closed = true
		b.prod.Close()
		defer b.async.close()
	}
	return nil
}

// EnsureTopics creates topics and their DLQs with the configured
// partitions if they are missing.
func (b *Bus) EnsureTopics(ctx context.Context, topics ...string) error {
	var missing []string
	b.mu.Lock()
	for _, t := range topics {
		for _, name := range []string{t, t + smp.DLQSuffix} {
			if strings.HasSuffix(t, smp.DLQSuffix) && name != t {
				continue
			}
			if !b.ensured[name] {
				missing = append(missing, name)
			}
		}
	}
	b.mu.Unlock()
	if len(missing) == 0 {
		return nil
	}
	resp, err := b.admin().CreateTopics(ctx, b.cfg.Partitions, b.cfg.ReplicationFactor, nil, missing...)
	if err != nil {
		return smp.Errorf(smp.EUNAVAILABLE, "kafkabus: create topics: %v", err)
	}
	for _, r := range resp.Sorted() {
		if r.Err != nil && !errors.Is(r.Err, kerr.TopicAlreadyExists) {
			return smp.Errorf(smp.EUNAVAILABLE, "kafkabus: create topic %s: %v", r.Topic, r.Err)
		}
	}
	b.mu.Lock()
	for _, t := range missing {
		b.ensured[t] = true
	}
	b.mu.Unlock()
	return nil
}

// Publish writes msgs and returns once every one is acknowledged by the
// cluster (acks=all), or fails as a whole; the caller retries, so a
// message may be written twice (consumers dedupe by event id), never lost.
func (b *Bus) Publish(ctx context.Context, msgs ...smp.Message) error {
	if len(msgs) == 0 {
		return nil
	}
	ctx, cancel := context.WithTimeout(ctx, b.cfg.PublishTimeout)
	defer cancel()
	topics := map[string]bool{}
	recs := make([]*kgo.Record, len(msgs))
	for i, m := range msgs {
		if m.Topic == "" {
			return smp.Errorf(smp.EINVALID, "kafkabus: message without topic")
		}
		topics[m.Topic] = true
		r := &kgo.Record{Topic: m.Topic, Key: []byte(m.Key), Value: m.Value}
		for k, v := range m.Headers {
			r.Headers = append(r.Headers, kgo.RecordHeader{Key: k, Value: []byte(v)})
		}
		recs[i] = r
	}
	var names []string
	for t := range topics {
		names = append(names, t)
	}
	if err := b.EnsureTopics(ctx, names...); err != nil {
		return err
	}
	prod := b.producer()
	var (
		wg       sync.WaitGroup
		mu       sync.Mutex
		firstErr error
	)
	wg.Add(len(recs))
	for _, r := range recs {
		prod.Produce(ctx, r, func(_ *kgo.Record, err error) {
			if err != nil {
				mu.Lock()
				if firstErr == nil {
					firstErr = err
				}
				mu.Unlock()
			}
			wg.Done()
		})
	}
	done := make(chan struct{})
	go func() { wg.Wait(); close(done) }()
	select {
	case <-done:
	case <-ctx.Done():
		// An idempotent producer cannot drop a record it may have sent
		// without an answer: it would retry it for as long as it lives,
		// blocking what follows. Replace it; the outbox still holds these
		// events, the caller publishes them again, and consumers dedupe a
		// copy that arrives twice.
		b.replaceProducer(prod)
		return smp.Errorf(smp.EUNAVAILABLE, "kafkabus: produce: %v", ctx.Err())
	}
	if firstErr != nil {
		return smp.Errorf(smp.EUNAVAILABLE, "kafkabus: produce: %v", firstErr)
	}
	return nil
}

func toMessage(r *kgo.Record) smp.Message {
	m := smp.Message{Topic: r.Topic, Key: string(r.Key), Value: r.Value, Partition: r.Partition, Offset: r.Offset, Headers: map[string]string{}}
	for _, h := range r.Headers {
		m.Headers[h.Key] = string(h.Value)
	}
	return m
}

// Lag returns, per topic and partition, how many messages group has not
// committed.
func (b *Bus) Lag(ctx context.Context, group string, topics []string) (map[string][]int64, error) {
	offs, err := b.Offsets(ctx, group, topics)
	if err != nil {
		return nil, err
	}
	out := map[string][]int64{}
	for _, o := range offs {
		lag := out[o.Topic]
		for int(o.Partition) >= len(lag) {
			lag = append(lag, 0)
		}
		lag[o.Partition] = o.Lag
		out[o.Topic] = lag
	}
	return out, nil
}

// Offsets describes group's position on every partition of topics, with
// kadm: committed offsets, log start and end; lag is end minus the
// committed offset (or minus the start when the group never committed).
func (b *Bus) Offsets(ctx context.Context, group string, topics []string) ([]smp.PartitionOffsets, error) {
	ends, err := b.admin().ListEndOffsets(ctx, topics...)
	if err != nil {
		return nil, smp.Errorf(smp.EUNAVAILABLE, "kafkabus: list end offsets: %v", err)
	}
	if err := ends.Error(); err != nil {
		return nil, smp.Errorf(smp.EUNAVAILABLE, "kafkabus: list end offsets: %v", err)
	}
	starts, err := b.admin().ListStartOffsets(ctx, topics...)
	if err != nil {
		return nil, smp.Errorf(smp.EUNAVAILABLE, "kafkabus: list start offsets: %v", err)
	}
	committed, err := b.admin().FetchOffsets(ctx, group)
	if err != nil && !errors.Is(err, kerr.GroupIDNotFound) {
		return nil, smp.Errorf(smp.EUNAVAILABLE, "kafkabus: fetch offsets of %s: %v", group, err)
	}
	// Who consumes each partition now (kafka-consumer-groups' CONSUMER-ID).
	holders := map[string]map[int32]string{}
	if groups, err := b.admin().DescribeGroups(ctx, group); err == nil {
		for _, m := range groups[group].Members {
			ca, ok := m.Assigned.AsConsumer()
			if !ok {
				continue
			}
			for _, t := range ca.Topics {
				if holders[t.Topic] == nil {
					holders[t.Topic] = map[int32]string{}
				}
				for _, p := range t.Partitions {
					holders[t.Topic][p] = m.MemberID
				}
			}
		}
	}
	var out []smp.PartitionOffsets
	for _, topic := range topics {
		ps, ok := ends[topic]
		if !ok {
			return nil, smp.Errorf(smp.ENOTFOUND, "kafkabus: topic %s does not exist", topic)
		}
		for p := int32(0); p < int32(len(ps)); p++ {
			end, ok := ps[p]
			if !ok {
				continue
			}
			o := smp.PartitionOffsets{Topic: topic, Partition: p, Committed: -1, End: end.Offset, Consumer: holders[topic][p]}
			if s, ok := starts.Lookup(topic, p); ok && s.Err == nil {
				o.Start = s.Offset
			}
			pos := o.Start
			if c, ok := committed.Lookup(topic, p); ok && c.Err == nil && c.At >= 0 {
				o.Committed, pos = c.At, c.At
			}
			o.Lag = max(0, o.End-pos)
			out = append(out, o)
		}
	}
	return out, nil
}

// ResetOffset sets group's next offset on one partition, like
// kafka-consumer-groups --reset-offsets --to-offset N --execute: the
// group must have no active members.
func (b *Bus) ResetOffset(ctx context.Context, group, topic string, partition int32, offset int64) error {
	// The same limits as the embedded log's, so both buses agree.
	if err := smp.CheckLen("group", group, smp.MaxGroupName); err != nil {
		return err
	}
	if err := smp.CheckLen("topic", topic, smp.MaxTopicName); err != nil {
		return err
	}
	ends, err := b.admin().ListEndOffsets(ctx, topic)
	if err != nil {
		return smp.Errorf(smp.EUNAVAILABLE, "kafkabus: list offsets: %v", err)
	}
	end, ok := ends.Lookup(topic, partition)
	if !ok || end.Err != nil {
		return smp.Errorf(smp.EINVALID, "partition %s:%d does not exist", topic, partition)
	}
	starts, err := b.admin().ListStartOffsets(ctx, topic)
	if err != nil {
		return smp.Errorf(smp.EUNAVAILABLE, "kafkabus: list offsets: %v", err)
	}
	start, _ := starts.Lookup(topic, partition)
	if offset < start.Offset || offset > end.Offset {
		return smp.Errorf(smp.EINVALID, "offset %d is outside %s:%d (%d..%d)", offset, topic, partition, start.Offset, end.Offset)
	}
	groups, err := b.admin().DescribeGroups(ctx, group)
	if err != nil {
		return smp.Errorf(smp.EUNAVAILABLE, "kafkabus: describe group: %v", err)
	}
	if g, ok := groups[group]; ok && len(g.Members) > 0 {
		return smp.Errorf(smp.ECONFLICT, "group %s has %d active members: stop them first", group, len(g.Members))
	}
	var os kadm.Offsets
	os.Add(kadm.Offset{Topic: topic, Partition: partition, At: offset, LeaderEpoch: -1})
	resp, err := b.admin().CommitOffsets(ctx, group, os)
	if err == nil {
		err = resp.Error()
	}
	if err != nil {
		return smp.Errorf(smp.EUNAVAILABLE, "kafkabus: commit offset: %v", err)
	}
	return nil
}

// Topics lists the cluster's topics (internal ones left out), by name
// (the replication agent finds mirrored heartbeats with it).
func (b *Bus) Topics(ctx context.Context) ([]string, error) {
	td, err := b.admin().ListTopics(ctx)
	if err != nil {
		return nil, smp.Errorf(smp.EUNAVAILABLE, "kafkabus: list topics: %v", err)
	}
	return td.Names(), nil
}

// Read returns up to max messages of topic from the start of each
// partition, without joining any group.
func (b *Bus) Read(ctx context.Context, topic string, max int) ([]smp.Message, error) {
	ends, err := b.admin().ListEndOffsets(ctx, topic)
	if err != nil {
		return nil, smp.Errorf(smp.EUNAVAILABLE, "kafkabus: list offsets: %v", err)
	}
	starts, err := b.admin().ListStartOffsets(ctx, topic)
	if err != nil {
		return nil, smp.Errorf(smp.EUNAVAILABLE, "kafkabus: list offsets: %v", err)
	}
	want := map[int32]int64{} // partition -> end
	offsets := map[string]map[int32]kgo.Offset{topic: {}}
	total := int64(0)
	ends.Each(func(o kadm.ListedOffset) {
		s, _ := starts.Lookup(o.Topic, o.Partition)
		if o.Err == nil && o.Offset > s.Offset {
			want[o.Partition] = o.Offset
			offsets[topic][o.Partition] = kgo.NewOffset().At(s.Offset)
			total += o.Offset - s.Offset
		}
	})
	if len(want) == 0 {
		return nil, nil
	}
	cl, err := kgo.NewClient(append(b.cfg.common(), kgo.ConsumePartitions(offsets), kgo.FetchMaxWait(100*time.Millisecond))...)
	if err != nil {
		return nil, err
	}
	defer cl.Close()
	byPart := map[int32][]smp.Message{}
	got := 0
	for got < max && int64(got) < total && len(want) > 0 {
		fetches := cl.PollFetches(ctx)
		if ctx.Err() != nil {
			return nil, ctx.Err()
		}
		fetches.EachRecord(func(r *kgo.Record) {
			end, ok := want[r.Partition]
			if !ok || r.Offset >= end {
				return
			}
			byPart[r.Partition] = append(byPart[r.Partition], toMessage(r))
			got++
			if r.Offset+1 >= end {
				delete(want, r.Partition)
			}
		})
	}
	parts := slices.Sorted(maps.Keys(byPart))
	var out []smp.Message
	for _, p := range parts {
		for _, m := range byPart[p] {
			if len(out) == max {
				return out, nil
			}
			out = append(out, m)
		}
	}
	return out, nil
}

// logAdapter sends franz-go's logs to slog at debug/warn, never error:
// the client retries everything itself and the bus logs real failures.
type logAdapter struct{ l *slog.Logger }

func (a logAdapter) Level() kgo.LogLevel { return kgo.LogLevelWarn }

func (a logAdapter) Log(level kgo.LogLevel, msg string, kv ...any) {
	if level <= kgo.LogLevelWarn && level != kgo.LogLevelNone {
		a.l.Debug("kafka: "+msg, kv...)
	}
}
