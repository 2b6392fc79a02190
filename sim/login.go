package sim

import (
	"context"
	"fmt"
	"strings"
)

// Login logs a technician or customer in as their app does: it asks
// baseURL for a code for phone (POST /v1/auth/otp), reads it from the
// simulated provider's outbox, and exchanges it (POST /v1/auth/verify)
// for a session token.
func Login(ctx context.Context, baseURL, phone string, sms *SMS) (string, error) {
	base := strings.TrimSuffix(baseURL, "/")
	n := len(sms.Outbox())
	if err := postJSON(ctx, base+"/v1/auth/otp", "", map[string]string{"phone": phone}, nil); err != nil {
		return "", err
	}
	msg, err := sms.Wait(ctx, phone, n)
	if err != nil {
		return "", fmt.Errorf("login %s: no code arrived: %w", phone, err)
	}
	var out struct {
		Token string `json:"token"`
	}
	if err := postJSON(ctx, base+"/v1/auth/verify", "", map[string]string{"phone": phone, "code": msg.Code()}, &out); err != nil {
		return "", err
	}
	return out.Token, nil
}
