// Package smsgw is the production smp.SMSSender: a small client of an
// HTTP SMS gateway. It POSTs {"to","text"} as JSON to the gateway's URL
// with the gateway's bearer token (from the environment, SMP_SMS_TOKEN,
// never a flag or a log line); any 2xx means the gateway accepted the
// message. The text (a login code) is never logged.
package smsgw

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"time"

	"smp"
)

// Config of the client.
type Config struct {
	// URL the messages are POSTed to.
	URL string
	// Token is sent as "Authorization: Bearer <Token>" when set.
	Token string
	// Timeout of one send (default 10 s).
	Timeout time.Duration
}

// Client sends text messages through the gateway.
type Client struct {
	cfg  Config
	http *http.Client
}

var _ smp.SMSSender = (*Client)(nil)

// New returns a client; EINVALID for a URL that is not http(s).
func New(cfg Config) (*Client, error) {
	u, err := url.Parse(cfg.URL)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return nil, smp.Errorf(smp.EINVALID, "smsgw: --sms-url %q is not an http(s) URL", cfg.URL)
	}
	if cfg.Timeout <= 0 {
		cfg.Timeout = 10 * time.Second
	}
	return &Client{cfg: cfg, http: &http.Client{Timeout: cfg.Timeout}}, nil
}

// SendSMS posts one message; an error for a refusal or no answer.
func (c *Client) SendSMS(ctx context.Context, to, text string) error {
	body, _ := json.Marshal(map[string]string{"to": to, "text": text})
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, c.cfg.URL, bytes.NewReader(body))
	if err != nil {
		return fmt.Errorf("smsgw: %w", err)
	}
	req.Header.Set("Content-Type", "application/json")
	if c.cfg.Token != "" {
		req.Header.Set("Authorization", "Bearer "+c.cfg.Token)
	}
	resp, err := c.http.Do(req)
	if err != nil {
		return fmt.Errorf("smsgw: send: %w", err)
	}
	defer resp.Body.Close()
	io.Copy(io.Discard, io.LimitReader(resp.Body, 64<<10))
	if resp.StatusCode/100 != 2 {
		return fmt.Errorf("smsgw: the gateway answered HTTP %d", resp.StatusCode)
	}
	return nil
}
