package payments

import (
	"bytes"
	"encoding/json"
	"fmt"
	"time"

	"smp"
)

// MaxBody is the largest webhook body accepted.
const MaxBody = 64 << 10

// Webhook is inside's payment event.
type Webhook struct {
	EventID    string    `json:"event_id"`
	EventType  string    `json:"event_type"`
	OrderID    string    `json:"order_id"`
	AmountVND  int64     `json:"amount_vnd"`
	OccurredAt time.Time `json:"occurred_at"`
}

// statusFor maps an inside event type to the payment status it reports.
var statusFor = map[string]smp.PaymentStatus{
	smp.InsidePaymentSucceeded: smp.PaymentPaid,
	smp.InsidePaymentFailed:    smp.PaymentFailed,
	smp.InsidePaymentRefunded:  smp.PaymentRefunded,
}

// Parse decodes and checks a webhook body. A body that is exactly the
// runbook's probe {"test":true} returns test true. Errors are EINVALID
// with a message fit for the provider.
func Parse(body []byte) (w Webhook, test bool, err error) {
	var probe struct {
		Test *bool `json:"test"`
	}
	if err := json.Unmarshal(body, &probe); err != nil {
		return w, false, smp.Errorf(smp.EINVALID, "body is not a JSON object: %v", err)
	}
	if probe.Test != nil {
		var m map[string]json.RawMessage
		if json.Unmarshal(body, &m) == nil && len(m) == 1 && *probe.Test {
			return w, true, nil
		}
		return w, false, smp.Errorf(smp.EINVALID, `a probe is exactly {"test":true}`)
	}
	dec := json.NewDecoder(bytes.NewReader(body))
	dec.UseNumber()
	if err := dec.Decode(&w); err != nil {
		return w, false, smp.Errorf(smp.EINVALID, "schema mismatch: %v", err)
	}
	if dec.More() {
		return w, false, smp.Errorf(smp.EINVALID, "schema mismatch: trailing data after the JSON object")
	}
	switch {
	case w.EventID == "" || len(w.EventID) > 64:
		return w, false, smp.Errorf(smp.EINVALID, "event_id is required (at most 64 characters)")
	case statusFor[w.EventType] == "":
		return w, false, smp.Errorf(smp.EINVALID, "event_type %q is not one of %s, %s, %s", w.EventType, smp.InsidePaymentSucceeded, smp.InsidePaymentFailed, smp.InsidePaymentRefunded)
	case w.OrderID == "" || len(w.OrderID) > 64:
		return w, false, smp.Errorf(smp.EINVALID, "order_id is required (at most 64 characters)")
	case w.AmountVND <= 0:
		return w, false, smp.Errorf(smp.EINVALID, "amount_vnd must be a positive whole number of VND")
	case w.OccurredAt.IsZero():
		return w, false, smp.Errorf(smp.EINVALID, "occurred_at is required (RFC 3339)")
	}
	return w, false, nil
}

func (w Webhook) String() string {
	return fmt.Sprintf("%s %s order=%s amount=%d", w.EventID, w.EventType, w.OrderID, w.AmountVND)
}
