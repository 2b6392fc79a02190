package payments_test

import (
	"testing"
	"time"

	"smp"
	"smp/payments"
)

// FuzzParse: any body either parses into a valid webhook (or the probe)
// or fails with EINVALID; it never panics.
func FuzzParse(f *testing.F) {
	f.Add([]byte(`{"test":true}`))
	f.Add([]byte(`{"event_id":"e1","event_type":"inside.payment.succeeded","order_id":"ord_1","amount_vnd":250000,"occurred_at":"2026-11-23T10:00:00Z"}`))
	f.Add([]byte(`{"event_id":"e1","event_type":"inside.payment.refunded","order_id":"ord_1","amount_vnd":1e3,"occurred_at":"2026-11-23T10:00:00+07:00"}`))
	f.Add([]byte(`[]`))
	f.Fuzz(func(t *testing.T, body []byte) {
		w, test, err := payments.Parse(body)
		if err != nil {
			if smp.ErrorCode(err) != smp.EINVALID {
				t.Fatalf("error %v is not EINVALID", err)
			}
			return
		}
		if test {
			return
		}
		if w.EventID == "" || w.OrderID == "" || w.AmountVND <= 0 || w.OccurredAt.IsZero() {
			t.Fatalf("accepted an incomplete webhook %+v from %q", w, body)
		}
	})
}

// FuzzVerify: a header never verifies unless it carries a MAC of this
// body with a known secret; Sign's output always verifies.
func FuzzVerify(f *testing.F) {
	now := time.Unix(1_800_000_000, 0)
	f.Add("t=1800000000,v1=0000000000000000000000000000000000000000000000000000000000000000", []byte(`{}`))
	f.Add(payments.Sign([]byte("s"), now, []byte(`{"a":1}`)), []byte(`{"a":1}`))
	f.Add("t=-1,v1=", []byte{})
	f.Add(",,,=,t=,v1=zz", []byte("x"))
	f.Fuzz(func(t *testing.T, header string, body []byte) {
		secrets := [][]byte{[]byte("s")}
		if err := payments.Verify(header, body, secrets, now); err == nil {
			// Only a genuine signature verifies: re-signing must reproduce one of its v1 values.
			if want := payments.Sign(secrets[0], timeOf(header), body); !containsV1(header, want) {
				t.Fatalf("header %q verified for body %q without a valid MAC", header, body)
			}
		}
		if err := payments.Verify(payments.Sign(secrets[0], now, body), body, secrets, now); err != nil {
			t.Fatalf("Sign's own header failed: %v", err)
		}
	})
}
