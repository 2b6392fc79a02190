// Package payments applies what the payment provider "inside" reports,
// exactly once: signed webhooks are verified, stored in event_log before
// they are acknowledged, processed asynchronously with retries and
// backoff, dead-lettered with their error, and replayable by ops.
package payments

import (
	"crypto/hmac"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/hex"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"
)

// SignatureHeader carries "t=<unix seconds>,v1=<hex HMAC-SHA256(secret, "<t>." + body)>";
// several v1= values may appear (the provider signs with each active secret).
const SignatureHeader = "X-Signature"

// Tolerance: a signature more than this old or ahead is rejected (replays).
const Tolerance = 5 * time.Minute

// Signature errors, as counted in smp_webhook_signature_failures_total{reason}.
var (
	ErrSignatureMissing   = errors.New("missing")
	ErrSignatureMalformed = errors.New("malformed")
	ErrSignatureExpired   = errors.New("timestamp outside tolerance")
	ErrSignatureMismatch  = errors.New("mismatch")
)

// Sign returns the X-Signature value for body at t with secret.
func Sign(secret []byte, t time.Time, body []byte) string {
	return fmt.Sprintf("t=%d,v1=%s", t.Unix(), hex.EncodeToString(mac(secret, t.Unix(), body)))
}

func mac(secret []byte, ts int64, body []byte) []byte {
	m := hmac.New(sha256.New, secret)
	m.Write([]byte(strconv.FormatInt(ts, 10)))
	m.Write([]byte("."))
	m.Write(body)
	return m.Sum(nil)
}

// Verify checks header against body with any of secrets at now. Every
// candidate is compared in constant time.
func Verify(header string, body []byte, secrets [][]byte, now time.Time) error {
	if strings.TrimSpace(header) == "" {
		return ErrSignatureMissing
	}
	var ts int64 = -1
	var sigs [][]byte
	for _, part := range strings.Split(header, ",") {
		k, v, ok := strings.Cut(strings.TrimSpace(part), "=")
		if !ok {
			return ErrSignatureMalformed
		}
		switch k {
		case "t":
			n, err := strconv.ParseInt(v, 10, 64)
			if err != nil || n < 0 || ts != -1 {
				return ErrSignatureMalformed
			}
			ts = n
		case "v1":
			b, err := hex.DecodeString(v)
			if err != nil || len(b) != sha256.Size {
				return ErrSignatureMalformed
			}
			sigs = append(sigs, b)
		default:
			// Other schemes (v0, ...) are ignored, as providers add them.
		}
	}
	if ts == -1 || len(sigs) == 0 || len(sigs) > 8 {
		return ErrSignatureMalformed
	}
	if d := now.Sub(time.Unix(ts, 0)); d > Tolerance || d < -Tolerance {
		return ErrSignatureExpired
	}
	ok := 0
	for _, secret := range secrets {
		want := mac(secret, ts, body)
		for _, s := range sigs {
			ok |= subtle.ConstantTimeCompare(want, s) // constant time; no early exit
		}
	}
	if ok == 0 {
		return ErrSignatureMismatch
	}
	return nil
}

// ParseSecrets splits SMP_INSIDE_WEBHOOK_SECRET: comma-separated, so two
// secrets are active while rotating.
func ParseSecrets(v string) [][]byte {
	var out [][]byte
	for _, s := range strings.Split(v, ",") {
		if s = strings.TrimSpace(s); s != "" {
			out = append(out, []byte(s))
		}
	}
	return out
}
