package smp

import "time"

// PaymentFailed: the provider reported a failed payment attempt; the order
// can still be paid.
const PaymentFailed PaymentStatus = "failed"

// paymentRank orders payment states so that applying provider events in
// any order ends in the same state: a later state never goes back.
var paymentRank = map[PaymentStatus]int{PaymentPending: 0, PaymentFailed: 1, PaymentPaid: 2, PaymentRefunded: 3}

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
