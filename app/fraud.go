package app

import (
	"context"
	"fmt"
	"os"
	"os/signal"
	"syscall"

	"smp"
	"smp/fraud"
	"smp/inmem"
	"smp/internal/startstop"
	"smp/wallet"
)

// initFraud runs the fraud detector (runbook INC-011): its rules file
// watcher, SIGHUP reloads, and the fraud-detector consumer of
// payments.events and partners.events on a router. Windows are in Redis
// when configured (every detector shares them), else in this process,
// rebuilt at start from the stored top-ups (fraud.Detector.Rebuild).
func (a *App) initFraud(ctx context.Context) (startstop.Service, error) {
	// In this process's memory the windows start empty at every start:
	// the detector rebuilds them from the stored top-ups before its
	// consumer runs.
	var windows smp.FraudWindows = inmem.NewFraudWindows()
	rebuild := true
	if a.Redis != nil {
		windows, rebuild = a.Redis.FraudWindows(), false
	}
	var geo fraud.GeoIP
	var geoDB *fraud.GeoIPDB
	if a.Cfg.GeoIPDB != "" {
		g, err := fraud.OpenGeoIP(a.Cfg.GeoIPDB)
		if err != nil {
			return nil, err
		}
		geo, geoDB = g, g
	}
	det, err := fraud.New(a.Store, fraud.Config{Windows: windows, Rebuild: rebuild, Geo: geo, RulesPath: a.Cfg.FraudRules, Poll: a.Cfg.FraudRulesPoll,
		Enforcer: walletEnforcer{a.Wallet}, Now: a.Cfg.Now, Logger: a.Log.With("service", ServiceFraud), Registerer: a.Registry})
	if err != nil {
		if geoDB != nil {
			geoDB.Stop(ctx)
		}
		return nil, err
	}
	a.Fraud = det
	r, err := a.newRouter()
	if err != nil {
		return nil, err
	}
	if err := det.AddIntake(r); err != nil {
		return nil, err
	}
	// SIGHUP is taken before the detector starts: its Start rebuilds the
	// windows from every stored top-up, which takes a while, and a SIGHUP
	// meanwhile must reload the rules, not end the process (the default).
	hup := &reloadOnHUP{det: det, log: a.Log, ch: a.Cfg.HUP}
	if geoDB != nil {
		return sequence{geoDB, hup, det, r}, nil
	}
	return sequence{hup, det, r}, nil
}

// reloadOnHUP reloads the fraud rules on SIGHUP: on Config.HUP, which
// smp serve subscribes before it opens the app (a SIGHUP during start-up,
// when /health already answers, waits for this module), else on a
// subscription of its own made in Start.
type reloadOnHUP struct {
	startstop.Base
	det *fraud.Detector
	log interface{ Info(string, ...any) }
	ch  <-chan os.Signal // Config.HUP; nil: subscribe in Start
}

func (h *reloadOnHUP) Start(ctx context.Context) error {
	run, ok := h.StartInit(ctx)
	if !ok {
		return nil
	}
	ch := h.ch
	if ch == nil {
		own := make(chan os.Signal, 1)
		signal.Notify(own, syscall.SIGHUP)
		ch = own
		h.Go(func() { <-run.Done(); signal.Stop(own) })
	}
	h.Go(func() {
		for {
			select {
			case <-run.Done():
				return
			case <-ch:
				if _, err := h.det.Reload(); err == nil { // a refusal is logged by Reload
					h.log.Info(fmt.Sprintf("fraud: rules reloaded on SIGHUP (version %s)", h.det.Rules().Version))
				}
			}
		}
	})
	h.MarkStarted()
	return nil
}

// walletEnforcer applies a flagged decision in the ledger as the fraud
// detector (wallet.SystemFraudDetector, audited), in the transaction that
// stores the decision: freeze freezes the wallet, soft_block soft-blocks
// it. A wallet already frozen stays frozen when a decision asks only for
// a soft block (ECONFLICT). What the wallet refuses before it writes is
// the detector's fraud.Refused.
type walletEnforcer struct{ w *wallet.Service }

func (e walletEnforcer) Enforce(ctx context.Context, tx smp.Tx, d *smp.FraudDecision) error {
	reason := fmt.Sprintf("fraud decision %s on %s: %v", d.ID, d.TxnID, d.Signals)
	if r := []rune(reason); len(r) > smp.MaxReason {
		reason = string(r[:smp.MaxReason-1]) + "…" // the decision has the whole of it
	}
	var err error
	switch d.Outcome {
	case smp.FraudFreeze:
		_, err = e.w.FreezeTx(ctx, tx, wallet.SystemFraudDetector, d.PartnerID, reason)
	case smp.FraudSoftBlock:
		_, err = e.w.SoftBlockTx(ctx, tx, wallet.SystemFraudDetector, d.PartnerID, reason)
	}
	if wallet.Refused(err) {
		return fraud.Refused(err)
	}
	return err
}
