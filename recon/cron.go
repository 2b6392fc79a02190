package recon

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"smp"
)

// Start runs the nightly schedule until Stop (nothing when At is "off"):
// every Poll it runs RunDue. Idempotent.
func (s *Service) Start(ctx context.Context) error {
	ctx, ok := s.StartInit(ctx)
	if !ok {
		return nil
	}
	if s.at >= 0 {
		s.Go(func() {
			t := time.NewTicker(s.cfg.Poll)
			defer t.Stop()
			for {
				if _, err := s.RunDue(ctx); err != nil && ctx.Err() == nil {
					s.log.Warn("recon: scheduled run failed; the next poll tries again", "err", err)
				}
				select {
				case <-ctx.Done():
					return
				case <-t.C:
				}
			}
		})
	}
	s.MarkStarted()
	return nil
}

// RunDue runs the reconciliation of yesterday (Asia/Ho_Chi_Minh) if it
// is due: past At (UTC) today, no completed run of that day kept, and no
// other run of it in the last RetryAfter (an inconclusive or failed run
// is tried again an hour later). One process at a time: the run holds
// the lease lock:wallet-reconciliation-cron, and the history is read
// again under it, so two processes due at once make one run. It returns
// the run made, or nil.
func (s *Service) RunDue(ctx context.Context) (*smp.ReconRun, error) {
	if s.at < 0 || s.cfg.Locker == nil {
		return nil, nil
	}
	now := s.cfg.Now().UTC()
	if now.Sub(now.Truncate(24*time.Hour)) < s.at {
		return nil, nil
	}
	day := Yesterday(now)
	if due, err := s.due(ctx, day, now); err != nil || !due {
		return nil, err
	}
	// A token of this attempt: a lease is re-entrant for its owner, and
	// two attempts of one process must not both hold it.
	nonce := make([]byte, 4)
	rand.Read(nonce)
	owner := s.cfg.Owner + "/" + hex.EncodeToString(nonce)
	ok, err := s.cfg.Locker.TryLock(ctx, LeaseKey, owner, s.cfg.LeaseTTL)
	if err != nil {
		return nil, err
	}
	if !ok {
		s.runs.WithLabelValues("skipped").Inc()
		return nil, nil
	}
	defer s.cfg.Locker.Unlock(context.WithoutCancel(ctx), LeaseKey, owner)
	if due, err := s.due(ctx, day, now); err != nil || !due {
		if err == nil {
			s.runs.WithLabelValues("skipped").Inc()
		}
		return nil, err
	}
	return s.Run(ctx, day, Trigger{Kind: smp.ReconTriggerCron})
}

func (s *Service) due(ctx context.Context, day string, now time.Time) (bool, error) {
	runs, err := s.cfg.Store.FindReconRuns(ctx, smp.ReconRunFilter{Day: day, Limit: 50})
	if err != nil {
		return false, err
	}
	for _, r := range runs {
		if r.Status == smp.ReconCompleted || now.Sub(r.StartedAt) < s.cfg.RetryAfter {
			return false, nil
		}
	}
	return true, nil
}

// collector exports the last completed run's figures, read from the
// store at each scrape (every process the same, whichever ran it).
type collector struct{ s *Service }

var (
	descDiffPct = prometheus.NewDesc("wallet_recon_diff_pct",
		"The largest unexplained difference between a partner's SMP wallet balance and the gateway's records, in percent of the gateway's balance, over the partners of the last completed reconciliation (runbook INC-010: > 0.01 is a mismatch).", nil, nil)
	descDiffVND = prometheus.NewDesc("wallet_recon_diff_amount_vnd",
		"The largest unexplained absolute difference in VND over the partners of the last completed reconciliation (> 100000 is a mismatch).", nil, nil)
	descMismatches = prometheus.NewDesc("wallet_recon_mismatches",
		"Partners whose wallet did not reconcile in the last completed reconciliation.", nil, nil)
	descInconclusive = prometheus.NewDesc("wallet_recon_inconclusive_partners",
		"Partners the last completed reconciliation could not judge (a stale currency rate, a failed query).", nil, nil)
	descLastSuccess = prometheus.NewDesc("wallet_recon_last_success_timestamp_seconds",
		"When the last completed reconciliation finished (Unix seconds; 0 when none ever did).", nil, nil)
)

func (c *collector) Describe(ch chan<- *prometheus.Desc) {
	for _, d := range []*prometheus.Desc{descDiffPct, descDiffVND, descMismatches, descInconclusive, descLastSuccess} {
		ch <- d
	}
}

func (c *collector) Collect(ch chan<- prometheus.Metric) {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	runs, err := c.s.cfg.Store.FindReconRuns(ctx, smp.ReconRunFilter{Status: smp.ReconCompleted, Limit: 1})
	if err != nil {
		c.s.log.Warn("recon: metrics: reading the last run failed", "err", err)
		return
	}
	var pct, vnd, mism, inc, last float64
	if len(runs) == 1 {
		r := runs[0]
		pct = pctFloat(r.MaxDiffPct)
		vnd, mism, inc = float64(r.MaxDiffVND), float64(r.Mismatches), float64(r.Inconclusive)
		last = float64(r.FinishedAt.UnixMilli()) / 1000
	}
	ch <- prometheus.MustNewConstMetric(descDiffPct, prometheus.GaugeValue, pct)
	ch <- prometheus.MustNewConstMetric(descDiffVND, prometheus.GaugeValue, vnd)
	ch <- prometheus.MustNewConstMetric(descMismatches, prometheus.GaugeValue, mism)
	ch <- prometheus.MustNewConstMetric(descInconclusive, prometheus.GaugeValue, inc)
	ch <- prometheus.MustNewConstMetric(descLastSuccess, prometheus.GaugeValue, last)
}
