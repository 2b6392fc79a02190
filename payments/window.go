package payments

import (
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
)

// The INC-002 alert judges the 5xx share of webhooks over 5 minutes
// (deploy/prometheus: webhook_processing_errors_5xx_rate). smp runbook
// check reads one scrape, so the service keeps the same window itself:
// counts per 10-second slot over the last 5 minutes, on the injected clock.

const (
	windowSlot  = 10 * time.Second
	windowSlots = 30 // 5 minutes
)

type window struct {
	mu    sync.Mutex
	slots [windowSlots]struct {
		at         int64 // slot start, unix seconds / 10
		all, fives int64
	}
}

func (w *window) add(now time.Time, fivexx bool) {
	k := now.Unix() / int64(windowSlot/time.Second)
	w.mu.Lock()
	defer w.mu.Unlock()
	s := &w.slots[k%windowSlots]
	if s.at != k {
		s.at, s.all, s.fives = k, 0, 0
	}
	s.all++
	if fivexx {
		s.fives++
	}
}

// counts returns the requests and the 5xx answers of the last 5 minutes.
func (w *window) counts(now time.Time) (all, fives int64) {
	k := now.Unix() / int64(windowSlot/time.Second)
	w.mu.Lock()
	defer w.mu.Unlock()
	for _, s := range w.slots {
		if s.at > k-windowSlots && s.at <= k {
			all += s.all
			fives += s.fives
		}
	}
	return all, fives
}

var (
	windowDesc = prometheus.NewDesc("smp_webhook_requests_last_5m",
		"Payment webhooks answered in the last 5 minutes, all and 5xx (the window of the INC-002 alert, for smp runbook check).", []string{"class"}, nil)
	secretDesc = prometheus.NewDesc("smp_webhook_secret_configured",
		"1 when inside's webhook signing secret (SMP_INSIDE_WEBHOOK_SECRET) is set in this webhook-serving process; 0: every webhook is refused with 503.", nil, nil)
)
