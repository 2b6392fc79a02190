package inmem

import (
	"context"
	"sync"
	"time"

	"smp"
)

// FraudWindows is the embedded smp.FraudWindows: the fraud detector's
// windows and partner averages in this process. They are empty at a
// restart: the detector rebuilds them from the stored top-ups before it
// consumes (fraud.Config.Rebuild); with Redis, redisstore.FraudWindows
// keeps them for every process.
type FraudWindows struct {
	mu       sync.Mutex
	partners map[string]*fraudPartner
	ips      map[string][]smp.FraudWindowTopup
	seen     map[string]seenView
}

type fraudPartner struct {
	country            string
	topups             []smp.FraudWindowTopup
	count, sum, maxRat int64
}

type seenView struct {
	at   time.Time
	view smp.FraudWindowView
}

var _ smp.FraudWindows = (*FraudWindows)(nil)

// NewFraudWindows returns empty windows.
func NewFraudWindows() *FraudWindows {
	return &FraudWindows{partners: map[string]*fraudPartner{}, ips: map[string][]smp.FraudWindowTopup{}, seen: map[string]seenView{}}
}

func (w *FraudWindows) partner(id string) *fraudPartner {
	p := w.partners[id]
	if p == nil {
		p = &fraudPartner{}
		w.partners[id] = p
	}
	return p
}

func trim(ts []smp.FraudWindowTopup, from time.Time) []smp.FraudWindowTopup {
	out := ts[:0]
	for _, t := range ts {
		if !t.At.Before(from) {
			out = append(out, t)
		}
	}
	return out
}

// RecordTopup adds o once by event id (see smp.FraudWindows).
func (w *FraudWindows) RecordTopup(_ context.Context, o smp.FraudTopupObs, keep time.Duration) (*smp.FraudWindowView, error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	if s, ok := w.seen[o.EventID]; ok {
		v := s.view
		return &v, nil
	}
	from := o.At.Add(-keep)
	p := w.partner(o.PartnerID)
	view := smp.FraudWindowView{PriorCount: p.count, PriorSumVND: p.sum, PriorMaxRatioMilli: p.maxRat}
	t := smp.FraudWindowTopup{TxnID: o.TxnID, PartnerID: o.PartnerID, AmountVND: o.AmountVND, At: o.At.UTC()}
	p.topups = append(trim(p.topups, from), t)
	view.Partner = append([]smp.FraudWindowTopup(nil), p.topups...)
	if o.IP != "" {
		w.ips[o.IP] = append(trim(w.ips[o.IP], from), t)
		view.IP = append([]smp.FraudWindowTopup(nil), w.ips[o.IP]...)
	}
	if p.count > 0 && p.sum > 0 {
		p.maxRat = max(p.maxRat, (o.AmountVND*1000*p.count+p.sum-1)/p.sum) // rounded up: just above 10× is above 10
	}
	p.count++
	p.sum += o.AmountVND
	for id, s := range w.seen {
		if s.at.Before(from) {
			delete(w.seen, id)
		}
	}
	w.seen[o.EventID] = seenView{at: o.At, view: view}
	return &view, nil
}

// SetPartnerCountry records a partner's registered country.
func (w *FraudWindows) SetPartnerCountry(_ context.Context, partnerID, country string) error {
	w.mu.Lock()
	defer w.mu.Unlock()
	w.partner(partnerID).country = country
	return nil
}

// PartnerCountry returns it, "" when unknown.
func (w *FraudWindows) PartnerCountry(_ context.Context, partnerID string) (string, error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	if p := w.partners[partnerID]; p != nil {
		return p.country, nil
	}
	return "", nil
}
