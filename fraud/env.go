package fraud

import (
	"fmt"
	"time"

	"smp"
)

// TopupInput is the evaluated top-up request.
type TopupInput struct {
	TxnID     string
	PartnerID string
	AmountVND int64
	IP        string
	Country   string // the IP's country (ISO 3166-1 alpha-2), "" when unknown
	UserAgent string
	DeviceID  string
}

// PartnerInput is the partner behind it, as of just before it.
type PartnerInput struct {
	ID      string
	Country string // registered (partners.events), "" when unknown
	// PriorTopups and PriorSumVND: the partner's top-ups before this one.
	PriorTopups int64
	PriorSumVND int64
	// AvgTopupVND is PriorSumVND / PriorTopups rounded down (0 with none).
	AvgTopupVND int64
	// MaxRatioBefore is the largest ratio of an earlier top-up to the
	// partner's average before it (a ratio, not money).
	MaxRatioBefore float64
}

// Env is what a rule's expression sees: the top-up, its partner, and the
// windows through PartnerTopups, IPTopups and IPPartners. Each call's
// answer is recorded, so a decision shows what the rule saw.
type Env struct {
	Topup   TopupInput
	Partner PartnerInput

	at   time.Time
	view *smp.FraudWindowView
	seen map[string]any
}

func (e *Env) record(k string, v any) {
	if e.seen != nil {
		e.seen[k] = v
	}
}

func (e *Env) within(t time.Time, window time.Duration) bool {
	return !t.After(e.at) && e.at.Sub(t) < window
}

// PartnerTopups counts the partner's top-ups within window before this
// one's time, this one included.
func (e *Env) PartnerTopups(window time.Duration) int {
	n := 0
	if e.view != nil {
		for _, t := range e.view.Partner {
			if e.within(t.At, window) {
				n++
			}
		}
	}
	e.record(fmt.Sprintf("PartnerTopups(%s)", window), n)
	return n
}

// IPTopups counts the top-ups of at least minVND from this top-up's IP
// within window, this one included.
func (e *Env) IPTopups(minVND int64, window time.Duration) int {
	n := 0
	if e.view != nil {
		for _, t := range e.view.IP {
			if t.AmountVND >= minVND && e.within(t.At, window) {
				n++
			}
		}
	}
	e.record(fmt.Sprintf("IPTopups(%d, %s)", minVND, window), n)
	return n
}

// IPPartners counts the partners behind those top-ups.
func (e *Env) IPPartners(minVND int64, window time.Duration) int {
	ps := map[string]bool{}
	if e.view != nil {
		for _, t := range e.view.IP {
			if t.AmountVND >= minVND && e.within(t.At, window) {
				ps[t.PartnerID] = true
			}
		}
	}
	e.record(fmt.Sprintf("IPPartners(%d, %s)", minVND, window), len(ps))
	return len(ps)
}

// related lists the txn ids of the windows' top-ups a hit rule may be
// about: the partner's and the IP's within the kept span.
func (e *Env) related() []string {
	var out []string
	seen := map[string]bool{}
	if e.view == nil {
		return out
	}
	for _, ts := range [][]smp.FraudWindowTopup{e.view.Partner, e.view.IP} {
		for _, t := range ts {
			if !seen[t.TxnID] {
				seen[t.TxnID] = true
				out = append(out, t.TxnID)
			}
		}
	}
	return out
}
