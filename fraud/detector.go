// Package fraud is the fraud detector of runbook INC-011: the
// fraud-detector consumer of payments.events and partners.events
// evaluates every top-up request against the rules of rules_engine.yaml
// (expr-lang expressions compiled at load against Env) and stores one
// decision per evaluation with every rule's verdict and what it saw, a
// score, an outcome and the evidence.
package fraud

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"smp"
	"smp/bus"
	"smp/internal/startstop"
	"smp/wallet"
)

// ConsumerGroup is the detector's group on payments.events and
// partners.events.
const ConsumerGroup = "fraud-detector"

// Store is what the detector needs of the system of record.
type Store interface {
	smp.Transactor
	smp.ProcessedStore
	smp.FraudStore
	// FindPartnerByID gives a partner's registered country when no
	// partners.events told the windows yet.
	FindPartnerByID(ctx context.Context, id string) (*smp.Partner, error)
	// FindTopups gives the top-ups requested so far: Rebuild replays them
	// into windows that start empty.
	FindTopups(ctx context.Context, f smp.TopupFilter) ([]*smp.Topup, error)
}

// GeoIP answers an IP's country (ISO 3166-1 alpha-2), "" when unknown.
type GeoIP interface {
	Country(ip string) (string, error)
}

// Enforcer applies a decision's outcome (freeze, soft_block) to the
// partner, in tx, the transaction that stores the decision: the ledger's
// enforcement, when the process has it. A refusal it finds before it
// writes anything in tx (no such partner; the wallet already under a
// stronger control, ECONFLICT), returned as Refused(err), leaves the
// decision stored without it; any other error fails the transaction,
// decision and all, and the event is delivered again.
type Enforcer interface {
	Enforce(ctx context.Context, tx smp.Tx, d *smp.FraudDecision) error
}

// Refused marks err, an Enforcer's, as a refusal found before it wrote
// anything in the decision's transaction.
func Refused(err error) error { return refusedError{err} }

type refusedError struct{ error }

func (r refusedError) Unwrap() error { return r.error }

// Config configures the detector.
type Config struct {
	// Windows keeps the windows and partner averages (required).
	Windows smp.FraudWindows
	// Geo maps IPs to countries; nil makes the geography rule unknown.
	Geo GeoIP
	// RulesPath is the rules file; "" runs the embedded DefaultRules.
	RulesPath string
	// Keep is how long the windows keep top-ups (default 24 h): a rule's
	// window longer than it sees only Keep.
	Keep time.Duration
	// Poll is how often the file is checked for changes (default 2 s;
	// negative: only Reload, as on SIGHUP).
	Poll time.Duration
	// Rebuild: the windows start empty at every start (in-process, the
	// embedded default): Start replays the stored top-ups into them
	// before the consumer runs (Rebuild), so a burst split across a
	// restart is still seen. Leave it off for windows that outlive the
	// process (Redis).
	Rebuild bool
	// Enforcer, when set, is given each decision whose outcome is
	// soft_block or freeze, in the transaction that stores it.
	Enforcer   Enforcer
	Now        func() time.Time
	Logger     *slog.Logger
	Registerer prometheus.Registerer
}

// Detector evaluates top-ups. Start runs its file watcher.
type Detector struct {
	startstop.Base
	store Store
	cfg   Config
	rules atomic.Pointer[RuleSet]
	mu    sync.Mutex // serializes reloads
	raw   []byte     // the file content of the running rules

	signals   *prometheus.CounterVec
	decisions *prometheus.CounterVec
	reloads   *prometheus.CounterVec
	latency   prometheus.Histogram
	// Observed is told of each stored decision (tests, benchmarks).
	Observed func(*smp.FraudDecision)
}

// New loads the rules (a bad file fails here: nothing runs on it) and
// registers the metrics.
func New(store Store, cfg Config) (*Detector, error) {
	if cfg.Windows == nil {
		return nil, fmt.Errorf("fraud: windows are required")
	}
	if cfg.Keep <= 0 {
		cfg.Keep = 24 * time.Hour
	}
	if cfg.Poll == 0 {
		cfg.Poll = 2 * time.Second
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	if cfg.Registerer == nil {
		cfg.Registerer = prometheus.NewRegistry()
	}
	d := &Detector{store: store, cfg: cfg}
	data, name, err := d.read()
	if err != nil {
		return nil, err
	}
	rs, err := Parse(name, data)
	if err != nil {
		return nil, fmt.Errorf("fraud: %w", err)
	}
	d.rules.Store(rs)
	d.raw = data
	d.signals = prometheus.NewCounterVec(prometheus.CounterOpts{Name: "fraud_detection_signals_total",
		Help: "Fraud rules hit by top-ups, by the rule's severity and name (INC-011)."}, []string{"severity", "rule"})
	d.decisions = prometheus.NewCounterVec(prometheus.CounterOpts{Name: "smp_fraud_decisions_total",
		Help: "Fraud decisions stored, by outcome."}, []string{"outcome"})
	d.reloads = prometheus.NewCounterVec(prometheus.CounterOpts{Name: "smp_fraud_rules_reloads_total",
		Help: "Reloads of the fraud rules file, by outcome (loaded, refused, unchanged)."}, []string{"outcome"})
	d.latency = prometheus.NewHistogram(prometheus.HistogramOpts{Name: "smp_fraud_decision_seconds",
		Help: "From a top-up request's event to its stored decision.", Buckets: prometheus.ExponentialBuckets(0.001, 2, 14)})
	for _, c := range []prometheus.Collector{d.signals, d.decisions, d.reloads, d.latency} {
		if err := cfg.Registerer.Register(c); err != nil {
			return nil, fmt.Errorf("fraud: register metrics: %w", err)
		}
	}
	for _, r := range rs.Rules {
		d.signals.WithLabelValues(r.Severity, r.Name) // each rule's series from 0
	}
	return d, nil
}

func (d *Detector) read() ([]byte, string, error) {
	if d.cfg.RulesPath == "" {
		return DefaultRules, DefaultRulesFile + " (embedded)", nil
	}
	b, err := os.ReadFile(d.cfg.RulesPath)
	if err != nil {
		return nil, d.cfg.RulesPath, fmt.Errorf("fraud: read rules: %w", err)
	}
	return b, d.cfg.RulesPath, nil
}

// Rules returns the running rules.
func (d *Detector) Rules() *RuleSet { return d.rules.Load() }

// Reload reads the rules file again. A file that does not parse or
// compile is refused (the error names the rule, the line and the reason;
// it is logged and counted) and the running rules stay. changed is true
// when new rules run.
func (d *Detector) Reload() (changed bool, err error) {
	d.mu.Lock()
	defer d.mu.Unlock()
	data, name, err := d.read()
	if err == nil && bytes.Equal(data, d.raw) {
		d.reloads.WithLabelValues("unchanged").Inc()
		return false, nil
	}
	var rs *RuleSet
	if err == nil {
		rs, err = Parse(name, data)
	}
	if err != nil {
		d.reloads.WithLabelValues("refused").Inc()
		d.cfg.Logger.Error("fraud: rules file refused; the running rules stay", "file", name, "err", err,
			"running_version", d.rules.Load().Version)
		d.raw = data // refused once, not again at every poll
		return false, err
	}
	d.rules.Store(rs)
	d.raw = data
	d.reloads.WithLabelValues("loaded").Inc()
	for _, r := range rs.Rules {
		d.signals.WithLabelValues(r.Severity, r.Name)
	}
	d.cfg.Logger.Info("fraud: rules loaded", "file", name, "version", rs.Version, "rules", len(rs.Rules))
	return true, nil
}

// Start watches the rules file for changes (every Poll).
func (d *Detector) Start(ctx context.Context) error {
	run, ok := d.StartInit(ctx)
	if !ok {
		return nil
	}
	if d.cfg.Rebuild {
		n, err := d.Rebuild(ctx)
		if err != nil {
			d.Abort()
			return err
		}
		d.cfg.Logger.Info("fraud: windows rebuilt from the stored top-ups", "topups", n)
	}
	if d.cfg.RulesPath != "" && d.cfg.Poll > 0 {
		d.Go(func() {
			t := time.NewTicker(d.cfg.Poll)
			defer t.Stop()
			for {
				select {
				case <-run.Done():
					return
				case <-t.C:
					_, _ = d.Reload() // logged and counted there
				}
			}
		})
	}
	d.MarkStarted()
	return nil
}

// rebuildPage is how many stored top-ups Rebuild reads at a time.
const rebuildPage = 5000

// Rebuild replays every stored top-up request, oldest first, into the
// windows, as its payment.wallet_topup_requested event recorded it
// (event id "topup-" + the top-up's id, its address, amount and time):
// the windows of the last Keep and the partners' averages are then what
// they were before the restart. Recording is once per event id, so an
// event replayed here and delivered again later counts once. It returns
// how many top-ups it read.
func (d *Detector) Rebuild(ctx context.Context) (int, error) {
	var from time.Time
	seen := map[string]bool{}
	n := 0
	for {
		ts, err := d.store.FindTopups(ctx, smp.TopupFilter{From: from, Limit: rebuildPage})
		if err != nil {
			return n, fmt.Errorf("fraud: rebuild windows: %w", err)
		}
		fresh := 0
		for _, t := range ts {
			if seen[t.ID] {
				continue // a page starts at the last one's time, inclusive
			}
			seen[t.ID] = true
			fresh++
			n++
			if _, err := d.cfg.Windows.RecordTopup(ctx, smp.FraudTopupObs{EventID: "topup-" + t.ID, TxnID: t.TxnRef, PartnerID: t.PartnerID,
				IP: t.ClientIP, AmountVND: t.AmountVND, At: t.CreatedAt}, d.cfg.Keep); err != nil {
				return n, fmt.Errorf("fraud: rebuild windows: %w", err)
			}
		}
		if len(ts) < rebuildPage {
			return n, nil
		}
		last := ts[len(ts)-1].CreatedAt
		if fresh == 0 {
			last = last.Add(time.Microsecond) // a page of one instant, all seen
		}
		from = last
		// Only the ids of the last instant can come again.
		for id := range seen {
			delete(seen, id)
		}
		for _, t := range ts {
			if t.CreatedAt.Equal(from) {
				seen[t.ID] = true
			}
		}
	}
}

// AddIntake adds the fraud-detector consumer to r: each
// payment.wallet_topup_requested is evaluated and its decision stored in
// the transaction that records the event (once per event); partner
// created/updated events keep the partner's registered country.
func (d *Detector) AddIntake(r *bus.Router) error {
	return r.AddHandler(ConsumerGroup, []string{smp.TopicPayments, smp.TopicPartners}, bus.Events(d.intake),
		bus.Types(smp.EventPartnerCreated, smp.EventPartnerUpdated, wallet.EventTopupRequested), bus.Idempotent(d.store, d.cfg.Now))
}

// topupEvent is payment.wallet_topup_requested's data.
type topupEvent struct {
	TopupID   string `json:"topup_id"`
	PartnerID string `json:"partner_id"`
	TxnRef    string `json:"txn_ref"`
	AmountVND int64  `json:"amount_vnd"`
	ClientIP  string `json:"client_ip"`
	UserAgent string `json:"user_agent"`
	DeviceID  string `json:"device_id"`
}

func (d *Detector) intake(ctx context.Context, ev smp.Event) (bus.Result, error) {
	switch ev.Type {
	case smp.EventPartnerCreated, smp.EventPartnerUpdated:
		var p smp.Partner
		if err := json.Unmarshal(ev.Data, &p); err != nil || p.ID == "" {
			return bus.Skip, smp.Errorf(smp.EINVALID, "fraud: %s %s: schema mismatch: %v", ev.Type, ev.ID, err)
		}
		return bus.Done, d.cfg.Windows.SetPartnerCountry(ctx, p.ID, p.Country)
	case wallet.EventTopupRequested:
	default:
		return bus.Skip, nil
	}
	dec, err := d.EvaluateEvent(ctx, ev)
	if err != nil {
		return bus.DoneRecorded, err
	}
	// The decision is stored with the event's record and, when flagged,
	// its enforcement in the ledger: one transaction, on the embedded log
	// the one of the batch's offset (bus.EffectTx). Its metrics and logs
	// follow the commit.
	var refused error
	err = bus.EffectTx(ctx, d.store, func(ctx context.Context, tx smp.Tx) error {
		refused = nil
		first, err := tx.MarkProcessed(ctx, ConsumerGroup, ev.ID, d.cfg.Now())
		if err != nil {
			return err
		}
		if !first {
			return bus.ErrDuplicate
		}
		if err := tx.InsertFraudDecision(ctx, dec); err != nil {
			return err
		}
		if d.cfg.Enforcer == nil || dec.Outcome.Rank() < smp.FraudSoftBlock.Rank() {
			return nil
		}
		err = d.cfg.Enforcer.Enforce(ctx, tx, dec)
		if errors.As(err, new(refusedError)) {
			refused = err // refused before any write: the decision stays
			return nil
		}
		return err
	}, func(err error) {
		if err == nil {
			d.decided(ev, dec, refused)
		}
	})
	return bus.DoneRecorded, err
}

// decided follows a stored decision (and its enforcement, unless refused
// says why not): its metrics and logs.
func (d *Detector) decided(ev smp.Event, dec *smp.FraudDecision, refused error) {
	d.decisions.WithLabelValues(string(dec.Outcome)).Inc()
	for _, r := range dec.Rules {
		if r.Result == smp.RuleHit {
			d.signals.WithLabelValues(r.Severity, r.Rule).Inc()
		}
	}
	if !ev.OccurredAt.IsZero() {
		d.latency.Observe(d.cfg.Now().Sub(ev.OccurredAt).Seconds())
	}
	if dec.Outcome.Rank() >= smp.FraudSoftBlock.Rank() {
		d.cfg.Logger.Warn("fraud: top-up flagged", "decision_id", dec.ID, "partner_id", dec.PartnerID, "txn_id", dec.TxnID,
			"outcome", dec.Outcome, "severity", dec.Severity, "signals", dec.Signals)
		if refused != nil && smp.ErrorCode(refused) != smp.ECONFLICT {
			// The decision is stored without it: the alert pages on-call,
			// who acts by hand (INC-011).
			d.cfg.Logger.Error("fraud: enforcement refused", "decision_id", dec.ID, "partner_id", dec.PartnerID, "err", refused)
		}
	}
	if d.Observed != nil {
		d.Observed(dec)
	}
}

// EvaluateEvent records a payment.wallet_topup_requested in the windows
// (once by event id) and judges it against the running rules; it stores
// nothing. EINVALID for an event that is not a top-up request.
func (d *Detector) EvaluateEvent(ctx context.Context, ev smp.Event) (*smp.FraudDecision, error) {
	var t topupEvent
	if ev.Type != wallet.EventTopupRequested {
		return nil, smp.Errorf(smp.EINVALID, "fraud: %s is not a top-up request", ev.Type)
	}
	if err := json.Unmarshal(ev.Data, &t); err != nil || t.PartnerID == "" || t.TxnRef == "" {
		return nil, smp.Errorf(smp.EINVALID, "fraud: %s %s: schema mismatch: %v", ev.Type, ev.ID, err)
	}
	at := ev.OccurredAt
	if at.IsZero() {
		at = d.cfg.Now()
	}
	view, err := d.cfg.Windows.RecordTopup(ctx, smp.FraudTopupObs{EventID: ev.ID, TxnID: t.TxnRef, PartnerID: t.PartnerID,
		IP: t.ClientIP, AmountVND: t.AmountVND, At: at}, d.cfg.Keep)
	if err != nil {
		return nil, fmt.Errorf("fraud: record top-up %s: %w", t.TxnRef, err)
	}
	country, err := d.cfg.Windows.PartnerCountry(ctx, t.PartnerID)
	if err != nil {
		return nil, fmt.Errorf("fraud: partner country: %w", err)
	}
	if country == "" {
		if p, err := d.store.FindPartnerByID(ctx, t.PartnerID); err == nil {
			country = p.Country
		} else if smp.ErrorCode(err) != smp.ENOTFOUND {
			return nil, fmt.Errorf("fraud: find partner: %w", err)
		}
	}
	var ipCountry string
	if d.cfg.Geo != nil && t.ClientIP != "" {
		ipCountry, _ = d.cfg.Geo.Country(t.ClientIP) // an address it cannot read is unknown
	}
	env := &Env{Topup: TopupInput{TxnID: t.TxnRef, PartnerID: t.PartnerID, AmountVND: t.AmountVND, IP: t.ClientIP, Country: ipCountry,
		UserAgent: t.UserAgent, DeviceID: t.DeviceID}, Partner: partnerInput(t.PartnerID, country, view), at: at, view: view}
	rs := d.rules.Load()
	dec := Judge(rs, env)
	dec.ID, dec.EventID, dec.EventType, dec.PartnerID, dec.TxnID, dec.AmountVND = "fd-"+ev.ID, ev.ID, ev.Type, t.PartnerID, t.TxnRef, t.AmountVND
	dec.OccurredAt, dec.CreatedAt = at, d.cfg.Now()
	dec.Evidence = smp.FraudEvidence{TxnIDs: []string{t.TxnRef}, Country: ipCountry, UserAgent: t.UserAgent, DeviceID: t.DeviceID}
	if t.ClientIP != "" {
		dec.Evidence.IPs = []string{t.ClientIP}
	}
	if len(dec.Signals) > 0 {
		for _, id := range env.related() {
			if !slices.Contains(dec.Evidence.TxnIDs, id) {
				dec.Evidence.TxnIDs = append(dec.Evidence.TxnIDs, id)
			}
		}
	}
	return dec, nil
}

func partnerInput(id, country string, v *smp.FraudWindowView) PartnerInput {
	p := PartnerInput{ID: id, Country: country}
	if v != nil {
		p.PriorTopups, p.PriorSumVND = v.PriorCount, v.PriorSumVND
		if v.PriorCount > 0 {
			p.AvgTopupVND = v.PriorSumVND / v.PriorCount
		}
		p.MaxRatioBefore = float64(v.PriorMaxRatioMilli) / 1000
	}
	return p
}

// Judge runs every rule of rs on env: each one's verdict with the values
// it read, and the decision they make (score, outcome, severity,
// signals). An input a rule needs that is unknown makes it unknown, and
// an expression that fails at run time makes it error: neither is a
// signal.
func Judge(rs *RuleSet, env *Env) *smp.FraudDecision {
	dec := &smp.FraudDecision{Outcome: smp.FraudAllow, Signals: []string{}, RulesVersion: rs.Version}
	for _, r := range rs.Rules {
		res := smp.FraudRuleResult{Rule: r.Name, Severity: r.Severity, Outcome: r.Outcome, Score: r.Score, When: r.When, Values: map[string]any{}}
		for _, f := range r.fields {
			res.Values[f] = fieldValue(env, f)
		}
		if missing := missingInput(r, env); missing != "" {
			res.Result, res.Reason = smp.RuleUnknown, missing
			dec.Rules = append(dec.Rules, res)
			continue
		}
		env.seen = res.Values
		out, err := exprRun(r, env)
		env.seen = nil
		switch {
		case err != nil:
			res.Result, res.Reason = smp.RuleError, err.Error()
		case out:
			res.Result = smp.RuleHit
			dec.Signals = append(dec.Signals, r.Name)
			dec.Score += r.Score
			if r.Outcome.Rank() > dec.Outcome.Rank() {
				dec.Outcome = r.Outcome
			}
			if smp.SeverityRank(r.Severity) > smp.SeverityRank(dec.Severity) {
				dec.Severity = r.Severity
			}
		default:
			res.Result = smp.RuleMiss
		}
		dec.Rules = append(dec.Rules, res)
	}
	dec.Score = min(dec.Score, 100)
	return dec
}

func missingInput(r *Rule, env *Env) string {
	for _, n := range r.Needs {
		switch {
		case n == NeedIPCountry && env.Topup.Country == "":
			return "the IP's country is unknown (no --geoip-db, or the address is not in it)"
		case n == NeedPartnerCountry && env.Partner.Country == "":
			return "the partner's registered country is unknown"
		}
	}
	return ""
}
