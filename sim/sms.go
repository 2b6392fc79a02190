package sim

import (
	"context"
	"errors"
	"math/rand/v2"
	"regexp"
	"sync"
	"time"

	"smp"
)

// SMSMessage is a text the simulated provider delivered.
type SMSMessage struct {
	To   string    `json:"to"`
	Text string    `json:"text"`
	At   time.Time `json:"at"`
}

// SMS simulates the SMS provider (smp.SMSSender) with fault knobs: a
// delay before it answers, a share of messages accepted but never
// delivered (dropped), and outright failures. What it delivers lands in
// an outbox that tests read (Last, Wait) and the demo shows at
// GET /admin/sms/outbox.
type SMS struct {
	mu      sync.Mutex
	delay   time.Duration
	drop    float64
	fail    bool
	outbox  []SMSMessage
	sent    int64
	dropped int64
	changed chan struct{}
	// Now stamps delivered messages (time.Now by default).
	Now func() time.Time
	// Max bounds the outbox (default 1000): the oldest go first.
	Max int
}

var _ smp.SMSSender = (*SMS)(nil)

// ErrSMSFailed is what a failing simulated provider answers.
var ErrSMSFailed = errors.New("sms simulator: provider failure (fault knob)")

// SetDelay makes every send wait d (or until its context ends).
func (s *SMS) SetDelay(d time.Duration) { s.mu.Lock(); s.delay = d; s.mu.Unlock() }

// SetDropRate makes that share of sends succeed without delivering.
func (s *SMS) SetDropRate(r float64) { s.mu.Lock(); s.drop = r; s.mu.Unlock() }

// SetFail makes every send fail.
func (s *SMS) SetFail(fail bool) { s.mu.Lock(); s.fail = fail; s.mu.Unlock() }

// SendSMS delivers text to the outbox, subject to the knobs.
func (s *SMS) SendSMS(ctx context.Context, to, text string) error {
	s.mu.Lock()
	delay, drop, fail := s.delay, s.drop, s.fail
	s.mu.Unlock()
	if delay > 0 && !smp.Sleep(ctx, delay) {
		return ctx.Err()
	}
	if fail {
		return ErrSMSFailed
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	s.sent++
	if drop > 0 && rand.Float64() < drop {
		s.dropped++
		return nil
	}
	now := time.Now
	if s.Now != nil {
		now = s.Now
	}
	s.outbox = append(s.outbox, SMSMessage{To: to, Text: text, At: now().UTC()})
	if max := s.Max; (max > 0 && len(s.outbox) > max) || (max <= 0 && len(s.outbox) > 1000) {
		s.outbox = s.outbox[1:]
	}
	if s.changed != nil {
		close(s.changed)
		s.changed = nil
	}
	return nil
}

// Outbox returns the delivered messages, newest last.
func (s *SMS) Outbox() []SMSMessage {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]SMSMessage(nil), s.outbox...)
}

// Counts returns how many sends were accepted and how many of them dropped.
func (s *SMS) Counts() (sent, dropped int64) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.sent, s.dropped
}

// Last returns the newest message delivered to a number.
func (s *SMS) Last(to string) (SMSMessage, bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	for i := len(s.outbox) - 1; i >= 0; i-- {
		if s.outbox[i].To == to {
			return s.outbox[i], true
		}
	}
	return SMSMessage{}, false
}

// Wait returns the first message to a number delivered after the outbox
// held n messages in all (len(Outbox()) before the send), waiting until
// ctx ends.
func (s *SMS) Wait(ctx context.Context, to string, n int) (SMSMessage, error) {
	for {
		s.mu.Lock()
		for i := n; i < len(s.outbox); i++ {
			if s.outbox[i].To == to {
				m := s.outbox[i]
				s.mu.Unlock()
				return m, nil
			}
		}
		if s.changed == nil {
			s.changed = make(chan struct{})
		}
		ch := s.changed
		s.mu.Unlock()
		select {
		case <-ctx.Done():
			return SMSMessage{}, ctx.Err()
		case <-ch:
		}
	}
}

var codePattern = regexp.MustCompile(`\b[0-9]{6}\b`)

// Code returns the one-time code in a login text ("" if none).
func (m SMSMessage) Code() string { return codePattern.FindString(m.Text) }
