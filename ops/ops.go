// Package ops holds every operator action the runbook names, as use cases
// that take who acts (a principal), why (a reason) and when (the injected
// clock), check the principal's permission (auth.Permissions) and leave
// an audit entry:
//
//   - where the effect is in the database (flag changes, manual dispatch,
//     mark paid, provider-event replay, status-page states), the entry
//     commits in the effect's own transaction: both or neither. Those
//     effects live in their services (flags, dispatch/orders, payments,
//     status), which write the entry; ops routes to them.
//   - where the effect is outside the database (bus offsets and dead
//     letters, the Redis cache, the in-memory circuit breakers), the
//     intent is committed before the effect is attempted and the outcome
//     (done, or failed with the error) after: an action can never happen
//     unrecorded, and a failure is on record too.
//
// The admin API (httpapi) and smp ctl, with or without --server, call
// these use cases; nothing else performs an operator action.
package ops

import (
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"slices"
	"strings"
	"time"

	"smp"
	"smp/auth"
	"smp/bus"
	"smp/flags"
	"smp/integrations"
	"smp/wallet"
)

// Store is what ops writes itself: audit entries of external effects.
type Store interface {
	smp.Transactor
}

// Flags changes feature flags with their audit entry (flags.Service).
type Flags interface {
	Set(ctx context.Context, name string, value bool, p smp.Principal, reason string) (flags.Flag, error)
}

// Payments replays provider events and marks orders paid, each with its
// audit entry (payments.Service).
type Payments interface {
	Replay(ctx context.Context, eventID string, p smp.Principal, why string) (*smp.InboxEvent, bool, error)
	ReplayAll(ctx context.Context, f smp.InboxFilter, p smp.Principal, why string) (int, error)
	MarkPaid(ctx context.Context, orderID string, p smp.Principal, why string) (*smp.Order, bool, error)
}

// Wallets posts manual adjustments and sets wallet floors, each with its
// audit entry in the same transaction (wallet.Service).
type Wallets interface {
	Adjust(ctx context.Context, p smp.Principal, id, partnerID string, amountVND int64, reason string, expectedDiff *int64) (wallet.Posted, error)
	SetFloor(ctx context.Context, p smp.Principal, partnerID string, floorVND int64, reason string) (*wallet.Wallet, error)
	ReplayGateway(ctx context.Context, gateway string, from, to time.Time, actor string) (wallet.ReplayResult, error)
	// Enforcement (INC-011): each audited in the control's transaction.
	Freeze(ctx context.Context, p smp.Principal, partnerID, reason string) (*wallet.ControlResult, error)
	Unfreeze(ctx context.Context, p smp.Principal, partnerID, note string) (*wallet.ControlResult, error)
	SoftBlock(ctx context.Context, p smp.Principal, partnerID, reason string) (*wallet.ControlResult, error)
	LiftSoftBlock(ctx context.Context, p smp.Principal, partnerID, reason string) (*wallet.ControlResult, error)
	ReleaseHeld(ctx context.Context, p smp.Principal, partnerID, ref, reason string) (*wallet.HeldResult, error)
	ReverseHeld(ctx context.Context, p smp.Principal, partnerID, ref, reason string) (*wallet.HeldResult, error)
}

// Status sets a status-page component's state, and records the alerts
// that degrade components, with their audit entries (status.Service).
type Status interface {
	Set(ctx context.Context, p smp.Principal, component string, state smp.ComponentState, message, reason string) (smp.ComponentStatus, error)
	RecordAlerts(ctx context.Context, p smp.Principal, alerts []smp.Alert) (int, error)
}

// Dispatcher assigns an order by hand with its audit entry (dispatch.Engine).
type Dispatcher interface {
	ManualAssign(ctx context.Context, orderID, techID string, p smp.Principal, reason string, override bool) (*smp.Order, error)
}

// Breaker is one integration's circuit breaker (integrations.Client).
type Breaker interface {
	Name() string
	Status() integrations.Status
	HalfOpen()
}

// Publisher puts messages on the bus (smp.EventBus).
type Publisher interface {
	Publish(ctx context.Context, msgs ...smp.Message) error
}

// Config of the operations. Store is required; every other dependency may
// be nil when this process does not have it, and the actions that need it
// then fail with EUNAVAILABLE.
type Config struct {
	Store Store
	// Now is the clock of the entries ops writes (time.Now by default).
	Now    func() time.Time
	Logger *slog.Logger

	Flags    Flags
	Payments Payments
	Wallets  Wallets
	// Recon runs the wallets' reconciliation (package recon).
	Recon    Recon
	Status   Status
	Dispatch Dispatcher
	// MasterData edits the master-data tables (issue 21).
	MasterData MasterData
	// Regions is replication's state in this region (issue 21).
	Regions Regions
	// ReadModel is the read model's operations (INC-009); nil where the
	// Connect worker does not run.
	ReadModel ReadModel
	Breakers  []Breaker
	// Sessions are customers' and technicians' logins (revocations are
	// audited: ops/logins.go); Technicians sets their settings.
	Sessions    Sessions
	Technicians Technicians
	// LoggedOut, when set, is told of an owner whose sessions were
	// revoked (the app closes the technician's live WebSocket).
	LoggedOut func(ownerKind, ownerID string)

	Bus      Publisher
	BusAdmin smp.BusAdmin
	// Groups are SMP's consumer groups and the topics each reads
	// (app.Subscriptions): the only offsets ResetOffset moves.
	Groups []bus.Subscription
	// FlushCache deletes cache keys matching a pattern (redisstore's SCAN +
	// UNLINK); CheckFlushPattern is its guard (redisstore.CheckFlushPattern),
	// checked before the intent is recorded.
	FlushCache        func(ctx context.Context, pattern string, dryRun bool) (int64, error)
	CheckFlushPattern func(pattern string) error
}

// Service runs the operator actions.
type Service struct {
	cfg Config
	log *slog.Logger
}

// New returns the operations; EINVALID without a store.
func New(cfg Config) (*Service, error) {
	if cfg.Store == nil {
		return nil, smp.Errorf(smp.EINVALID, "ops: a store is required")
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	return &Service{cfg: cfg, log: cfg.Logger.With("service", "ops")}, nil
}

// needReason is EINVALID for a reason shorter than 3 characters (msg) or
// longer than its column.
func needReason(reason, msg string) error {
	if len(strings.TrimSpace(reason)) < 3 {
		return smp.Errorf(smp.EINVALID, "%s", msg)
	}
	return checkReason(reason)
}

// checkReason is EINVALID for a reason longer than smp.MaxReason: checked
// before anything is done, even by actions that may do nothing.
func checkReason(reason string) error {
	return smp.CheckLen("reason", strings.TrimSpace(reason), smp.MaxReason)
}

// SetFlag changes a feature flag (runbook INC-001 option D:
// ENABLE_AUTO_DISPATCH; INC-005 option B: INTEGRATION_BYPASS_CIRCUIT),
// audited in the same transaction. EFORBIDDEN, ENOTFOUND for an unknown
// flag, EINVALID without a reason.
func (s *Service) SetFlag(ctx context.Context, p smp.Principal, name string, value bool, reason string) (flags.Flag, error) {
	if err := auth.Check(p, "flags.set"); err != nil {
		return flags.Flag{}, err
	}
	if err := checkReason(reason); err != nil {
		return flags.Flag{}, err
	}
	if s.cfg.Flags == nil {
		return flags.Flag{}, smp.Errorf(smp.EUNAVAILABLE, "feature flags are not served in this process")
	}
	return s.cfg.Flags.Set(ctx, name, value, p, reason)
}

// BypassCircuit turns INTEGRATION_BYPASS_CIRCUIT on or off (runbook INC-005
// option B: calls go to inside and wms without the breaker, and users see
// actual errors), as SetFlag.
func (s *Service) BypassCircuit(ctx context.Context, p smp.Principal, on bool, reason string) (flags.Flag, error) {
	return s.SetFlag(ctx, p, smp.FlagIntegrationBypassCircuit, on, reason)
}

// SetComponentStatus sets a status-page component's state (runbook
// "Communicate": Dispatch → Degraded …), audited in the same transaction.
// EFORBIDDEN; EINVALID for an unknown component or state or a missing reason.
func (s *Service) SetComponentStatus(ctx context.Context, p smp.Principal, component string, state smp.ComponentState, message, reason string) (smp.ComponentStatus, error) {
	if err := auth.Check(p, "status.set"); err != nil {
		return smp.ComponentStatus{}, err
	}
	if err := checkReason(reason); err != nil {
		return smp.ComponentStatus{}, err
	}
	if s.cfg.Status == nil {
		return smp.ComponentStatus{}, smp.Errorf(smp.EUNAVAILABLE, "the status page is not served in this process")
	}
	return s.cfg.Status.Set(ctx, p, component, state, message, reason)
}

// RecordAlerts records the alerts Alertmanager delivered (firing ones
// degrade their status-page component), all or nothing, each change of an
// alert's status audited in the same transaction. Only the alert rules'
// alerts, labels and annotation templates pass (status.RecordAlerts).
// EFORBIDDEN for anyone but Alertmanager; EINVALID for what the rules do
// not allow.
func (s *Service) RecordAlerts(ctx context.Context, p smp.Principal, alerts []smp.Alert) (int, error) {
	if err := auth.Check(p, "alerts.receive"); err != nil {
		return 0, err
	}
	if p.Role != smp.RoleAlertmanager { // the admin role may do everything else, not this
		return 0, smp.Errorf(smp.EFORBIDDEN, "only Alertmanager may post alerts")
	}
	if s.cfg.Status == nil {
		return 0, smp.Errorf(smp.EUNAVAILABLE, "the status page is not served in this process")
	}
	return s.cfg.Status.RecordAlerts(ctx, p, alerts)
}

// Assign gives an order to a technician by hand (runbook INC-001 option C,
// manual dispatch), audited in the order's transaction. A technician who
// is offline, in another city or without the order's skill is refused
// with every reason said, unless override is set: then the assignment is
// made and its audit entry's reason records what was overridden.
// EFORBIDDEN; EINVALID without a technician or a reason, or for an unknown
// technician; ENOTFOUND for an unknown order; ECONFLICT when the order or
// the technician is no longer free, or the technician does not fit (and
// no override); EUNAVAILABLE without the engine.
func (s *Service) Assign(ctx context.Context, p smp.Principal, orderID, technicianID, reason string, override bool) (*smp.Order, error) {
	if err := auth.Check(p, "orders.assign"); err != nil {
		return nil, err
	}
	if s.cfg.Dispatch == nil {
		return nil, smp.Errorf(smp.EUNAVAILABLE, "the dispatch engine does not run in this process")
	}
	if strings.TrimSpace(technicianID) == "" {
		return nil, smp.Errorf(smp.EINVALID, "technician_id is required")
	}
	if err := needReason(reason, "reason is required for a manual assignment"); err != nil {
		return nil, err
	}
	return s.cfg.Dispatch.ManualAssign(ctx, orderID, technicianID, p, reason, override)
}

// MarkPaid marks an order paid after finance reconciled it with inside
// (runbook INC-002 option B), audited in the order's transaction;
// idempotent (changed is false for an order already paid). EFORBIDDEN,
// EINVALID without a reason, ENOTFOUND, ECONFLICT for a cancelled order.
func (s *Service) MarkPaid(ctx context.Context, p smp.Principal, orderID, reason string) (o *smp.Order, changed bool, err error) {
	if err := auth.Check(p, "orders.mark_paid"); err != nil {
		return nil, false, err
	}
	if err := checkReason(reason); err != nil {
		return nil, false, err
	}
	if s.cfg.Payments == nil {
		return nil, false, smp.Errorf(smp.EUNAVAILABLE, "payments are not served in this process")
	}
	return s.cfg.Payments.MarkPaid(ctx, orderID, p, strings.TrimSpace(reason))
}

// ReplayEvent puts a dead-lettered provider event back to processing
// (runbook INC-002 option A, POST /admin/events/{id}/replay), audited in
// the same transaction; idempotent (replayed is false for an event not in
// dlq). The reason may be empty ("replay from DLQ"). EFORBIDDEN, ENOTFOUND.
func (s *Service) ReplayEvent(ctx context.Context, p smp.Principal, eventID, reason string) (ev *smp.InboxEvent, replayed bool, err error) {
	if err := auth.Check(p, "events.replay"); err != nil {
		return nil, false, err
	}
	if err := checkReason(reason); err != nil {
		return nil, false, err
	}
	if s.cfg.Payments == nil {
		return nil, false, smp.Errorf(smp.EUNAVAILABLE, "payments are not served in this process")
	}
	return s.cfg.Payments.Replay(ctx, eventID, p, strings.TrimSpace(reason))
}

// ReplayEvents replays every dead-lettered provider event matching f, each
// as ReplayEvent, and returns how many were replayed. EFORBIDDEN, EINVALID
// without a reason.
func (s *Service) ReplayEvents(ctx context.Context, p smp.Principal, f smp.InboxFilter, reason string) (int, error) {
	if err := auth.Check(p, "events.replay"); err != nil {
		return 0, err
	}
	if s.cfg.Payments == nil {
		return 0, smp.Errorf(smp.EUNAVAILABLE, "payments are not served in this process")
	}
	if err := needReason(reason, "reason is required for a bulk replay"); err != nil {
		return 0, err
	}
	return s.cfg.Payments.ReplayAll(ctx, f, p, reason)
}

// DLQReplay names the bus dead letters to put back on their topic: those
// at Offsets ("partition:offset") of Topic (a "*.dlq" topic), or All.
type DLQReplay struct {
	Topic   string
	Offsets []string
	All     bool
}

// ReplayDeadLetters puts bus dead letters back on their topic (runbook
// INC-007 scenario 4; consumers dedupe by event id, so a letter replayed
// twice applies once) and returns how many. The intent is recorded before
// publishing, the outcome after. EFORBIDDEN; EINVALID for a topic that is
// not a dead-letter topic, neither or both of offsets and all, or no
// reason; ENOTFOUND for an offset holding no dead letter (nothing is
// replayed, nothing recorded); EUNAVAILABLE without a bus.
func (s *Service) ReplayDeadLetters(ctx context.Context, p smp.Principal, r DLQReplay, reason string) (int, error) {
	if err := auth.Check(p, "bus.dlq_replay"); err != nil {
		return 0, err
	}
	if s.cfg.BusAdmin == nil || s.cfg.Bus == nil {
		return 0, smp.Errorf(smp.EUNAVAILABLE, "no event bus in this process")
	}
	if err := smp.CheckLen("topic", r.Topic, smp.MaxTopicName); err != nil {
		return 0, err
	}
	switch {
	case !strings.HasSuffix(r.Topic, smp.DLQSuffix):
		return 0, smp.Errorf(smp.EINVALID, "topic %q is not a dead-letter topic", r.Topic)
	case r.All == (len(r.Offsets) > 0):
		return 0, smp.Errorf(smp.EINVALID, `give offsets ["partition:offset", ...] or all`)
	}
	if err := needReason(reason, "reason is required"); err != nil {
		return 0, err
	}
	// Reading changes nothing: the letters are chosen before the intent.
	msgs, err := s.cfg.BusAdmin.Read(ctx, r.Topic, 100000)
	if err != nil {
		return 0, err
	}
	out, missing := bus.SelectReplays(msgs, r.Topic, r.Offsets, r.All)
	if len(missing) > 0 {
		return 0, smp.Errorf(smp.ENOTFOUND, "no dead letter at %s in %s", strings.Join(missing, ", "), r.Topic)
	}
	// The intent names the letters (dlq topic/partition/offset), the first
	// maxListed of them: an entry's state is at most 64 KiB.
	var picked []string
	for _, m := range out[:min(len(out), maxListed)] {
		picked = append(picked, m.Headers[smp.HeaderReplayedFrom])
	}
	intent := map[string]any{"replay": len(out), "letters": picked}
	if len(out) > maxListed {
		intent["letters_not_listed"] = len(out) - maxListed
	}
	err = s.external(ctx, p, "bus.dlq_replay", "topic:"+r.Topic, "", reason, intent,
		func(ctx context.Context) (map[string]any, error) {
			if err := s.cfg.Bus.Publish(ctx, out...); err != nil {
				return nil, err
			}
			return map[string]any{"replayed": len(out)}, nil
		})
	if err != nil {
		return 0, err
	}
	return len(out), nil
}

// OffsetReset moves a consumer group's next offset on one partition.
type OffsetReset struct {
	Group     string
	Topic     string
	Partition int32
	Offset    int64
}

// ResetOffset is the runbook's kafka-consumer-groups --reset-offsets
// --execute (INC-007 scenario 4): the group's members must be stopped.
// The intent (with the group's committed offset before) is recorded before
// the reset, the outcome after. EFORBIDDEN; EINVALID for a missing group,
// topic, offset (negative) or reason, or an offset or partition the topic
// does not have, or for a group that is not one of Config.Groups or does
// not read the topic; ECONFLICT while the group consumes the partition;
// EUNAVAILABLE without a bus.
func (s *Service) ResetOffset(ctx context.Context, p smp.Principal, r OffsetReset, reason string) error {
	if err := auth.Check(p, "bus.reset_offsets"); err != nil {
		return err
	}
	if s.cfg.BusAdmin == nil {
		return smp.Errorf(smp.EUNAVAILABLE, "no event bus in this process")
	}
	const required = "group, topic, partition, offset and reason are required"
	if r.Group == "" || r.Topic == "" || r.Offset < 0 || r.Partition < 0 {
		return smp.Errorf(smp.EINVALID, required)
	}
	if err := needReason(reason, required); err != nil {
		return err
	}
	if err := s.checkSubscription(r.Group, r.Topic); err != nil {
		return err
	}
	before := ""
	if offs, err := s.cfg.BusAdmin.Offsets(ctx, r.Group, []string{r.Topic}); err == nil {
		for _, o := range offs {
			if o.Partition == r.Partition {
				before = jsonString(map[string]any{"topic": r.Topic, "partition": r.Partition, "offset": o.Committed})
			}
		}
	}
	want := map[string]any{"topic": r.Topic, "partition": r.Partition, "offset": r.Offset}
	return s.external(ctx, p, "bus.reset_offsets", "group:"+r.Group, before, reason, want,
		func(ctx context.Context) (map[string]any, error) {
			return want, s.cfg.BusAdmin.ResetOffset(ctx, r.Group, r.Topic, r.Partition, r.Offset)
		})
}

// checkSubscription is EINVALID unless group is one of SMP's consumer
// groups (Config.Groups) and reads topic: moving the offset of a group
// nobody runs, or of a topic it does not read, only leaves a stray
// position on the bus (and a typo would look like success).
func (s *Service) checkSubscription(group, topic string) error {
	if err := smp.CheckLen("group", group, smp.MaxGroupName); err != nil {
		return err
	}
	if err := smp.CheckLen("topic", topic, smp.MaxTopicName); err != nil {
		return err
	}
	var groups []string
	for _, sub := range s.cfg.Groups {
		groups = append(groups, sub.Group)
		if sub.Group != group {
			continue
		}
		if slices.Contains(sub.Topics, topic) {
			return nil
		}
		return smp.Errorf(smp.EINVALID, "group %s does not read topic %q: it reads %s", group, topic, strings.Join(sub.Topics, ", "))
	}
	return smp.Errorf(smp.EINVALID, "unknown consumer group %q: SMP's groups are %s", group, strings.Join(groups, ", "))
}

// FlushCache deletes the cache keys matching pattern with SCAN + UNLINK
// (runbook INC-004 option A) and returns how many. Only cache:* patterns
// pass the guard: sessions, locks and dispatch keys can never match. A dry
// run counts the keys, deletes nothing and records nothing; a real flush
// records the intent before and the outcome after. EFORBIDDEN; EINVALID for
// a refused pattern or a missing reason; EUNAVAILABLE without Redis.
func (s *Service) FlushCache(ctx context.Context, p smp.Principal, pattern string, dryRun bool, reason string) (int64, error) {
	if err := auth.Check(p, "redis.flush_cache"); err != nil {
		return 0, err
	}
	if err := smp.CheckLen("pattern", pattern, smp.MaxFlushPattern); err != nil {
		return 0, err
	}
	if s.cfg.FlushCache == nil {
		return 0, smp.Errorf(smp.EUNAVAILABLE, "no Redis in this deployment")
	}
	if !dryRun {
		if err := needReason(reason, "reason is required (a dry run needs none)"); err != nil {
			return 0, err
		}
	}
	if s.cfg.CheckFlushPattern != nil {
		if err := s.cfg.CheckFlushPattern(pattern); err != nil {
			return 0, smp.Errorf(smp.EINVALID, "%s", smp.ErrorMessage(err))
		}
	}
	if dryRun {
		return s.cfg.FlushCache(ctx, pattern, true)
	}
	var n int64
	err := s.external(ctx, p, "redis.flush_cache", "redis:"+pattern, "", reason, map[string]any{"pattern": pattern},
		func(ctx context.Context) (map[string]any, error) {
			var err error
			n, err = s.cfg.FlushCache(ctx, pattern, false)
			return map[string]any{"deleted": n}, err
		})
	return n, err
}

// HalfOpen forces a service's circuit breaker half-open (runbook INC-005
// option A): the next call probes the service and closes or reopens it.
// It returns the breaker's state after. The intent (with the state before)
// is recorded before, the outcome after. The reason may be empty ("force
// half-open (runbook INC-005)"). EFORBIDDEN; EINVALID for an unknown service.
func (s *Service) HalfOpen(ctx context.Context, p smp.Principal, service, reason string) (integrations.Status, error) {
	if err := auth.Check(p, "breaker.half_open"); err != nil {
		return integrations.Status{}, err
	}
	if err := checkReason(reason); err != nil {
		return integrations.Status{}, err
	}
	var target Breaker
	var names []string
	for _, b := range s.cfg.Breakers {
		names = append(names, b.Name())
		if b.Name() == service {
			target = b
		}
	}
	if target == nil {
		return integrations.Status{}, smp.Errorf(smp.EINVALID, "service %q: use one of %s", service, strings.Join(names, ", "))
	}
	reason = strings.TrimSpace(reason)
	if reason == "" {
		reason = "force half-open (runbook INC-005)"
	}
	before := jsonString(map[string]any{"state": target.Status().State})
	err := s.external(ctx, p, "circuit_breaker.half_open", "integration:"+service, before, reason, map[string]any{"state": "half-open"},
		func(context.Context) (map[string]any, error) {
			target.HalfOpen()
			return map[string]any{"state": target.Status().State}, nil
		})
	if err != nil {
		return integrations.Status{}, err
	}
	return target.Status(), nil
}

// Phases of an external effect, in the "phase" key of its entries' After.
const (
	PhaseIntent = "intent" // committed before the effect is attempted
	PhaseDone   = "done"   // the effect succeeded
	PhaseFailed = "failed" // the effect failed; "error" says why
)

// maxListed bounds the dead letters an intent names; maxErrorText the
// error an outcome quotes (an audit entry's state is at most 64 KiB).
const (
	maxListed    = 200
	maxErrorText = 2000
)

// outcomeTimeout bounds recording an outcome, which is done even when the
// caller's context has ended (the effect may have happened regardless).
const outcomeTimeout = 10 * time.Second

// external runs an effect outside the database: its intent is committed
// first (no intent, no effect), then the effect runs, then its outcome is
// committed, done or failed. The effect's error is returned as it is. A
// failure to record the outcome after a successful effect is logged, not
// returned: the effect happened and its intent is on record.
func (s *Service) external(ctx context.Context, p smp.Principal, action, target, before, reason string, intent map[string]any,
	effect func(context.Context) (map[string]any, error)) error {
	entry := smp.AuditEntry{Actor: p.Name, Role: p.Role, Action: action, Target: target, Before: before, Reason: strings.TrimSpace(reason)}
	if err := s.record(ctx, entry, PhaseIntent, intent); err != nil {
		return fmt.Errorf("ops: %s: recording the intent: %w", action, err)
	}
	after, err := effect(ctx)
	phase := PhaseDone
	if err != nil {
		phase, after = PhaseFailed, map[string]any{"error": errorText(err), "code": smp.ErrorCode(err)}
	}
	rctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), outcomeTimeout)
	defer cancel()
	if rerr := s.record(rctx, entry, phase, after); rerr != nil {
		if err != nil {
			return fmt.Errorf("%w (and recording the outcome failed: %v)", err, rerr)
		}
		s.log.Error("ops: the action succeeded but its outcome was not recorded", "action", action, "target", target, "actor", p.Name, "err", rerr)
	}
	return err
}

// record commits one audit entry with After = details plus "phase".
func (s *Service) record(ctx context.Context, e smp.AuditEntry, phase string, details map[string]any) error {
	after := map[string]any{"phase": phase}
	for k, v := range details {
		after[k] = v
	}
	e.At, e.After = s.cfg.Now().UTC(), jsonString(after)
	return s.cfg.Store.InTx(ctx, func(tx smp.Tx) error { return tx.AddAudit(ctx, e) })
}

// errorText is what the audit log says of a failure: the message of a
// coded error, the full text of another (the audit log is for operators,
// not for the API's callers).
func errorText(err error) string {
	msg := smp.ErrorMessage(err)
	if smp.ErrorCode(err) == smp.EINTERNAL {
		msg = err.Error()
	}
	if len(msg) > maxErrorText {
		msg = strings.ToValidUTF8(msg[:maxErrorText], "") + "…"
	}
	return msg
}

func jsonString(v any) string {
	b, err := json.Marshal(v)
	if err != nil {
		return fmt.Sprintf("%q", fmt.Sprint(v))
	}
	return string(b)
}
