package connect

import (
	"context"
	"fmt"
	"log/slog"
	"strconv"
	"time"

	"smp"
	"smp/internal/startstop"
)

// Watchdog restarts failed connectors and tasks by itself, as
// POST /connectors/{c}/restart?includeTasks=true&onlyFailed=true would
// (runbook INC-008's first mitigation, before anyone is paged): a task
// found FAILED is restarted after Backoff, doubled at each failure that
// follows, up to MaxBackoff; after MaxRestarts restarts without the task
// staying RUNNING for StableAfter it gives up and leaves it FAILED (and
// the alert firing). Every restart and every giving up is logged and
// audited (Audit, actor "system:connect-watchdog").
type Watchdog struct {
	*startstop.Func
	w   *Worker
	cfg WatchdogConfig
	log *slog.Logger

	tries map[string]*tries // by connector/task ("c/-1" the connector instance)
}

type tries struct {
	n      int       // restarts so far
	next   time.Time // when the next restart may happen
	last   time.Time // when the last restart happened
	gaveUp bool
}

// WatchdogConfig configures the watchdog; zero values take the defaults.
type WatchdogConfig struct {
	Every       time.Duration // between checks (10 s)
	Backoff     time.Duration // before the first restart (5 s)
	MaxBackoff  time.Duration // (5 min)
	MaxRestarts int           // restarts before giving up (5)
	StableAfter time.Duration // RUNNING this long after a restart resets the count (5 min)
	// Audit records an automatic action in the audit log.
	Audit  func(ctx context.Context, e smp.AuditEntry) error
	Now    func() time.Time
	Logger *slog.Logger
}

// Actor is the watchdog's name in audit entries.
const Actor = "system:connect-watchdog"

// NewWatchdog returns a watchdog of w; Start runs Check every Every.
func NewWatchdog(w *Worker, cfg WatchdogConfig) *Watchdog {
	if cfg.Every <= 0 {
		cfg.Every = 10 * time.Second
	}
	if cfg.Backoff <= 0 {
		cfg.Backoff = 5 * time.Second
	}
	if cfg.MaxBackoff <= 0 {
		cfg.MaxBackoff = 5 * time.Minute
	}
	if cfg.MaxRestarts <= 0 {
		cfg.MaxRestarts = 5
	}
	if cfg.StableAfter <= 0 {
		cfg.StableAfter = 5 * time.Minute
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	d := &Watchdog{w: w, cfg: cfg, log: cfg.Logger.With("service", "connect-watchdog"), tries: map[string]*tries{}}
	d.Func = startstop.NewFunc(func(ctx context.Context) {
		t := time.NewTicker(cfg.Every)
		defer t.Stop()
		for {
			select {
			case <-ctx.Done():
				return
			case <-t.C:
				d.Check(ctx)
			}
		}
	})
	return d
}

// Check looks at every connector once and restarts what is due. It is
// what the loop calls; tests call it with an injected clock.
func (d *Watchdog) Check(ctx context.Context) {
	now := d.cfg.Now()
	for _, name := range d.w.Connectors() {
		st, err := d.w.Status(name)
		if err != nil {
			continue // deleted meanwhile
		}
		d.judge(ctx, now, name, -1, st.Connector.State, st.Connector.Trace)
		for _, t := range st.Tasks {
			d.judge(ctx, now, name, t.ID, t.State, t.Trace)
		}
	}
}

func (d *Watchdog) judge(ctx context.Context, now time.Time, connector string, task int, state State, trace string) {
	key := connector + "/" + strconv.Itoa(task)
	tr := d.tries[key]
	if state != Failed {
		if tr != nil && state == Running && now.Sub(tr.last) >= d.cfg.StableAfter {
			delete(d.tries, key) // it stayed up: the next failure starts afresh
		}
		return
	}
	if tr == nil {
		tr = &tries{next: now.Add(d.cfg.Backoff)}
		d.tries[key] = tr
	}
	target := connector
	if task >= 0 {
		target = fmt.Sprintf("%s/tasks/%d", connector, task)
	}
	if tr.gaveUp || now.Before(tr.next) {
		return
	}
	if tr.n >= d.cfg.MaxRestarts {
		tr.gaveUp = true
		d.log.Error("gave up restarting: left FAILED", "connector", connector, "task", task, "restarts", tr.n, "trace", trace)
		d.audit(ctx, now, "connect.watchdog_gave_up", target, trace, fmt.Sprintf("left FAILED after %d restarts", tr.n))
		return
	}
	var err error
	if task >= 0 {
		err = d.w.RestartTask(connector, task)
	} else {
		_, err = d.w.Restart(connector, false, true)
	}
	tr.n++
	tr.last = now
	backoff := d.cfg.Backoff << tr.n
	if backoff > d.cfg.MaxBackoff || backoff <= 0 {
		backoff = d.cfg.MaxBackoff
	}
	tr.next = now.Add(backoff)
	outcome := fmt.Sprintf("restart %d of %d", tr.n, d.cfg.MaxRestarts)
	if err != nil {
		outcome += ": " + err.Error()
	}
	d.log.Warn("restarted a failed instance", "connector", connector, "task", task, "restart", tr.n, "trace", trace, "err", err)
	d.audit(ctx, now, "connect.restart", target, trace, outcome)
}

func (d *Watchdog) audit(ctx context.Context, now time.Time, action, target, before, after string) {
	if d.cfg.Audit == nil {
		return
	}
	if len(before) > 2000 {
		before = before[:2000]
	}
	e := smp.AuditEntry{At: now, Actor: Actor, Action: action, Target: "connector:" + target, Before: before, After: after,
		Reason: "INC-008: a FAILED connector or task is restarted by itself (restart?includeTasks=true&onlyFailed=true)"}
	if err := d.cfg.Audit(ctx, e); err != nil {
		d.log.Error("audit of an automatic action failed", "action", action, "target", target, "err", err)
	}
}
