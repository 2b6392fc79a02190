package payments

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"strconv"
	"time"

	"github.com/google/uuid"
	"github.com/prometheus/client_golang/prometheus"

	"smp"
	"smp/internal/startstop"
)

// Provider is the payment provider whose webhooks this service takes.
const Provider = "inside"

// Config of the payment service.
type Config struct {
	// Secrets verify webhook signatures (SMP_INSIDE_WEBHOOK_SECRET,
	// comma-separated); with none, every webhook is refused.
	Secrets [][]byte
	// MaxAttempts of processing before an event goes to status dlq (default 5).
	MaxAttempts int
	// Backoff is the first retry delay, doubled per attempt up to 5 minutes (default 1 s).
	Backoff time.Duration
	// PollInterval: how often the processor looks for due events written by
	// other processes (default 500 ms; this process's own wake it at once).
	PollInterval time.Duration
	// Webhooks: this process serves inside's webhooks (integration-svc);
	// it then exports smp_webhook_secret_configured.
	Webhooks bool
	// PaymentDueAfter: a completed order still unpaid after this counts in
	// order_payment_pending_count (default 15 minutes).
	PaymentDueAfter time.Duration
	Now             func() time.Time
	Logger          *slog.Logger
	Registerer      prometheus.Registerer
}

// Store is what the payment service needs of the system of record: the
// provider event inbox, and transactions in which an event, its order's
// payment status, the outbox event and the audit entry commit together.
type Store interface {
	smp.Transactor
	smp.InboxStore
	// CountPaymentOverdue is smp.OrderStore's.
	CountPaymentOverdue(ctx context.Context, before time.Time) (int64, error)
}

// Service ingests, processes and replays payment events.
type Service struct {
	store Store
	cfg   Config
	log   *slog.Logger
	wake  chan struct{}

	requests   *prometheus.CounterVec
	sigFails   *prometheus.CounterVec
	conflicts  prometheus.Counter
	procErrors *prometheus.CounterVec
	applied    *prometheus.CounterVec
	recent     window

	startstop.Base
}

// New returns the service; Start runs its processor.
func New(store Store, cfg Config) (*Service, error) {
	if cfg.MaxAttempts <= 0 {
		cfg.MaxAttempts = 5
	}
	if cfg.Backoff <= 0 {
		cfg.Backoff = time.Second
	}
	if cfg.PollInterval <= 0 {
		cfg.PollInterval = 500 * time.Millisecond
	}
	if cfg.PaymentDueAfter <= 0 {
		cfg.PaymentDueAfter = 15 * time.Minute
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	s := &Service{store: store, cfg: cfg, log: cfg.Logger, wake: make(chan struct{}, 1),
		requests: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "webhook_requests_total",
			Help: "Payment webhook requests by provider and HTTP status code (the 5xx rate alert of INC-002)."}, []string{"provider", "code"}),
		sigFails: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "smp_webhook_signature_failures_total",
			Help: "Webhooks refused for their signature, by reason."}, []string{"provider", "reason"}),
		conflicts: prometheus.NewCounter(prometheus.CounterOpts{Name: "smp_webhook_event_conflicts_total",
			Help: "Webhooks that reused a stored event_id with a different body (an alarm: the provider or an attacker)."}),
		procErrors: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "webhook_processing_errors_total",
			Help: "Failed attempts to apply a stored payment event, by reason."}, []string{"provider", "reason"}),
		applied: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "smp_payments_applied_total",
			Help: "Payment events processed, by the event type."}, []string{"event_type"}),
	}
	if cfg.Registerer != nil {
		for _, c := range []prometheus.Collector{s.requests, s.sigFails, s.conflicts, s.procErrors, s.applied, &collector{s}} {
			if err := cfg.Registerer.Register(c); err != nil {
				return nil, err
			}
		}
	}
	return s, nil
}

// CountRequest records a webhook request's HTTP status.
func (s *Service) CountRequest(code int) {
	s.requests.WithLabelValues(Provider, strconv.Itoa(code)).Inc()
	s.recent.add(s.cfg.Now(), code >= 500)
}

// Ingested says what became of a webhook.
type Ingested struct {
	Status  string `json:"status"` // "received", "duplicate" or "test"
	EventID string `json:"event_id,omitempty"`
}

// Ingest verifies, checks and durably stores a webhook. It returns only
// once the event is committed to event_log (so a 2xx means it is kept).
// Errors: EUNAUTHORIZED for the signature (nothing stored), EINVALID for
// the body, ECONFLICT for an event_id reused with another body,
// EUNAVAILABLE when no secret is configured.
func (s *Service) Ingest(ctx context.Context, signature string, body []byte) (Ingested, error) {
	if len(s.cfg.Secrets) == 0 {
		return Ingested{}, smp.Errorf(smp.EUNAVAILABLE, "webhook secret not configured (SMP_INSIDE_WEBHOOK_SECRET)")
	}
	now := s.cfg.Now()
	if err := Verify(signature, body, s.cfg.Secrets, now); err != nil {
		s.sigFails.WithLabelValues(Provider, err.Error()).Inc()
		s.log.Warn("payment webhook: signature refused", "provider", Provider, "reason", err.Error(), "bytes", len(body))
		return Ingested{}, smp.Errorf(smp.EUNAUTHORIZED, "invalid signature: %v", err)
	}
	w, test, err := Parse(body)
	if err != nil {
		return Ingested{}, err
	}
	if test {
		return Ingested{Status: "test"}, nil
	}
	sum := sha256.Sum256(body)
	ev := &smp.InboxEvent{EventID: w.EventID, Provider: Provider, EventType: w.EventType, OrderID: w.OrderID, AmountVND: w.AmountVND,
		OccurredAt: w.OccurredAt.UTC(), BodyHash: hex.EncodeToString(sum[:]), Body: string(body), Status: smp.InboxReceived,
		ReceivedAt: now.UTC(), NextAttemptAt: now.UTC()}
	existing, inserted, err := s.store.InsertInboxEvent(ctx, ev)
	if err != nil {
		return Ingested{}, err
	}
	if !inserted {
		if existing.BodyHash != ev.BodyHash {
			s.conflicts.Inc()
			s.log.Warn("payment webhook: event_id reused with a different body", "provider", Provider, "event_id", w.EventID,
				"stored_sha256", existing.BodyHash, "received_sha256", ev.BodyHash)
			return Ingested{}, smp.Errorf(smp.ECONFLICT, "event %s was already received with a different body", w.EventID)
		}
		return Ingested{Status: "duplicate", EventID: w.EventID}, nil
	}
	s.Wake()
	return Ingested{Status: "received", EventID: w.EventID}, nil
}

// Wake makes the processor look for due events now.
func (s *Service) Wake() {
	select {
	case s.wake <- struct{}{}:
	default:
	}
}

// Start runs the processor until Stop (from startstop.Base: it waits for
// the processor, bounded by its context); idempotent.
func (s *Service) Start(ctx context.Context) error {
	ctx, ok := s.StartInit(ctx)
	if !ok {
		return nil
	}
	s.Go(func() { s.run(ctx) })
	s.MarkStarted()
	return nil
}

func (s *Service) run(ctx context.Context) {
	t := time.NewTicker(s.cfg.PollInterval)
	defer t.Stop()
	for {
		if _, err := s.ProcessDue(ctx); err != nil && ctx.Err() == nil {
			s.log.Warn("payments: processing pass failed", "err", err)
		}
		select {
		case <-ctx.Done():
			return
		case <-s.wake:
		case <-t.C:
		}
	}
}

// ProcessDue processes every due event once and returns how many it
// processed successfully.
func (s *Service) ProcessDue(ctx context.Context) (int, error) {
	n := 0
	for ctx.Err() == nil {
		due, err := s.store.DueInboxEvents(ctx, s.cfg.Now(), 100)
		if err != nil {
			return n, err
		}
		for _, e := range due {
			if s.process(ctx, e.EventID) {
				n++
			}
		}
		if len(due) < 100 {
			return n, nil
		}
	}
	return n, ctx.Err()
}

// failure is why an event could not be applied. Permanent failures go to
// dlq at once: retrying cannot fix them.
type failure struct {
	reason    string // label of webhook_processing_errors_total
	permanent bool
	msg       string
}

func (f *failure) Error() string { return f.msg }

func failed(reason string, permanent bool, format string, args ...any) error {
	return &failure{reason, permanent, fmt.Sprintf(format, args...)}
}

// process applies one event; on failure it records the attempt, the
// error and the next try (or dlq). It reports success.
func (s *Service) process(ctx context.Context, eventID string) bool {
	var applied string
	err := s.store.InTx(ctx, func(tx smp.Tx) error {
		e, err := tx.InboxEventForUpdate(ctx, eventID)
		if err != nil {
			return err
		}
		if e.Status != smp.InboxReceived {
			applied = "" // another process got there first
			return nil
		}
		if err := s.apply(ctx, tx, e); err != nil {
			return err
		}
		now := s.cfg.Now().UTC()
		e.Status, e.Attempts, e.LastError, e.ProcessedAt = smp.InboxProcessed, e.Attempts+1, "", &now
		applied = e.EventType
		return tx.UpdateInboxEvent(ctx, e)
	})
	if err == nil {
		if applied != "" {
			s.applied.WithLabelValues(applied).Inc()
		}
		return true
	}
	if ctx.Err() != nil {
		return false
	}
	s.recordFailure(ctx, eventID, err)
	return false
}

func (s *Service) apply(ctx context.Context, tx smp.Tx, e *smp.InboxEvent) error {
	to := statusFor[e.EventType]
	if to == "" {
		return failed("schema_mismatch", true, "schema mismatch: unknown event_type %q", e.EventType)
	}
	o, err := tx.OrderForUpdate(ctx, e.OrderID)
	if smp.ErrorCode(err) == smp.ENOTFOUND {
		return failed("order_not_found", false, "order not found: %s", e.OrderID)
	} else if err != nil {
		return err
	}
	switch {
	case e.EventType == smp.InsidePaymentSucceeded && e.AmountVND != o.PriceVND:
		return failed("amount_mismatch", true, "amount mismatch: paid %d VND, order %s costs %d VND", e.AmountVND, o.ID, o.PriceVND)
	case e.EventType == smp.InsidePaymentRefunded && e.AmountVND > o.PriceVND:
		return failed("amount_mismatch", true, "amount mismatch: refund of %d VND exceeds the order's %d VND", e.AmountVND, o.PriceVND)
	}
	if to == smp.PaymentPaid && o.Stage == smp.StageCancelled {
		// Money for an order nobody will serve: the refund path, never paid.
		to = smp.PaymentRefundRequired
	}
	return s.setStatus(ctx, tx, o, to, e.AmountVND, e.EventID, smp.SystemActor("payments"), e.EventType)
}

// setStatus moves o's payment status toward to (never back: see
// smp.NextPaymentStatus) with its outbox event, in tx.
func (s *Service) setStatus(ctx context.Context, tx smp.Tx, o *smp.Order, to smp.PaymentStatus, amount int64, source string, actor smp.Actor, reason string) error {
	next := smp.NextPaymentStatus(o.PaymentStatus, to)
	if next == o.PaymentStatus {
		return nil // already there or past it: a duplicate or a late event
	}
	from := o.PaymentStatus
	o.PaymentStatus = next
	if err := tx.UpdateOrder(ctx, o); err != nil {
		return err
	}
	data, _ := json.Marshal(smp.PaymentEventData{OrderID: o.ID, From: from, To: next, AmountVND: amount, Source: source, Actor: actor.String(), Reason: reason})
	return tx.AddEvent(ctx, smp.Event{ID: "evt_" + uuid.NewString(), Type: smp.EventPaymentChanged, SchemaVersion: smp.EventSchemaVersion,
		AggregateID: o.ID, OccurredAt: s.cfg.Now().UTC(), Data: data})
}

func (s *Service) recordFailure(ctx context.Context, eventID string, cause error) {
	why, perm := "internal", false
	var f *failure
	if errors.As(cause, &f) {
		why, perm = f.reason, f.permanent
	}
	s.procErrors.WithLabelValues(Provider, why).Inc()
	err := s.store.InTx(ctx, func(tx smp.Tx) error {
		e, err := tx.InboxEventForUpdate(ctx, eventID)
		if err != nil || e.Status != smp.InboxReceived {
			return err
		}
		e.Attempts++
		e.LastError = cause.Error()
		if perm || e.Attempts >= s.cfg.MaxAttempts {
			e.Status = smp.InboxDLQ
		} else {
			d := s.cfg.Backoff << (e.Attempts - 1)
			e.NextAttemptAt = s.cfg.Now().UTC().Add(min(d, 5*time.Minute))
		}
		if e.Status == smp.InboxDLQ {
			s.log.Error("payment event dead-lettered", "event_id", e.EventID, "event_type", e.EventType, "order_id", e.OrderID, "attempts", e.Attempts, "err", cause)
		} else {
			s.log.Warn("payment event failed; will retry", "event_id", e.EventID, "order_id", e.OrderID, "attempt", e.Attempts, "next_attempt_at", e.NextAttemptAt, "err", cause)
		}
		return tx.UpdateInboxEvent(ctx, e)
	})
	if err != nil && ctx.Err() == nil {
		s.log.Error("payments: recording a failed attempt", "event_id", eventID, "err", err)
	}
}

// Replay puts a dead-lettered event back to received, audited, and
// processes it now. It is idempotent: an event that is not in dlq is left
// as it is (replayed false). ENOTFOUND for an unknown event.
func (s *Service) Replay(ctx context.Context, eventID string, p smp.Principal, why string) (ev *smp.InboxEvent, replayed bool, err error) {
	if why == "" {
		why = "replay from DLQ"
	}
	err = s.store.InTx(ctx, func(tx smp.Tx) error {
		e, err := tx.InboxEventForUpdate(ctx, eventID)
		if err != nil {
			return err
		}
		ev = e
		if e.Status != smp.InboxDLQ {
			return nil
		}
		before := fmt.Sprintf(`{"status":%q,"attempts":%d,"last_error":%q}`, e.Status, e.Attempts, e.LastError)
		now := s.cfg.Now().UTC()
		e.Status, e.Attempts, e.NextAttemptAt = smp.InboxReceived, 0, now
		replayed = true
		if err := tx.UpdateInboxEvent(ctx, e); err != nil {
			return err
		}
		return tx.AddAudit(ctx, smp.AuditEntry{At: now, Actor: p.Name, Role: p.Role, Action: "event.replay", Target: "event:" + eventID,
			Before: before, After: `{"status":"received"}`, Reason: why})
	})
	if err != nil || !replayed {
		return ev, replayed, err
	}
	s.process(ctx, eventID)
	ev, err = s.store.FindInboxEvent(ctx, eventID)
	return ev, true, err
}

// ReplayAll replays every dead-lettered event matching f (status is
// forced to dlq), at most 1000 per call, and returns how many were replayed.
func (s *Service) ReplayAll(ctx context.Context, f smp.InboxFilter, p smp.Principal, why string) (int, error) {
	f.Status = smp.InboxDLQ
	if f.Limit <= 0 || f.Limit > 1000 {
		f.Limit = 1000
	}
	evs, err := s.store.FindInboxEvents(ctx, f)
	if err != nil {
		return 0, err
	}
	n := 0
	for _, e := range evs {
		_, ok, err := s.Replay(ctx, e.EventID, p, why)
		if err != nil {
			return n, err
		}
		if ok {
			n++
		}
	}
	return n, nil
}

// MarkPaid is the runbook's INC-002 option B: finance marks an order paid
// after reconciling with inside, with a reason, audited. Idempotent:
// an order already paid (or refunded) is returned unchanged.
func (s *Service) MarkPaid(ctx context.Context, orderID string, p smp.Principal, why string) (o *smp.Order, changed bool, err error) {
	if len(why) < 3 {
		return nil, false, smp.Errorf(smp.EINVALID, "a reason is required to mark an order paid")
	}
	err = s.store.InTx(ctx, func(tx smp.Tx) error {
		o, err = tx.OrderForUpdate(ctx, orderID)
		if err != nil {
			return err
		}
		if o.Stage == smp.StageCancelled {
			return smp.Errorf(smp.ECONFLICT, "order %s is cancelled", o.ID)
		}
		before := o.PaymentStatus
		if smp.NextPaymentStatus(before, smp.PaymentPaid) == before {
			return nil
		}
		actor := smp.Actor{Kind: string(p.Role), ID: p.Name, Role: p.Role}
		if err := s.setStatus(ctx, tx, o, smp.PaymentPaid, o.PriceVND, "manual", actor, why); err != nil {
			return err
		}
		changed = true
		return tx.AddAudit(ctx, smp.AuditEntry{At: s.cfg.Now().UTC(), Actor: p.Name, Role: p.Role, Action: "order.mark_paid", Target: "order:" + o.ID,
			Before: fmt.Sprintf(`{"payment_status":%q}`, before), After: `{"payment_status":"paid"}`, Reason: why})
	})
	return o, changed, err
}

type collector struct{ s *Service }

var (
	eventsDesc  = prometheus.NewDesc("smp_event_log_events", "Provider events in event_log by status (received, processed, dlq).", []string{"status"}, nil)
	pendingDesc = prometheus.NewDesc("order_payment_pending_count", "Completed orders whose payment is overdue (still pending or failed).", nil, nil)
)

func (c *collector) Describe(ch chan<- *prometheus.Desc) {
	ch <- eventsDesc
	ch <- pendingDesc
	ch <- windowDesc
	ch <- secretDesc
}

func (c *collector) Collect(ch chan<- prometheus.Metric) {
	all, fives := c.s.recent.counts(c.s.cfg.Now())
	ch <- prometheus.MustNewConstMetric(windowDesc, prometheus.GaugeValue, float64(all), "all")
	ch <- prometheus.MustNewConstMetric(windowDesc, prometheus.GaugeValue, float64(fives), "5xx")
	if c.s.cfg.Webhooks {
		set := 0.0
		if len(c.s.cfg.Secrets) > 0 {
			set = 1
		}
		ch <- prometheus.MustNewConstMetric(secretDesc, prometheus.GaugeValue, set)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	counts, err := c.s.store.CountInboxEvents(ctx)
	if err != nil {
		ch <- prometheus.NewInvalidMetric(eventsDesc, err)
	} else {
		for _, st := range []smp.InboxStatus{smp.InboxReceived, smp.InboxProcessed, smp.InboxDLQ} {
			ch <- prometheus.MustNewConstMetric(eventsDesc, prometheus.GaugeValue, float64(counts[st]), string(st))
		}
	}
	n, err := c.s.store.CountPaymentOverdue(ctx, c.s.cfg.Now().Add(-c.s.cfg.PaymentDueAfter))
	if err != nil {
		ch <- prometheus.NewInvalidMetric(pendingDesc, err)
		return
	}
	ch <- prometheus.MustNewConstMetric(pendingDesc, prometheus.GaugeValue, float64(n))
}

// SignatureFailures, Conflicts and ProcessingErrors expose counters to tests and checks.
func (s *Service) SignatureFailures(reason string) prometheus.Counter {
	return s.sigFails.WithLabelValues(Provider, reason)
}

// Conflicts counts event ids reused with another body.
func (s *Service) Conflicts() prometheus.Counter { return s.conflicts }

// ProcessingErrors counts failed attempts by reason.
func (s *Service) ProcessingErrors(reason string) prometheus.Counter {
	return s.procErrors.WithLabelValues(Provider, reason)
}
