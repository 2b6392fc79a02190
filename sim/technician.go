package sim

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	mrand "math/rand/v2"
	"net/http"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/coder/websocket"
	"github.com/coder/websocket/wsjson"
)

// Behavior of a simulated technician.
type Behavior struct {
	AcceptRate  float64 // chance to accept an offer (default 0.8)
	DeclineRate float64 // chance to decline; the rest are ignored and expire (default 0.1)
	ThinkMin    time.Duration
	ThinkMax    time.Duration
	StartAfter  time.Duration // from assignment to starting the job
	WorkFor     time.Duration // from start to completion
	// Heartbeat is the longest interval between heartbeats (default
	// 10 s); the server's welcome (heartbeat_ms) shortens it, as the app
	// does: beating less often than the server asks gets the connection
	// closed as idle, and a phone that reconnects in a loop.
	Heartbeat time.Duration
}

func (b *Behavior) defaults() {
	if b.AcceptRate == 0 && b.DeclineRate == 0 {
		b.AcceptRate, b.DeclineRate = 0.8, 0.1
	}
	if b.ThinkMax <= 0 {
		b.ThinkMin, b.ThinkMax = 200*time.Millisecond, 1500*time.Millisecond
	}
	if b.StartAfter <= 0 {
		b.StartAfter = 2 * time.Second
	}
	if b.WorkFor <= 0 {
		b.WorkFor = 5 * time.Second
	}
	if b.Heartbeat <= 0 {
		b.Heartbeat = 10 * time.Second
	}
}

// TechnicianStats counts what a simulated technician saw and did.
type TechnicianStats struct {
	Connects, Offers, Accepted, Won, Lost, Declined, Completed atomic.Int64
}

// Technician is a simulated technician's phone.
type Technician struct {
	BaseURL string // http://host:port
	// Alternates are other processes of the platform: after a lost
	// connection the technician tries the next one.
	Alternates []string
	Me         SeededTechnician
	Behavior   Behavior
	Logger     *slog.Logger
	Stats      TechnicianStats
	// Observe, when set, hears what happens to an order on this phone:
	// "offer" (received), "won" (accept confirmed), "completed".
	Observe func(event, orderID string)

	rngMu sync.Mutex
	rng   *mrand.Rand
	jobs  sync.Map // order id -> struct{}
	cur   atomic.Int64
	wg    sync.WaitGroup
}

// NewTechnician returns a simulated technician.
func NewTechnician(baseURL string, me SeededTechnician, b Behavior, seed uint64, log *slog.Logger) *Technician {
	b.defaults()
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	return &Technician{BaseURL: strings.TrimSuffix(baseURL, "/"), Me: me, Behavior: b, Logger: log, rng: mrand.New(mrand.NewPCG(seed, 7))}
}

func (t *Technician) float() float64 {
	t.rngMu.Lock()
	defer t.rngMu.Unlock()
	return t.rng.Float64()
}

func (t *Technician) think() time.Duration {
	b := t.Behavior
	return b.ThinkMin + time.Duration(t.float()*float64(b.ThinkMax-b.ThinkMin))
}

// Run keeps the technician connected until ctx is done, reconnecting with
// backoff, and waits for jobs in flight to finish their step.
func (t *Technician) Run(ctx context.Context) {
	defer t.wg.Wait()
	backoff := 100 * time.Millisecond
	for ctx.Err() == nil {
		start := time.Now()
		err := t.session(ctx)
		if ctx.Err() != nil {
			return
		}
		if time.Since(start) > 5*time.Second {
			backoff = 100 * time.Millisecond
		}
		t.Logger.Debug("sim technician disconnected", "technician_id", t.Me.ID, "err", err)
		select {
		case <-ctx.Done():
			return
		case <-time.After(backoff):
		}
		backoff = min(backoff*2, 2*time.Second)
	}
}

type serverMsg struct {
	Type        string `json:"type"`
	OrderID     string `json:"order_id"`
	Accepted    *bool  `json:"accepted"`
	Code        string `json:"code"`
	Message     string `json:"message"`
	HeartbeatMs int64  `json:"heartbeat_ms"`
}

// heartbeatEvery is the interval a phone beats at: its own, or the
// server's (the welcome's heartbeat_ms) when that is shorter.
func heartbeatEvery(own time.Duration, serverMs int64) time.Duration {
	if s := time.Duration(serverMs) * time.Millisecond; s > 0 && s < own {
		return s
	}
	return own
}

// base is the server the technician uses now.
func (t *Technician) base() string {
	all := append([]string{t.BaseURL}, t.Alternates...)
	return strings.TrimSuffix(all[int(t.cur.Load())%len(all)], "/")
}

func (t *Technician) session(ctx context.Context) error {
	wsURL := "ws" + strings.TrimPrefix(t.base(), "http") + "/v1/technicians/ws"
	dctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	c, _, err := websocket.Dial(dctx, wsURL, &websocket.DialOptions{HTTPHeader: http.Header{"Authorization": {"Bearer " + t.Me.Token}}})
	cancel()
	if err != nil {
		t.cur.Add(1) // try another process next time
		return err
	}
	defer t.cur.Add(1)
	defer c.CloseNow()
	t.Stats.Connects.Add(1)
	sctx, stop := context.WithCancel(ctx)
	defer stop()
	send := func(v any) error {
		wctx, cancel := context.WithTimeout(sctx, 5*time.Second)
		defer cancel()
		return wsjson.Write(wctx, c, v)
	}
	avail := true
	if err := send(map[string]any{"type": "location", "lat": t.Me.Lat, "lng": t.Me.Lng}); err != nil {
		return err
	}
	if err := send(map[string]any{"type": "availability", "available": avail}); err != nil {
		return err
	}
	var beating sync.WaitGroup
	defer beating.Wait() // after stop (deferred later, so run first)
	defer stop()
	beat := func(every time.Duration) {
		defer beating.Done()
		// Phones do not beat in step: the first heartbeat comes after a
		// random part of the period (thousands connecting at once would
		// otherwise all beat in the same instant, every period).
		first := time.NewTimer(time.Duration(t.float() * float64(every)))
		defer first.Stop()
		select {
		case <-sctx.Done():
			return
		case <-first.C:
		}
		if send(map[string]string{"type": "heartbeat"}) != nil {
			return
		}
		tick := time.NewTicker(every)
		defer tick.Stop()
		for {
			select {
			case <-sctx.Done():
				return
			case <-tick.C:
				if send(map[string]string{"type": "heartbeat"}) != nil {
					return
				}
			}
		}
	}
	started := false
	for {
		var m serverMsg
		if err := wsjson.Read(sctx, c, &m); err != nil {
			return err
		}
		if !started && m.Type == "welcome" {
			// The first message of a connection: beat at the server's pace.
			started = true
			beating.Add(1)
			go beat(heartbeatEvery(t.Behavior.Heartbeat, m.HeartbeatMs))
		}
		switch m.Type {
		case "offer":
			t.Stats.Offers.Add(1)
			t.observe("offer", m.OrderID)
			send(map[string]string{"type": "ack", "order_id": m.OrderID})
			orderID := m.OrderID
			t.wg.Add(1)
			go func() {
				defer t.wg.Done()
				select {
				case <-sctx.Done():
					return
				case <-time.After(t.think()):
				}
				x := t.float()
				switch {
				case x < t.Behavior.AcceptRate:
					t.Stats.Accepted.Add(1)
					send(map[string]string{"type": "accept", "order_id": orderID})
				case x < t.Behavior.AcceptRate+t.Behavior.DeclineRate:
					t.Stats.Declined.Add(1)
					send(map[string]string{"type": "decline", "order_id": orderID, "reason": "busy"})
				}
			}()
		case "accept_result":
			if m.Accepted != nil && *m.Accepted {
				t.Stats.Won.Add(1)
				t.observe("won", m.OrderID)
			} else {
				t.Stats.Lost.Add(1)
			}
		case "assigned":
			t.startJob(ctx, m.OrderID)
		}
	}
}

func (t *Technician) observe(event, orderID string) {
	if t.Observe != nil {
		t.Observe(event, orderID)
	}
}

// startJob runs the job through start and completion once per order. It
// uses the outer context so a dropped connection does not stop the work.
func (t *Technician) startJob(ctx context.Context, orderID string) {
	if _, dup := t.jobs.LoadOrStore(orderID, struct{}{}); dup {
		return
	}
	t.wg.Add(1)
	go func() {
		defer t.wg.Done()
		for _, step := range []struct {
			wait time.Duration
			path string
		}{{t.Behavior.StartAfter, "start"}, {t.Behavior.WorkFor, "complete"}} {
			select {
			case <-ctx.Done():
				return
			case <-time.After(step.wait):
			}
			if err := t.post(ctx, "/v1/jobs/"+orderID+"/"+step.path); err != nil {
				t.Logger.Warn("sim technician job step failed", "technician_id", t.Me.ID, "order_id", orderID, "step", step.path, "err", err)
				if IsStatus(err, http.StatusConflict) {
					return // cancelled meanwhile
				}
				// Retry the step (steps are idempotent) until the server answers.
				for ctx.Err() == nil {
					select {
					case <-ctx.Done():
						return
					case <-time.After(500 * time.Millisecond):
					}
					if err = t.post(ctx, "/v1/jobs/"+orderID+"/"+step.path); err == nil || IsStatus(err, http.StatusConflict) {
						break
					}
				}
			}
		}
		t.Stats.Completed.Add(1)
		t.observe("completed", orderID)
	}()
}

func (t *Technician) post(ctx context.Context, path string) error {
	err := postJSON(ctx, t.base()+path, t.Me.Token, nil, nil)
	var he *HTTPError
	if err != nil && !errors.As(err, &he) {
		t.cur.Add(1) // the server did not answer: try another
	}
	return err
}

var httpClient = &http.Client{Timeout: 10 * time.Second}

func postJSON(ctx context.Context, url, token string, body, out any) error {
	var buf bytes.Buffer
	if body != nil {
		json.NewEncoder(&buf).Encode(body)
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, url, &buf)
	if err != nil {
		return err
	}
	req.Header.Set("Authorization", "Bearer "+token)
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	resp, err := httpClient.Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	if resp.StatusCode >= 300 {
		var e struct {
			Error struct{ Code, Message string } `json:"error"`
		}
		json.NewDecoder(resp.Body).Decode(&e)
		return &HTTPError{URL: url, Status: resp.StatusCode, Code: e.Error.Code, Message: e.Error.Message}
	}
	if out != nil {
		return json.NewDecoder(resp.Body).Decode(out)
	}
	return nil
}

// HTTPError is an answer of the platform with an error status.
type HTTPError struct {
	URL           string
	Status        int
	Code, Message string
}

func (e *HTTPError) Error() string {
	return fmt.Sprintf("POST %s: %d %s: %s", e.URL, e.Status, e.Code, e.Message)
}

// IsStatus reports whether err is an answer with that status.
func IsStatus(err error, status int) bool {
	var he *HTTPError
	return errors.As(err, &he) && he.Status == status
}
