package inmem

import (
	"context"
	"fmt"
	"sync"
	"time"

	"smp"
)

// OTP is the in-process smp.OTPStore and smp.RateCounter of the embedded
// default: one-time codes by phone and rate counters by key, each dropped
// once it has expired (by the clock the caller passes). A restart
// forgets them, which only means asking for a new code.
type OTP struct {
	mu     sync.Mutex
	now    func() time.Time
	codes  map[string]otpEntry
	counts map[string]rateEntry
}

type otpEntry struct {
	c      smp.OTPChallenge
	expiry time.Time
}

type rateEntry struct {
	n      int64
	expiry time.Time
}

var (
	_ smp.OTPStore    = (*OTP)(nil)
	_ smp.RateCounter = (*OTP)(nil)
)

// NewOTP returns an empty store; now is the clock that expires codes
// (time.Now if nil).
func NewOTP(now func() time.Time) *OTP {
	if now == nil {
		now = time.Now
	}
	return &OTP{now: now, codes: map[string]otpEntry{}, counts: map[string]rateEntry{}}
}

// PutOTP replaces the phone's challenge for ttl.
func (o *OTP) PutOTP(_ context.Context, c smp.OTPChallenge, ttl time.Duration) error {
	o.mu.Lock()
	defer o.mu.Unlock()
	o.sweep()
	c.Attempts = 0
	o.codes[c.Phone] = otpEntry{c: c, expiry: o.now().Add(ttl)}
	return nil
}

// AttemptOTP counts an attempt and returns the challenge.
func (o *OTP) AttemptOTP(_ context.Context, phone string) (smp.OTPChallenge, bool, error) {
	o.mu.Lock()
	defer o.mu.Unlock()
	e, ok := o.codes[phone]
	if !ok || !o.now().Before(e.expiry) {
		delete(o.codes, phone)
		return smp.OTPChallenge{}, false, nil
	}
	e.c.Attempts++
	o.codes[phone] = e
	return e.c, true, nil
}

// DeleteOTP removes the challenge if its code hash is codeHash.
func (o *OTP) DeleteOTP(_ context.Context, phone, codeHash string) (bool, error) {
	o.mu.Lock()
	defer o.mu.Unlock()
	e, ok := o.codes[phone]
	if !ok || e.c.CodeHash != codeHash {
		return false, nil
	}
	delete(o.codes, phone)
	return true, nil
}

// Hit counts an event in key's window holding now.
func (o *OTP) Hit(_ context.Context, key string, window time.Duration, now time.Time) (int64, error) {
	if window <= 0 {
		return 0, smp.Errorf(smp.EINVALID, "rate window must be positive")
	}
	o.mu.Lock()
	defer o.mu.Unlock()
	o.sweep()
	k := fmt.Sprintf("%s:%d", key, now.UnixNano()/int64(window))
	e := o.counts[k]
	e.n++
	e.expiry = now.Truncate(window).Add(window)
	o.counts[k] = e
	return e.n, nil
}

// sweep drops what has expired, so the maps stay as small as the live
// codes and windows. Called with mu held.
func (o *OTP) sweep() {
	if len(o.codes)+len(o.counts) < 1024 {
		return
	}
	now := o.now()
	for k, e := range o.codes {
		if !now.Before(e.expiry) {
			delete(o.codes, k)
		}
	}
	for k, e := range o.counts {
		if !now.Before(e.expiry) {
			delete(o.counts, k)
		}
	}
}
