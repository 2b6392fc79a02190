package smp

import (
	"context"
	"time"
)

// PaymentFailed: the provider reported a failed payment attempt; the order
// can still be paid.
const PaymentFailed PaymentStatus = "failed"

// paymentRank orders payment states so that applying provider events in
// any order ends in the same state: a later state never goes back.
var paymentRank = map[PaymentStatus]int{PaymentPending: 0, PaymentFailed: 1, PaymentPaid: 2, PaymentRefundRequired: 3, PaymentRefunded: 4}

// NextPaymentStatus is the status after applying to, from cur: the
// higher of the two, so duplicated and reordered events converge.
func NextPaymentStatus(cur, to PaymentStatus) PaymentStatus {
	if paymentRank[to] > paymentRank[cur] {
		return to
	}
	return cur
}

// Payment event types: inside's webhooks, and SMP's own on payments.events.
const (
	InsidePaymentSucceeded = "inside.payment.succeeded"
	InsidePaymentFailed    = "inside.payment.failed"
	InsidePaymentRefunded  = "inside.payment.refunded"

	EventPaymentChanged = "payment.status_changed"
)

// PaymentEventData is the payload of payment.status_changed.
type PaymentEventData struct {
	OrderID   string        `json:"order_id"`
	From      PaymentStatus `json:"from"`
	To        PaymentStatus `json:"to"`
	AmountVND int64         `json:"amount_vnd"`
	Source    string        `json:"source"` // the provider event id, or "manual"
	Actor     string        `json:"actor"`
	Reason    string        `json:"reason,omitempty"`
}

// InboxStatus is where a received provider event stands.
type InboxStatus string

// Inbox statuses, as the runbook queries them.
const (
	InboxReceived  InboxStatus = "received"
	InboxProcessed InboxStatus = "processed"
	InboxDLQ       InboxStatus = "dlq"
)

// InboxEvent is a provider webhook kept in event_log: stored before the
// provider gets its 2xx, then processed asynchronously.
type InboxEvent struct {
	EventID       string      `json:"event_id"`
	Provider      string      `json:"provider"`
	EventType     string      `json:"event_type"`
	OrderID       string      `json:"order_id"`
	AmountVND     int64       `json:"amount_vnd"`
	OccurredAt    time.Time   `json:"occurred_at"`
	BodyHash      string      `json:"body_sha256"`
	Body          string      `json:"body"`
	Status        InboxStatus `json:"status"`
	Attempts      int         `json:"attempts"`
	LastError     string      `json:"last_error,omitempty"`
	ReceivedAt    time.Time   `json:"received_at"`
	NextAttemptAt time.Time   `json:"next_attempt_at"`
	ProcessedAt   *time.Time  `json:"processed_at,omitempty"`
}

// InboxFilter selects inbox events.
type InboxFilter struct {
	Status    InboxStatus
	EventType string
	OrderID   string
	Limit     int
}

// InboxStore is the provider event inbox (event_log): webhooks stored
// before they are acknowledged, processed later, with retries and a DLQ.
type InboxStore interface {
	// InsertInboxEvent stores a received event. If one with the same
	// EventID exists it is returned with inserted false and nothing is
	// written (the caller compares body hashes: the same body is a
	// duplicate, another a conflict). No codes.
	InsertInboxEvent(ctx context.Context, e *InboxEvent) (existing *InboxEvent, inserted bool, err error)
	// FindInboxEvent reads one event as last committed; ENOTFOUND if
	// unknown.
	FindInboxEvent(ctx context.Context, eventID string) (*InboxEvent, error)
	// FindInboxEvents lists events matching f, newest received first. A
	// Limit of 0, negative or above 10000 means 100. No codes.
	FindInboxEvents(ctx context.Context, f InboxFilter) ([]*InboxEvent, error)
	// DueInboxEvents lists at most limit received events whose next
	// attempt is at or before now, soonest first; EINVALID if limit is
	// not positive.
	DueInboxEvents(ctx context.Context, now time.Time, limit int) ([]*InboxEvent, error)
	// CountInboxEvents counts events per status (statuses with none are
	// absent). No codes.
	CountInboxEvents(ctx context.Context) (map[InboxStatus]int64, error)
}

// InboxTx is the inbox writes of a transaction (with the payment they
// apply).
type InboxTx interface {
	// AddInboxEvent is InboxStore.InsertInboxEvent in the transaction: an
	// event stored with its effect (a VNPay IPN is answered only once both
	// are committed). No codes.
	AddInboxEvent(ctx context.Context, e *InboxEvent) (existing *InboxEvent, inserted bool, err error)
	// InboxEventForUpdate reads an event and locks it for the rest of the
	// tx; ENOTFOUND if unknown.
	InboxEventForUpdate(ctx context.Context, eventID string) (*InboxEvent, error)
	// UpdateInboxEvent writes an event's processing state (status,
	// attempts, last error, next attempt, processed at). No codes.
	UpdateInboxEvent(ctx context.Context, e *InboxEvent) error
}

// ValidPaymentStatus reports whether s is one of the payment statuses.
func ValidPaymentStatus(s PaymentStatus) bool {
	_, ok := paymentRank[s]
	return ok
}
