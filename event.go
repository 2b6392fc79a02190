package smp

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"time"
)

// Topics, named as the runbook names them.
const (
	TopicOrders   = "orders.events"
	TopicPayments = "payments.events"
	TopicPartners = "partners.events"
)

// Event types of the order aggregate. Every stage change writes one.
const (
	EventOrderCreated     = "order.created"
	EventOrderDispatching = "order.dispatching"
	EventOrderAssigned    = "order.assigned"
	EventOrderStarted     = "order.in_progress"
	EventOrderCompleted   = "order.completed"
	EventOrderCancelled   = "order.cancelled"
)

// Event types of the partner aggregate (on partners.events, keyed by the
// partner id), written by onboarding with the change; the data is the
// partner as it is after the change.
const (
	EventPartnerCreated     = "partner.created"
	EventPartnerUpdated     = "partner.updated"
	EventPartnerDeactivated = "partner.deactivated"
)

// EventSchemaVersion is the version of the event envelope and payloads.
const EventSchemaVersion = 1

// MaxEventID is the longest event id the outbox and the consumers'
// records (processed_events) keep, in characters.
const MaxEventID = 64

// Event is a domain event as written to the outbox and carried on the bus.
type Event struct {
	ID            string          `json:"event_id"`
	Type          string          `json:"event_type"`
	SchemaVersion int             `json:"schema_version"`
	AggregateID   string          `json:"aggregate_id"`
	OccurredAt    time.Time       `json:"occurred_at"`
	Data          json.RawMessage `json:"data"`
}

// Topic returns the topic an event of this type travels on.
func (e *Event) Topic() string {
	switch {
	case strings.HasPrefix(e.Type, "order."):
		return TopicOrders
	case strings.HasPrefix(e.Type, "payment."), strings.HasPrefix(e.Type, "inside."):
		return TopicPayments
	case strings.HasPrefix(e.Type, "masterdata."): // masterdata.<table>.changed
		return strings.TrimSuffix(e.Type, ".changed")
	default:
		return TopicPartners
	}
}

// OrderEventData is the payload of every order.* event.
type OrderEventData struct {
	OrderID      string `json:"order_id"`
	City         string `json:"city"`
	Service      string `json:"service"`
	From         Stage  `json:"from,omitempty"`
	To           Stage  `json:"to"`
	TechnicianID string `json:"technician_id,omitempty"`
	Actor        string `json:"actor"`
	Reason       string `json:"reason,omitempty"`
	// Next is the stage the order was committed in when it moved on in
	// the event's own transaction: 02_dispatching on the order.created of
	// an order created straight into dispatch (dispatch on commit), so
	// order-svc's fallback knows, without a read, that it has nothing to
	// do. Empty otherwise (and on events of older versions).
	Next Stage `json:"next,omitempty"`
}

// Message is a record on the event bus. Key decides the partition, so all
// messages of one key are delivered in the order they were published.
type Message struct {
	Topic   string
	Key     string
	Value   []byte
	Headers map[string]string
	// Set on delivery.
	Partition int32
	Offset    int64
}

// Handler processes one delivered message. Returning nil commits it;
// returning an error makes the bus deliver it again after a backoff, its
// partition waiting (attempt limits and dead letters are bus.Router's).
type Handler func(ctx context.Context, m Message) error

// BatchHandler processes messages of one partition, consecutive and in
// order, at once. It returns how many of them, from the first, were handled
// (those may be committed); a bus delivers the others again (after a
// backoff when err is not nil), in order. bus.Router builds one from its
// per-message chain, to deduplicate a batch in one query and record its
// processed events in one transaction.
type BatchHandler func(ctx context.Context, msgs []Message) (handled int, err error)

type batchStopKey struct{}

// WithBatchStop returns ctx carrying stop, for a bus to hand a
// BatchHandler: the handler asks it (BatchStopped) before each message
// but the first and ends the batch there, reporting what it handled so far,
// when it answers true. sqlbus answers true once its partition lease is
// no longer fresh, so what was handled is committed while the lease still
// holds and no other member can take the partition in the middle of a
// batch (applying again what this one applied but had not yet recorded).
func WithBatchStop(ctx context.Context, stop func() bool) context.Context {
	return context.WithValue(ctx, batchStopKey{}, stop)
}

// BatchStopped reports whether the bus that delivered ctx's batch wants it
// ended now (WithBatchStop); false when it set nothing.
func BatchStopped(ctx context.Context) bool {
	stop, ok := ctx.Value(batchStopKey{}).(func() bool)
	return ok && stop()
}

type batchFinishKey struct{}

// BatchFinish is the part of a batch's handling that a bus whose offsets
// live in the database of the handler's store (sqlbus on the embedded
// default, its tables in smp.db) runs in the transaction that commits the
// batch's offset: the records of the events the handler applied and the
// database effects it deferred (bus.EffectTx). It does that work for the
// batch's first upTo messages only (the bus commits the offset after
// them). A *BatchCut error says the effect of message At failed: the bus
// rolls the transaction back, runs the finish again with upTo = At, and
// delivers the batch again from message At after a backoff. Any other
// error rolls everything back: the batch comes again whole.
type BatchFinish func(ctx context.Context, upTo int) error

// BatchCut is a BatchFinish's error when the deferred effect of the
// batch's message At failed with Err.
type BatchCut struct {
	At  int
	Err error
}

func (c *BatchCut) Error() string {
	return fmt.Sprintf("the effect of the batch's message %d: %v", c.At, c.Err)
}
func (c *BatchCut) Unwrap() error { return c.Err }

// WithBatchFinish returns ctx carrying take, for a bus that runs a
// BatchHandler's BatchFinish (SetBatchFinish) in the transaction that
// commits the batch's offset, after the handler returned: one
// transaction, one commit, for the batch's effects, records and
// position. The bus runs it even when it can no longer move the offset
// (its lease lost), as the handler would have written them itself.
func WithBatchFinish(ctx context.Context, take func(finish BatchFinish)) context.Context {
	return context.WithValue(ctx, batchFinishKey{}, take)
}

// TakesBatchFinish reports whether the bus that delivered ctx's batch
// runs a BatchFinish (WithBatchFinish).
func TakesBatchFinish(ctx context.Context) bool {
	_, ok := ctx.Value(batchFinishKey{}).(func(BatchFinish))
	return ok
}

// SetBatchFinish hands finish to the bus that delivered ctx's batch
// (WithBatchFinish); false when it takes none, and then the handler runs
// finish itself.
func SetBatchFinish(ctx context.Context, finish BatchFinish) bool {
	take, ok := ctx.Value(batchFinishKey{}).(func(BatchFinish))
	if ok {
		take(finish)
	}
	return ok
}

type commitHooksKey struct{}

// WithCommitHooks returns ctx on which AfterCommit registers functions,
// for the owner of a transaction that others' code runs in (a bus running
// a BatchFinish), and run, which calls them in order: the owner calls it
// once that transaction has committed, and not at all when it did not. A
// hook's panic does not stop the others: run returns it as an error.
func WithCommitHooks(ctx context.Context) (_ context.Context, run func() error) {
	hooks := new([]func())
	return context.WithValue(ctx, commitHooksKey{}, hooks), func() error {
		var errs []error
		for _, f := range *hooks {
			func() {
				defer func() {
					if v := recover(); v != nil {
						errs = append(errs, fmt.Errorf("an after-commit hook panicked: %v", v))
					}
				}()
				f()
			}()
		}
		return errors.Join(errs...)
	}
}

// AfterCommit registers f to run after the commit of the transaction
// ctx's owner runs (WithCommitHooks); false when ctx carries none.
func AfterCommit(ctx context.Context, f func()) bool {
	hooks, ok := ctx.Value(commitHooksKey{}).(*[]func())
	if ok {
		*hooks = append(*hooks, f)
	}
	return ok
}

// BatchSubscriber is a bus that can deliver a partition's messages in
// batches (sqlbus and kafkabus are). Subscribe on such a bus is
// SubscribeBatch with a handler that takes the messages one by one.
type BatchSubscriber interface {
	// SubscribeBatch is Subscribe with batches: h gets each partition's
	// messages in order, several at a time, and what it reports handled
	// is committed.
	SubscribeBatch(ctx context.Context, group string, topics []string, h BatchHandler) error
}

// EventBus carries events between services. Implementations: the embedded
// durable log (sqlbus) and Kafka. Both pass bustest.Run.
type EventBus interface {
	// Publish appends msgs durably; when it returns nil they will be delivered.
	Publish(ctx context.Context, msgs ...Message) error
	// Subscribe delivers the topics' messages to h as consumer group group,
	// at least once, in order per partition, resuming from the group's
	// committed position. A message whose handler fails is delivered again
	// (and its partition waits). It blocks until ctx is done.
	Subscribe(ctx context.Context, group string, topics []string, h Handler) error
	// Lag returns, per topic and partition, how many messages group has not
	// yet committed.
	Lag(ctx context.Context, group string, topics []string) (map[string][]int64, error)
	Close() error
}

// AsyncPublisher is an EventBus that keeps several publishes in flight
// (kafkabus). The outbox relay uses it when the bus has it, and Publish,
// one batch at a time, otherwise (the embedded log).
//
// Order, also on failure: of the messages handed over since the last
// Resume, those the bus has appended form, per key, a prefix of the order
// in which they were handed over (across calls too). Once a call has
// failed, every later call fails as well, without appending anything,
// until Resume. So a caller that, after a failure, waits for every call's
// done, calls Resume and publishes again from its first message not
// acknowledged appends copies of some messages but never a key's older
// message after its newer one: the first copy of each message a consumer
// sees comes in order, and consumers dedupe the others by event id.
type AsyncPublisher interface {
	EventBus
	// PublishAsync hands msgs over and returns; done is called once, from
	// any goroutine (possibly before PublishAsync returns), with nil when
	// every one of msgs is appended durably, or with an error (EINVALID for
	// a message without topic or too large, otherwise EUNAVAILABLE; then
	// some of msgs may be appended). ctx bounds only the preparation (the
	// topics' creation); the bus bounds the wait for acknowledgements.
	PublishAsync(ctx context.Context, msgs []Message, done func(error))
	// Resume ends a failure (see above): the caller calls it once every
	// call's done has run, before publishing again. No codes.
	Resume(ctx context.Context) error
}

// Dead letters: a message a consumer group gave up on goes to
// <topic>.dlq with these headers besides its own.
const (
	DLQSuffix          = ".dlq"
	HeaderDLQReason    = "dlq.reason"
	HeaderDLQGroup     = "dlq.group"
	HeaderDLQTopic     = "dlq.topic"
	HeaderDLQPartition = "dlq.partition"
	HeaderDLQOffset    = "dlq.offset"
	HeaderDLQAttempts  = "dlq.attempts"
	// HeaderReplayedFrom marks a message put back on its topic from the
	// DLQ: "<dlq topic>/<partition>/<offset>".
	HeaderReplayedFrom = "replayed_from"
	// HeaderReplayFor names the one consumer group a replayed dead letter
	// is for (the group that dead-lettered it): the other groups applied
	// it already and skip it, so a poison record does not come back as one
	// new dead letter per group.
	HeaderReplayFor = "replay_for"
)

// PartitionOffsets is one partition's position for a consumer group.
type PartitionOffsets struct {
	Topic     string `json:"topic"`
	Partition int32  `json:"partition"`
	// Committed is the group's next offset to read; -1 when it never committed.
	Committed int64 `json:"current_offset"`
	Start     int64 `json:"log_start_offset"`
	End       int64 `json:"log_end_offset"`
	Lag       int64 `json:"lag"`
	// Consumer is the group member consuming the partition now (Kafka's
	// member id, or the embedded log's lease holder); "" when none.
	Consumer string `json:"consumer_id"`
}

// BusAdmin is what operators need of a bus beyond EventBus: the runbook's
// kafka-consumer-groups --describe / --reset-offsets and reading a DLQ.
type BusAdmin interface {
	// Offsets describes group's position on every partition of topics.
	Offsets(ctx context.Context, group string, topics []string) ([]PartitionOffsets, error)
	// ResetOffset sets group's next offset on one partition. The group's
	// members must be stopped (as with kafka-consumer-groups --execute).
	// EINVALID for a group longer than MaxGroupName or a topic longer than
	// MaxTopicName (never stored truncated).
	ResetOffset(ctx context.Context, group, topic string, partition int32, offset int64) error
	// Read returns up to max messages of topic, partition by partition from
	// the start of the log.
	Read(ctx context.Context, topic string, max int) ([]Message, error)
}

// DecodeEvent decodes a bus message carrying an Event. A message that is
// not one fails with EINVALID ("schema mismatch") and will be dead-lettered.
func DecodeEvent(m Message) (Event, error) {
	var e Event
	if err := json.Unmarshal(m.Value, &e); err != nil {
		return e, Errorf(EINVALID, "schema mismatch: %v", err)
	}
	if e.ID == "" || e.Type == "" {
		return e, Errorf(EINVALID, "schema mismatch: %v", errors.New("event_id and event_type are required"))
	}
	return e, nil
}
