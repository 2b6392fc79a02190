package kafkabus

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"sync"
	"unicode/utf8"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"

	"smp"
)

// OffsetsTopic is Kafka Connect's offset storage topic
// (offset.storage.topic's usual name).
const OffsetsTopic = "connect-offsets"

// offsetsPartitions is how many partitions Connect creates it with.
const offsetsPartitions = 25

// ConnectOffsets keeps Kafka Connect's source offsets where Connect keeps
// them: the compacted topic connect-offsets, one record per connector and
// source partition, keyed ["<connector>",{partition}] (JSON, as Connect's
// JSON converter writes it), the value the offset's JSON, a tombstone
// removing it. Reading folds the topic from its start to its end (a task
// reads at start; it writes after each publication).
type ConnectOffsets struct {
	b     *Bus
	topic string

	mu      sync.Mutex
	ensured bool
}

var _ smp.ConnectOffsetStore = (*ConnectOffsets)(nil)

// ConnectOffsets returns the bus's offset store on connect-offsets.
func (b *Bus) ConnectOffsets() *ConnectOffsets { return &ConnectOffsets{b: b, topic: OffsetsTopic} }

func (o *ConnectOffsets) ensure(ctx context.Context) error {
	o.mu.Lock()
	defer o.mu.Unlock()
	if o.ensured {
		return nil
	}
	compact := "compact"
	resp, err := o.b.admin().CreateTopics(ctx, offsetsPartitions, o.b.cfg.ReplicationFactor, map[string]*string{"cleanup.policy": &compact}, o.topic)
	if err != nil {
		return smp.Errorf(smp.EUNAVAILABLE, "kafkabus: create %s: %v", o.topic, err)
	}
	for _, r := range resp.Sorted() {
		if r.Err != nil && !errors.Is(r.Err, kerr.TopicAlreadyExists) {
			return smp.Errorf(smp.EUNAVAILABLE, "kafkabus: create %s: %v", o.topic, r.Err)
		}
	}
	o.ensured = true
	return nil
}

func offsetKey(connector string, partition map[string]any) ([]byte, error) {
	return json.Marshal([]any{connector, partition})
}

// ConnectOffsets returns the connector's offsets, ordered by partition.
func (o *ConnectOffsets) ConnectOffsets(ctx context.Context, connector string) ([]smp.ConnectOffset, error) {
	latest, err := o.read(ctx)
	if err != nil {
		return nil, err
	}
	type kv struct {
		part   string
		offset smp.ConnectOffset
	}
	var out []kv
	for k, v := range latest {
		if v == nil {
			continue
		}
		var key []json.RawMessage
		var name string
		if json.Unmarshal([]byte(k), &key) != nil || len(key) != 2 || json.Unmarshal(key[0], &name) != nil || name != connector {
			continue
		}
		var c smp.ConnectOffset
		if json.Unmarshal(key[1], &c.Partition) != nil || json.Unmarshal(v, &c.Offset) != nil {
			continue
		}
		out = append(out, kv{string(key[1]), c})
	}
	slices.SortFunc(out, func(a, b kv) int { return bytes.Compare([]byte(a.part), []byte(b.part)) })
	res := make([]smp.ConnectOffset, len(out))
	for i, e := range out {
		res[i] = e.offset
	}
	return res, nil
}

// read folds the topic: the last value of each key (nil: removed).
func (o *ConnectOffsets) read(ctx context.Context) (map[string][]byte, error) {
	if err := o.ensure(ctx); err != nil {
		return nil, err
	}
	ends, err := o.b.admin().ListEndOffsets(ctx, o.topic)
	if err != nil {
		return nil, smp.Errorf(smp.EUNAVAILABLE, "kafkabus: %s end offsets: %v", o.topic, err)
	}
	want := map[int32]int64{}
	parts := map[int32]kgo.Offset{}
	var ferr error
	ends.Each(func(l kadm.ListedOffset) {
		if l.Err != nil {
			ferr = l.Err
		}
		if l.Offset > 0 {
			want[l.Partition] = l.Offset
			parts[l.Partition] = kgo.NewOffset().AtStart()
		}
	})
	if ferr != nil {
		return nil, smp.Errorf(smp.EUNAVAILABLE, "kafkabus: %s end offsets: %v", o.topic, ferr)
	}
	latest := map[string][]byte{}
	if len(want) == 0 {
		return latest, nil
	}
	cl, err := kgo.NewClient(append(o.b.cfg.common(), kgo.ConsumePartitions(map[string]map[int32]kgo.Offset{o.topic: parts}))...)
	if err != nil {
		return nil, fmt.Errorf("kafkabus: %w", err)
	}
	defer cl.Close()
	for len(want) > 0 {
		fetches := cl.PollFetches(ctx)
		if ctx.Err() != nil {
			return nil, smp.Errorf(smp.EUNAVAILABLE, "kafkabus: read %s: %v", o.topic, ctx.Err())
		}
		var perr error
		fetches.EachError(func(_ string, _ int32, err error) { perr = err })
		if perr != nil {
			return nil, smp.Errorf(smp.EUNAVAILABLE, "kafkabus: read %s: %v", o.topic, perr)
		}
		fetches.EachRecord(func(r *kgo.Record) {
			if end, ok := want[r.Partition]; ok {
				if r.Value == nil {
					latest[string(r.Key)] = nil
				} else {
					latest[string(r.Key)] = bytes.Clone(r.Value)
				}
				if r.Offset+1 >= end {
					delete(want, r.Partition)
				}
			}
		})
	}
	return latest, nil
}

// PutConnectOffsets writes one record per partition (a nil Offset: a
// tombstone). Every offset is checked before any is written (EINVALID:
// an empty partition, a partition over 512 characters of JSON, a
// connector name over 128); the records are then produced together, as
// Connect flushes a task's offsets (not a transaction: a failed write
// may keep some of several partitions' offsets).
func (o *ConnectOffsets) PutConnectOffsets(ctx context.Context, connector string, offsets []smp.ConnectOffset) error {
	if utf8.RuneCountInString(connector) > 128 || connector == "" {
		return smp.Errorf(smp.EINVALID, "put connect offsets: connector name must be 1 to 128 characters")
	}
	recs := make([]*kgo.Record, 0, len(offsets))
	for _, c := range offsets {
		if len(c.Partition) == 0 {
			return smp.Errorf(smp.EINVALID, "put connect offsets: empty partition")
		}
		part, err := json.Marshal(c.Partition)
		if err != nil {
			return smp.Errorf(smp.EINVALID, "put connect offsets: partition: %v", err)
		}
		if utf8.RuneCount(part) > 512 {
			return smp.Errorf(smp.EINVALID, "put connect offsets: partition is over 512 characters")
		}
		key, err := offsetKey(connector, c.Partition)
		if err != nil {
			return smp.Errorf(smp.EINVALID, "put connect offsets: %v", err)
		}
		r := &kgo.Record{Topic: o.topic, Key: key}
		if c.Offset != nil {
			if r.Value, err = json.Marshal(c.Offset); err != nil {
				return smp.Errorf(smp.EINVALID, "put connect offsets: offset: %v", err)
			}
		}
		recs = append(recs, r)
	}
	if len(recs) == 0 {
		return nil
	}
	if err := o.ensure(ctx); err != nil {
		return err
	}
	ctx, cancel := context.WithTimeout(ctx, o.b.cfg.PublishTimeout)
	defer cancel()
	if err := o.b.producer().ProduceSync(ctx, recs...).FirstErr(); err != nil {
		return smp.Errorf(smp.EUNAVAILABLE, "kafkabus: write %s: %v", o.topic, err)
	}
	return nil
}

// DeleteConnectOffsets writes a tombstone for each of the connector's
// partitions.
func (o *ConnectOffsets) DeleteConnectOffsets(ctx context.Context, connector string) error {
	cur, err := o.ConnectOffsets(ctx, connector)
	if err != nil {
		return err
	}
	for i := range cur {
		cur[i].Offset = nil
	}
	return o.PutConnectOffsets(ctx, connector, cur)
}
