// Package recon is the partners' wallets' nightly reconciliation
// (runbook INC-010, job wallet-reconciliation-cron): for a day in
// Asia/Ho_Chi_Minh it compares each partner's balance in SMP's ledger
// with what the gateway's records of that day support, auto-corrects a
// notification SMP missed for under 24 h (querydr, applied idempotently),
// matches manual adjustments against their expected diffs, converts
// records in other currencies at the rate of their day (a rate older than
// 2 days is inconclusive, not a diff), pairs SMP's entry and the
// gateway's record of every transaction on which they differ, and keeps
// every run (smp.ReconStore). An unreachable gateway, or its breaker
// open, makes the run inconclusive, never a diff. docs/wallets.md.
package recon

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"log/slog"
	"sort"
	"strings"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"smp"
	"smp/internal/startstop"
	"smp/vnpay"
)

// JobName is the runbook's name of the job (and its lease's).
const JobName = "wallet-reconciliation-cron"

// LeaseKey is the lease a run holds, so one process runs at a time.
const LeaseKey = "lock:" + JobName

// Store is what the reconciliation reads and writes.
type Store interface {
	smp.Transactor
	smp.ReconStore
	FindWalletAccounts(ctx context.Context) ([]*smp.WalletAccount, error)
	FindWalletEntry(ctx context.Context, id string) (*smp.WalletEntry, error)
	FindWalletEntries(ctx context.Context, f smp.WalletEntryFilter) ([]*smp.WalletEntry, error)
	FindTopup(ctx context.Context, gateway, txnRef string) (*smp.Topup, error)
	FindTopups(ctx context.Context, f smp.TopupFilter) ([]*smp.Topup, error)
	FindMasterRecord(ctx context.Context, table, key string) (smp.MasterRecord, error)
}

// Replayer applies a gateway transaction SMP missed, as its notification
// would have been, after asking the gateway (querydr): wallet.Service.
// outcome is "applied", "already_present" or "not_paid"; EUNAVAILABLE
// when the gateway cannot be asked.
type Replayer interface {
	ReplayTopup(ctx context.Context, t *smp.Topup, actor string) (outcome string, err error)
}

// Config of the reconciliation.
type Config struct {
	Store   Store
	Gateway Gateway
	// Replayer auto-corrects scenario 1; without it a missed notification
	// is reported, not corrected.
	Replayer Replayer
	// Locker and Owner: the lease that lets one process run at a time.
	Locker smp.Locker
	Owner  string
	// At is the time of day (UTC) of the nightly run, "15:04" (default
	// 02:00); "off" leaves the schedule to another (the Kubernetes
	// CronJob calling the admin API).
	At string
	// Poll is how often the loop checks whether a run is due (default 1
	// minute); RetryAfter how long after an inconclusive or failed run of
	// the day it tries again (default 1 hour: "wait 1h, re-run").
	Poll       time.Duration
	RetryAfter time.Duration
	// LeaseTTL bounds a run (default 30 minutes).
	LeaseTTL   time.Duration
	Now        func() time.Time
	Logger     *slog.Logger
	Registerer prometheus.Registerer
}

// Service runs reconciliations and, with Start, the nightly schedule.
type Service struct {
	startstop.Base
	cfg      Config
	log      *slog.Logger
	at       time.Duration // offset in the UTC day; -1: off
	runs     *prometheus.CounterVec
	duration prometheus.Histogram
}

// New returns the service. The metrics wallet_recon_diff_pct and
// wallet_recon_last_success_timestamp_seconds are read from the stored
// runs at every scrape, so every process exports the same values
// whichever ran the job.
func New(cfg Config) (*Service, error) {
	if cfg.Store == nil {
		return nil, fmt.Errorf("recon: Store is required")
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	if cfg.Poll <= 0 {
		cfg.Poll = time.Minute
	}
	if cfg.RetryAfter <= 0 {
		cfg.RetryAfter = time.Hour
	}
	if cfg.LeaseTTL <= 0 {
		cfg.LeaseTTL = 30 * time.Minute
	}
	if cfg.Owner == "" {
		cfg.Owner = "recon"
	}
	at, err := ParseAt(cfg.At)
	if err != nil {
		return nil, err
	}
	s := &Service{cfg: cfg, log: cfg.Logger.With("service", "recon"), at: at,
		runs: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "smp_wallet_recon_runs_total",
			Help: "Reconciliation runs made by this process, by status (completed, inconclusive, failed) or skipped (another process held the lease or the day was done)."},
			[]string{"status"}),
		duration: prometheus.NewHistogram(prometheus.HistogramOpts{Name: "smp_wallet_recon_run_duration_seconds",
			Help: "How long a reconciliation run took.", Buckets: prometheus.ExponentialBuckets(0.01, 4, 8)}),
	}
	if cfg.Registerer != nil {
		for _, c := range []prometheus.Collector{s.runs, s.duration, &collector{s: s}} {
			if err := cfg.Registerer.Register(c); err != nil {
				return nil, err
			}
		}
	}
	return s, nil
}

// ParseAt reads a time of day "HH:MM" (UTC) as an offset; "" is 02:00;
// "off" is -1.
func ParseAt(at string) (time.Duration, error) {
	switch at {
	case "":
		return 2 * time.Hour, nil
	case "off":
		return -1, nil
	}
	t, err := time.Parse("15:04", at)
	if err != nil {
		return 0, fmt.Errorf("recon: --recon-at %q: HH:MM (UTC) or off", at)
	}
	return time.Duration(t.Hour())*time.Hour + time.Duration(t.Minute())*time.Minute, nil
}

// DayBounds returns [start, end) of day (YYYY-MM-DD) in Asia/Ho_Chi_Minh.
// EINVALID for a malformed day.
func DayBounds(day string) (time.Time, time.Time, error) {
	start, err := time.ParseInLocation("2006-01-02", day, vnpay.Loc)
	if err != nil {
		return time.Time{}, time.Time{}, smp.Errorf(smp.EINVALID, "day %q: YYYY-MM-DD", day)
	}
	return start, start.AddDate(0, 0, 1), nil
}

// Yesterday is the day before now's in Asia/Ho_Chi_Minh: what the
// nightly run reconciles.
func Yesterday(now time.Time) string { return now.In(vnpay.Loc).AddDate(0, 0, -1).Format("2006-01-02") }

// Today is now's day in Asia/Ho_Chi_Minh.
func Today(now time.Time) string { return now.In(vnpay.Loc).Format("2006-01-02") }

// Trigger says who asked for a run.
type Trigger struct {
	Kind   string // smp.ReconTriggerCron or smp.ReconTriggerManual
	Actor  string
	Reason string
}

// Run reconciles day and records the run, whatever its outcome (a
// failed run is kept with its error). EINVALID for a malformed day or a
// day not yet over. The run is returned with its rows.
func (s *Service) Run(ctx context.Context, day string, by Trigger) (*smp.ReconRun, error) {
	start, end, err := DayBounds(day)
	if err != nil {
		return nil, err
	}
	now := s.cfg.Now()
	if now.Before(end) {
		return nil, smp.Errorf(smp.EINVALID, "day %s is not over yet (it ends %s)", day, end.UTC().Format(time.RFC3339))
	}
	if by.Kind == "" {
		by.Kind = smp.ReconTriggerCron
	}
	if by.Actor == "" {
		by.Actor = "system:" + JobName
	}
	id := make([]byte, 4)
	rand.Read(id)
	run := &smp.ReconRun{ID: fmt.Sprintf("recon-%s-%d-%s", strings.ReplaceAll(day, "-", ""), now.UnixMilli(), hex.EncodeToString(id)),
		Day: day, Trigger: by.Kind, Actor: by.Actor, Reason: by.Reason, StartedAt: now, MaxDiffPct: "0.0000"}
	c := &comparison{s: s, day: day, start: start, end: end, now: now, actor: by.Actor}
	rows, runErr := c.compare(ctx)
	run.Rows = rows
	run.FinishedAt = s.cfg.Now()
	switch {
	case runErr != nil && smp.ErrorCode(runErr) == smp.EUNAVAILABLE:
		run.Status, run.Error = smp.ReconRunInconclusive, clip(smp.ErrorMessage(runErr), 1000)
	case runErr != nil:
		run.Status, run.Error, run.Rows = smp.ReconFailed, clip(runErr.Error(), 1000), nil
	default:
		run.Status = smp.ReconCompleted
		if len(c.orphans) > 0 {
			run.Error = clip(fmt.Sprintf("%d gateway records match no top-up of SMP: %s", len(c.orphans), strings.Join(c.orphans, ", ")), 1000)
		}
	}
	summarize(run)
	s.duration.Observe(run.FinishedAt.Sub(run.StartedAt).Seconds())
	if err := s.cfg.Store.InTx(ctx, func(tx smp.Tx) error { return tx.InsertReconRun(ctx, run) }); err != nil {
		s.runs.WithLabelValues(smp.ReconFailed).Inc()
		return nil, fmt.Errorf("recon: record run: %w", err)
	}
	s.runs.WithLabelValues(run.Status).Inc()
	if run.Status == smp.ReconFailed {
		s.log.Error("recon: run failed", "day", day, "run", run.ID, "err", run.Error)
	} else {
		s.log.Info("recon: run", "day", day, "run", run.ID, "status", run.Status, "verdict", run.Verdict, "partners", run.Partners,
			"mismatches", run.Mismatches, "inconclusive", run.Inconclusive, "auto_corrected", run.AutoCorrected, "max_diff_pct", run.MaxDiffPct)
	}
	return run, nil
}

func clip(s string, n int) string {
	if r := []rune(s); len(r) > n {
		return string(r[:n])
	}
	return s
}

// verdictRank orders verdicts from best to worst.
var verdictRank = map[string]int{smp.ReconOK: 0, smp.ReconExplained: 1, smp.ReconAutoCorrected: 2, smp.ReconInconclusive: 3, smp.ReconMismatch: 4}

func summarize(run *smp.ReconRun) {
	run.Verdict = smp.ReconOK
	if run.Status == smp.ReconFailed {
		run.Verdict = smp.ReconInconclusive
	}
	run.Partners = len(run.Rows)
	for _, w := range run.Rows {
		if verdictRank[w.Verdict] > verdictRank[run.Verdict] {
			run.Verdict = w.Verdict
		}
		switch w.Verdict {
		case smp.ReconMismatch:
			run.Mismatches++
		case smp.ReconInconclusive:
			run.Inconclusive++
			continue
		case smp.ReconAutoCorrected:
			run.AutoCorrected++
		}
		u := w.DiffVND - w.ExpectedDiffVND
		if p := pctOf(u, w.GatewayBalanceVND); cmpPct(p, run.MaxDiffPct) > 0 {
			run.MaxDiffPct = p
		}
		if abs64(u) > run.MaxDiffVND {
			run.MaxDiffVND = abs64(u)
		}
	}
	if run.Status == smp.ReconRunInconclusive {
		run.Verdict = smp.ReconInconclusive
	}
}

// comparison is one run's work.
type comparison struct {
	s               *Service
	day             string
	start, end, now time.Time
	actor           string
	topups          map[string]*smp.Topup
	rates           map[string]rateResult
	orphans         []string
}

// partnerWork accumulates a partner's row.
type partnerWork struct {
	row        smp.ReconRow
	entries    []*smp.WalletEntry // from the day's start on, chain order
	account    *smp.WalletAccount
	smpBalance int64
	diff       int64
	expected   int64
	seen       map[string]bool // txn refs the gateway's file has
	notes      []string
	inconcl    bool
}

func (w *partnerWork) inconclusive(note string) {
	w.inconcl = true
	w.notes = append(w.notes, note)
}

const maxPairs = 200

func (w *partnerWork) pair(p smp.ReconPair) {
	if len(w.row.Detail.Pairs) >= maxPairs {
		w.row.Detail.Truncated++
		return
	}
	w.row.Detail.Pairs = append(w.row.Detail.Pairs, p)
}

func entryOf(e *smp.WalletEntry) *smp.ReconEntry {
	return &smp.ReconEntry{ID: e.ID, Seq: e.Seq, Type: string(e.Type), AmountVND: e.WalletEffect(), CreatedAt: e.CreatedAt}
}

func (c *comparison) compare(ctx context.Context) ([]smp.ReconRow, error) {
	st := c.s.cfg.Store
	// The ledger first: accounts, then every entry since the day's start
	// (an entry committed after the accounts were read is among them).
	accounts, err := st.FindWalletAccounts(ctx)
	if err != nil {
		return nil, err
	}
	parts := map[string]*partnerWork{}
	get := func(id string) *partnerWork {
		w, ok := parts[id]
		if !ok {
			w = &partnerWork{row: smp.ReconRow{PartnerID: id}, seen: map[string]bool{}}
			parts[id] = w
		}
		return w
	}
	for _, a := range accounts {
		if a.PartnerID != "" {
			get(a.PartnerID).account = a
		}
	}
	var after int64
	for {
		es, err := st.FindWalletEntries(ctx, smp.WalletEntryFilter{From: c.start, AfterSeq: after, Limit: 10000})
		if err != nil {
			return nil, err
		}
		for _, e := range es {
			w := get(e.PartnerID)
			w.entries = append(w.entries, e)
			after = e.Seq
		}
		if len(es) < 10000 {
			break
		}
	}
	// The top-ups around the day, by reference (the rest read one by one).
	c.topups, c.rates = map[string]*smp.Topup{}, map[string]rateResult{}
	ts, err := smp.AllTopups(ctx, st, smp.TopupFilter{From: c.start.Add(-48 * time.Hour), To: c.now.Add(time.Minute)})
	if err != nil {
		return nil, err
	}
	for _, t := range ts {
		c.topups[t.TxnRef] = t
	}
	for _, w := range parts {
		if err := c.closing(ctx, w); err != nil {
			return nil, err
		}
	}
	// The gateway's records of the day.
	var recs []Record
	var gwErr error = smp.Errorf(smp.EUNAVAILABLE, "no gateway configured")
	if c.s.cfg.Gateway != nil {
		recs, gwErr = c.s.cfg.Gateway.Records(ctx, c.day)
	}
	if gwErr != nil {
		for _, w := range parts {
			w.inconclusive("gateway unavailable: " + smp.ErrorMessage(gwErr))
		}
		return c.rows(parts), gwErr
	}
	for _, r := range recs {
		if !r.Succeeded {
			continue
		}
		t, err := c.topup(ctx, r.TxnRef)
		if err != nil {
			return nil, err
		}
		if t == nil {
			c.orphans = append(c.orphans, r.TxnRef)
			continue
		}
		if err := c.record(ctx, get(t.PartnerID), t, r); err != nil {
			return nil, err
		}
	}
	for _, w := range parts {
		if err := c.smpSide(ctx, w); err != nil {
			return nil, err
		}
	}
	return c.rows(parts), nil
}

// closing sets a partner's balance at the day's end (with the gateway
// postings made later for transactions paid by then: late notifications)
// and its last entry then.
func (c *comparison) closing(ctx context.Context, w *partnerWork) error {
	st := c.s.cfg.Store
	var last, late *smp.WalletEntry
	closed := false
	for _, e := range w.entries {
		if !e.CreatedAt.Before(c.end) {
			if !closed {
				w.smpBalance, closed = e.BalanceAfterVND-e.WalletEffect(), true
			}
			if e.Type == smp.WalletTopup {
				t, err := c.topup(ctx, e.GatewayRef)
				if err != nil {
					return err
				}
				if t != nil && !t.PayDate.IsZero() && t.PayDate.Before(c.end) {
					w.smpBalance += e.WalletEffect() // value-dated: paid by the day's end
					late = e
				}
			}
			continue
		}
		last = e
	}
	switch {
	case !closed && last != nil:
		w.smpBalance = last.BalanceAfterVND
	case !closed && w.account != nil:
		w.smpBalance = w.account.BalanceVND
	}
	if late != nil {
		last = late // the last entry the balance counts
	}
	if last != nil {
		w.row.LastTxnID = last.ID
		return nil
	}
	// No entry on the day: the partner's last before it.
	if !closed && w.account != nil && w.account.LastSeq > 0 {
		es, err := st.FindWalletEntries(ctx, smp.WalletEntryFilter{AfterSeq: w.account.LastSeq - 1, Limit: 1})
		if err != nil {
			return err
		}
		if len(es) == 1 && es[0].PartnerID == w.row.PartnerID {
			w.row.LastTxnID = es[0].ID
		}
		return nil
	}
	es, err := smp.AllWalletEntries(ctx, st, smp.WalletEntryFilter{PartnerID: w.row.PartnerID, From: c.start.AddDate(0, 0, -30), To: c.start})
	if err != nil {
		return err
	}
	if len(es) > 0 {
		w.row.LastTxnID = es[len(es)-1].ID
	}
	return nil
}

func (c *comparison) topup(ctx context.Context, ref string) (*smp.Topup, error) {
	if t, ok := c.topups[ref]; ok {
		return t, nil
	}
	t, err := c.s.cfg.Store.FindTopup(ctx, smp.GatewayVNPay, ref)
	if smp.ErrorCode(err) == smp.ENOTFOUND {
		c.topups[ref] = nil
		return nil, nil
	} else if err != nil {
		return nil, err
	}
	c.topups[ref] = t
	return t, nil
}

// record compares one gateway record with SMP's entry of its transaction.
func (c *comparison) record(ctx context.Context, w *partnerWork, t *smp.Topup, r Record) error {
	w.seen[r.TxnRef] = true
	g := &smp.ReconGatewayRecord{TxnRef: r.TxnRef, TransactionNo: r.TransactionNo, Currency: r.Currency, Amount: r.Amount, AmountVND: r.AmountVND,
		PayDate: r.PayDate}
	if r.Currency != "VND" {
		rr, err := c.rate(ctx, r.Currency, r.PayDate.In(vnpay.Loc).Format("2006-01-02"))
		if err != nil {
			return err
		}
		if rr.note != "" {
			w.inconclusive(rr.note)
			return nil
		}
		vnd, ok := convert(r.Amount, rr.rate)
		if !ok {
			w.inconclusive(fmt.Sprintf("%s: amount %s %s cannot be converted at %s", r.TxnRef, r.Amount, r.Currency, rr.rate))
			return nil
		}
		g.AmountVND, g.Rate, g.RateDate = vnd, rr.rate, rr.date
	}
	st := c.s.cfg.Store
	e, err := st.FindWalletEntry(ctx, smp.GatewayPostingID(smp.GatewayVNPay, r.TxnRef))
	if smp.ErrorCode(err) == smp.ENOTFOUND {
		e = nil
	} else if err != nil {
		return err
	}
	if e == nil && t.Status == smp.TopupPending && c.s.cfg.Replayer != nil && c.now.Sub(r.PayDate) < smp.ReconAutoCorrectWindow {
		// Scenario 1: a notification missing for under 24 h.
		outcome, err := c.s.cfg.Replayer.ReplayTopup(ctx, t, c.actor)
		if err != nil {
			w.inconclusive(fmt.Sprintf("%s: missing in SMP; querydr failed: %s", r.TxnRef, smp.ErrorMessage(err)))
			return nil
		}
		if outcome == "applied" || outcome == "already_present" {
			if e, err = st.FindWalletEntry(ctx, smp.GatewayPostingID(smp.GatewayVNPay, r.TxnRef)); smp.ErrorCode(err) == smp.ENOTFOUND {
				e = nil
			} else if err != nil {
				return err
			}
			if e != nil {
				if !e.CreatedAt.Before(c.end) && !c.inEntries(w, e) {
					w.smpBalance += e.WalletEffect() // applied now, paid on the day
				}
				w.row.LastTxnID = e.ID
				w.row.Detail.AutoCorrected = append(w.row.Detail.AutoCorrected, smp.ReconPair{TxnRef: r.TxnRef, Kind: smp.ReconMissingInSMP, SMP: entryOf(e), Gateway: g})
			}
		}
	}
	switch {
	case e == nil && smp.HeldTopup(t.Status):
		// Held by the ledger (frozen, soft block cap, guard rail), being
		// reversed or refunded: the gateway has the money, the wallet was
		// never credited, and SMP knows why.
		w.diff -= g.AmountVND
		w.expected -= g.AmountVND
		w.row.Detail.Held = append(w.row.Detail.Held, smp.ReconHeldTopup{TxnRef: r.TxnRef, Status: string(t.Status), HoldReason: t.HoldReason,
			RefundNo: t.RefundNo, Gateway: g})
	case e == nil:
		w.diff -= g.AmountVND
		w.pair(smp.ReconPair{TxnRef: r.TxnRef, Kind: smp.ReconMissingInSMP, Gateway: g})
	case e.WalletEffect() != g.AmountVND:
		w.diff += e.WalletEffect() - g.AmountVND
		w.pair(smp.ReconPair{TxnRef: r.TxnRef, Kind: smp.ReconAmountDiffers, SMP: entryOf(e), Gateway: g})
	}
	return nil
}

func (c *comparison) inEntries(w *partnerWork, e *smp.WalletEntry) bool {
	for _, x := range w.entries {
		if x.Seq == e.Seq {
			return true
		}
	}
	return false
}

// smpSide lists what SMP has and the gateway's file does not: gateway
// postings paid on the day with no record, the day's adjustments
// (scenario 2) and reversals of gateway postings.
func (c *comparison) smpSide(ctx context.Context, w *partnerWork) error {
	for _, e := range w.entries {
		switch e.Type {
		case smp.WalletTopup, smp.WalletRefund:
			if w.seen[e.GatewayRef] || e.Gateway != smp.GatewayVNPay {
				continue
			}
			t, err := c.topup(ctx, e.GatewayRef)
			if err != nil {
				return err
			}
			paid := e.CreatedAt
			if t != nil && !t.PayDate.IsZero() {
				paid = t.PayDate
			}
			if paid.Before(c.start) || !paid.Before(c.end) {
				continue // another day's
			}
			w.diff += e.WalletEffect()
			w.pair(smp.ReconPair{TxnRef: e.GatewayRef, Kind: smp.ReconMissingAtGateway, SMP: entryOf(e)})
		case smp.WalletAdjustment, smp.WalletReversal:
			if !e.CreatedAt.Before(c.end) {
				continue
			}
			var expected *int64
			if e.Type == smp.WalletReversal {
				orig, err := c.s.cfg.Store.FindWalletEntry(ctx, e.Reverses)
				if err != nil {
					return err
				}
				switch orig.Type {
				case smp.WalletAdjustment:
					if orig.ExpectedDiffVND != nil {
						v := -*orig.ExpectedDiffVND
						expected = &v
					}
				case smp.WalletTopup, smp.WalletRefund:
					w.diff += e.WalletEffect()
					w.pair(smp.ReconPair{TxnRef: orig.GatewayRef, Kind: smp.ReconMissingAtGateway, SMP: entryOf(e)})
					continue
				default:
					continue // a commission's reversal: SMP's own
				}
			} else {
				expected = e.ExpectedDiffVND
			}
			w.diff += e.WalletEffect()
			a := smp.ReconAdjustment{ID: e.ID, AmountVND: e.WalletEffect(), Reason: e.Reason, Actor: e.Actor, ExpectedDiffVND: expected, CreatedAt: e.CreatedAt}
			if expected != nil {
				w.expected += *expected
				a.Matched = *expected == e.WalletEffect()
			}
			w.row.Detail.Adjustments = append(w.row.Detail.Adjustments, a)
		}
	}
	return nil
}

func (c *comparison) rows(parts map[string]*partnerWork) []smp.ReconRow {
	out := make([]smp.ReconRow, 0, len(parts))
	for _, w := range parts {
		r := w.row
		r.SMPBalanceVND = w.smpBalance
		if w.inconcl {
			r.Verdict, r.Note = smp.ReconInconclusive, clip(strings.Join(w.notes, "; "), 1000)
			r.GatewayBalanceVND, r.DiffPct = 0, ""
			out = append(out, r)
			continue
		}
		r.DiffVND, r.ExpectedDiffVND = w.diff, w.expected
		r.GatewayBalanceVND = w.smpBalance - w.diff
		r.DiffPct = pctOf(r.DiffVND, r.GatewayBalanceVND)
		unexplained := r.DiffVND - r.ExpectedDiffVND
		switch {
		case overThreshold(unexplained, r.GatewayBalanceVND, smp.ReconMaxDiffVND):
			r.Verdict = smp.ReconMismatch
			r.Note = fmt.Sprintf("%d VND (%s %%) unexplained", unexplained, pctOf(unexplained, r.GatewayBalanceVND))
		case len(r.Detail.AutoCorrected) > 0:
			r.Verdict = smp.ReconAutoCorrected
			r.Note = fmt.Sprintf("%d missed notification(s) queried and applied", len(r.Detail.AutoCorrected))
		case r.DiffVND != 0 && (len(r.Detail.Adjustments) > 0 || len(r.Detail.Held) > 0):
			r.Verdict = smp.ReconExplained
			var why []string
			if len(r.Detail.Adjustments) > 0 {
				why = append(why, fmt.Sprintf("%d adjustment(s)", len(r.Detail.Adjustments)))
			}
			if len(r.Detail.Held) > 0 {
				var vnd int64
				for _, h := range r.Detail.Held {
					vnd += h.Gateway.AmountVND
				}
				why = append(why, fmt.Sprintf("%d held top-up(s) of %d VND settled by the gateway, not credited", len(r.Detail.Held), vnd))
			}
			r.Note = fmt.Sprintf("expected %d VND: %s", r.ExpectedDiffVND, strings.Join(why, ", "))
		default:
			r.Verdict = smp.ReconOK
		}
		out = append(out, r)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].PartnerID < out[j].PartnerID })
	return out
}

type rateResult struct {
	rate, date string
	note       string // non-empty: inconclusive
}

// rate finds cur→VND at day: the rate of that day or of the latest day
// before it; one older than ReconStaleRateDays days is stale.
func (c *comparison) rate(ctx context.Context, cur, day string) (rateResult, error) {
	k := cur + "/" + day
	if r, ok := c.rates[k]; ok {
		return r, nil
	}
	d, err := time.Parse("2006-01-02", day)
	if err != nil {
		return rateResult{}, err
	}
	res := rateResult{note: fmt.Sprintf("inconclusive: stale rate: no %s→VND rate in currency_rates within 30 days of %s", cur, day)}
	for back := 0; back <= 30; back++ {
		date := d.AddDate(0, 0, -back).Format("2006-01-02")
		rec, err := c.s.cfg.Store.FindMasterRecord(ctx, smp.MasterCurrencyRates, strings.Join([]string{cur, "VND", date}, smp.KeySeparator))
		if smp.ErrorCode(err) == smp.ENOTFOUND {
			continue
		} else if err != nil {
			return rateResult{}, err
		}
		res = rateResult{rate: rec.Fields["rate"], date: date}
		if back > smp.ReconStaleRateDays {
			res.note = fmt.Sprintf("inconclusive: stale rate: the latest %s→VND rate is of %s, more than %d days before %s", cur, date, smp.ReconStaleRateDays, day)
		}
		break
	}
	c.rates[k] = res
	return res, nil
}

// FindRuns lists the kept runs matching f, newest first (no rows).
func (s *Service) FindRuns(ctx context.Context, f smp.ReconRunFilter) ([]*smp.ReconRun, error) {
	return s.cfg.Store.FindReconRuns(ctx, f)
}

// FindRun returns a kept run with its rows; ENOTFOUND.
func (s *Service) FindRun(ctx context.Context, id string) (*smp.ReconRun, error) {
	return s.cfg.Store.FindReconRun(ctx, id)
}
